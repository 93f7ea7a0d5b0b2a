#!/usr/bin/env bash
# The control API's first request against a running node, against a later one: wall time of `securemesh status --json`
# and the CPU the node spends answering it (utime+stime from /proc/PID/stat, which holds under load far better than
# wall time), and the node's RSS before and after. Each round starts a fresh node in a fresh home and waits until it
# has been idle for a few seconds (the web host, when built ahead, is built by then).
#
#   src/SecureMesh.Node/Control/first-request.sh DIR [ROUNDS] [DIR2]
#
# DIR is a published build (dotnet publish src/SecureMesh.Cli -c Release -r linux-x64 --self-contained false -o DIR),
# or a Native AOT one (DIR/securemesh, no securemesh.dll).
# VERBOSE=1 runs the node with --verbose and prints its own split of the first request (web host built, started).
# With DIR2, rounds alternate between the two builds (same-minute pairs) and a median per build is printed at the end.
set -euo pipefail

dirs=("$1")
rounds=${2:-5}
if [[ $# -ge 3 ]]; then
    dirs+=("$3")
fi
dotnet_host=${DOTNET_HOST_PATH:-dotnet}
tick=$(getconf CLK_TCK)
results=$(mktemp)
trap 'rm -f "$results"' EXIT

cpu_ms() { # utime+stime of a process, in ms
    awk -v t="$tick" '{ sub(/.*\) /, ""); print ($12 + $13) * 1000 / t }' "/proc/$1/stat"
}
rss_mb() {
    awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}
command_for() { # sets cmd to the build in $1 (a Native AOT build has no securemesh.dll, only the executable)
    if [[ -f "$1/securemesh.dll" ]]; then
        cmd=("$dotnet_host" "$1/securemesh.dll")
    else
        cmd=("$1/securemesh")
    fi
}
now_ms() {
    echo $(( $(date +%s%N) / 1000000 ))
}

timed_status() { # DIR HOME PID: prints the wall ms of one `status --json` and the node CPU ms it cost
    local c0 t0 t1 c1
    c0=$(cpu_ms "$3")
    t0=$(now_ms)
    command_for "$1"
    "${cmd[@]}" --home "$2" --json status > /dev/null
    t1=$(now_ms)
    c1=$(cpu_ms "$3")
    echo "$((t1 - t0)) $(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')"
}

one_round() {
    local dir=$1 home pid first_ms later_ms first_cpu later_cpu rss0 rss1
    home=$(mktemp -d /tmp/securemesh-first-XXXXXX)
    chmod 700 "$home"
    command_for "$dir"
    echo | "${cmd[@]}" --home "$home" init --passphrase-stdin > /dev/null
    "${cmd[@]}" --home "$home" ${VERBOSE:+--verbose} run --listen 127.0.0.1:0 > "$home/run.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
        [[ -S "$home/control.sock" ]] && break
        sleep 0.1
    done
    # Idle for a while, as a node is before anyone asks it anything.
    sleep "${SETTLE_SECONDS:-8}"
    rss0=$(rss_mb "$pid")
    read -r first_ms first_cpu < <(timed_status "$dir" "$home" "$pid")
    sleep 1
    read -r later_ms later_cpu < <(timed_status "$dir" "$home" "$pid")
    sleep 2
    rss1=$(rss_mb "$pid")
    kill -TERM "$pid"
    wait "$pid" || true
    # With VERBOSE=1 the node logs how long its web host took to build and start (event 307).
    grep -o 'web host built in.*' "$home/run.log" || true
    rm -rf "$home"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$dir" "$first_ms" "$first_cpu" "$later_ms" "$later_cpu" "$rss0" "$rss1" "$(cut -d' ' -f1 /proc/loadavg)" >> "$results"
    printf '%-28s first %5d ms (node CPU %4s ms)  later %5d ms (node CPU %4s ms)  node RSS %s -> %s MB  load %s\n' \
        "$dir" "$first_ms" "$first_cpu" "$later_ms" "$later_cpu" "$rss0" "$rss1" "$(cut -d' ' -f1 /proc/loadavg)"
}

for ((r = 0; r < rounds; r++)); do
    for dir in "${dirs[@]}"; do
        one_round "$dir"
    done
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for dir in "${dirs[@]}"; do
    rows=$(awk -F'\t' -v d="$dir" '$1 == d' "$results")
    printf 'median %-21s first %s ms (node CPU %s ms)  later %s ms (node CPU %s ms)  node RSS %s -> %s MB\n' "$dir" \
        "$(cut -f2 <<< "$rows" | median)" "$(cut -f3 <<< "$rows" | median)" \
        "$(cut -f4 <<< "$rows" | median)" "$(cut -f5 <<< "$rows" | median)" \
        "$(cut -f6 <<< "$rows" | median)" "$(cut -f7 <<< "$rows" | median)"
done
