#!/usr/bin/env python3
"""Interleaved A/B timing of whole one-off `get` commands (the fixed cost of a command), hyperfine-like.

One seeder node (`securemesh run` of the first variant's build) shares a SIZE_MIB file of random bytes; each round runs
`securemesh get CID --out DIR --json` once per variant, in an order that rotates each round, as a fresh process into an
emptied output folder after `sync`, as cost-per-gib.sh does. Prints per
variant the medians of wall seconds and of the command's user and system CPU (wait4), and the median of the
same-round wall ratios against the first variant.

  oneoff-ab.sh [ROUNDS] [SIZE_MIB] NAME=PROGRAM[,VAR=VALUE...] ...

PROGRAM is a published folder's `securemesh` (the apphost of a ReadyToRun build, or the Native AOT executable, as an
installed command runs), a `securemesh.dll` (run with `dotnet`), or a folder holding either. The seeder runs the
first variant's build. VAR=VALUE pairs are extra environment variables for that variant only, so
one build can be compared with itself under runtime settings (DOTNET_TieredPGO=0, …). `id` and `--help` are timed
too when TIME_ID=1 (the runtime's and the command tree's start alone).

PHASES=1 runs every `get` under `strace -f --seccomp-bpf` (a few system calls as marks; it slows the command a little,
so compare variants with each other, not with runs without it) and prints, per variant, the medians of when each mark
came, in ms from exec: the listener (`listen`), the TCP connect to the seeder, the part file opened, the release
(`renameat2` out of quarantine), the JSON result written, the process's end; "tail" is JSON to end, "xfer" part file to
release, and the fsyncs counted; and the median same-round ratios of tail, xfer and the whole against the first variant.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cost_per_gib as cpg  # noqa: E402


def parse_variant(spec):
    name, _, rest = spec.partition("=")
    parts = rest.split(",")
    env = dict(os.environ)
    for kv in parts[1:]:
        key, _, value = kv.partition("=")
        env[key] = value
    return name, cpg.program(parts[0]), env


PHASE_CALLS = "execve,bind,listen,connect,openat,renameat2,write,fsync,exit_group"
MARKS = ("listen", "connect", "part", "release", "json", "exit")


def phase_marks(trace):
    """Milliseconds from exec of each mark in an `strace -f -ttt` file, and the fsyncs counted."""
    t0, marks, fsyncs, tcp_sockets = None, {}, 0, set()
    for line in open(trace):
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        t, call = float(parts[1]), parts[2]
        t0 = t if t0 is None else t0
        ms = (t - t0) * 1000
        if call.startswith("bind(") and "AF_INET" in call:
            tcp_sockets.add(call[5:].split(",", 1)[0])
        elif call.startswith("listen("):
            # The node's TCP listener, not the runtime's diagnostics socket (AF_UNIX; a Native AOT build has none).
            if call[7:].split(",", 1)[0] in tcp_sockets:
                marks.setdefault("listen", ms)
        elif call.startswith("connect(") and "127.0.0.1" in call:
            marks.setdefault("connect", ms)
        elif call.startswith("openat(") and ".part" in call:
            marks.setdefault("part", ms)
        elif call.startswith("renameat2(") and "part" in marks:
            marks.setdefault("release", ms)
        elif call.startswith("write(") and "contentId" in call:
            marks.setdefault("json", ms)
        elif call.startswith("fsync("):
            fsyncs += 1
        elif call.startswith("exit_group("):
            marks["exit"] = ms
    if not all(m in marks for m in MARKS):
        raise RuntimeError(f"{trace}: marks missing ({', '.join(m for m in MARKS if m not in marks)})")
    marks["tail"] = marks["exit"] - marks["json"]
    marks["xfer"] = marks["release"] - marks["part"]
    marks["fsyncs"] = fsyncs
    return marks


def print_phases(phases, base):
    print("phases (strace marks), medians in ms from exec; ratios: median of same-round ratios against " + base)
    for name, samples in phases.items():
        cells = "  ".join(f"{k} {statistics.median(s[k] for s in samples):.0f}" for k in (*MARKS, "tail", "xfer", "fsyncs"))
        ratios = "  ".join(f"{k} {statistics.median(s[k] / b[k] for s, b in zip(samples, phases[base])):.3f}x"
                           for k in ("tail", "xfer", "exit"))
        print(f"{name:14} {cells}  | {ratios}")


def main():
    args = sys.argv[1:]
    rounds = int(args.pop(0)) if args and args[0].isdigit() else 10
    size_mib = int(args.pop(0)) if args and args[0].isdigit() else 64
    variants = [parse_variant(a) for a in args]
    if not variants:
        raise RuntimeError("give at least one NAME=PROGRAM")
    # The seeder node runs the first variant's build (a Native AOT executable too).
    os.environ.pop("SECUREMESH_EXE", None)
    os.environ["SECUREMESH_DLL"] = variants[0][1][-1]
    work = tempfile.mkdtemp(prefix="sm-ab.")
    sm = None
    try:
        payload = os.path.join(work, "payload.bin")
        with open(payload, "wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(1 << 20))
        sm = cpg.SecureMesh(work, payload, "oneoff")
        results = {name: [] for name, _, _ in variants}
        id_results = {name: [] for name, _, _ in variants}
        phases = {name: [] for name, _, _ in variants}
        trace = os.path.join(work, "get.strace") if os.environ.get("PHASES") == "1" else None
        for r in range(rounds + 1):  # round 0 warms the page cache and every build up, untimed
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            for name, argv, env in order:
                cpg.settle(sm)  # each get starts settled, as in cost-per-gib.sh: the last output deleted, dirty pages written out
                command = [*argv, "--home", sm.dl_home, "get", sm.cid, "--out", sm.out, "--json"]
                if trace:
                    command = ["strace", "-f", "--seccomp-bpf", "-ttt", "-e", f"trace={PHASE_CALLS}", "-e", "signal=none",
                               "-o", trace, *command]
                sample = cpg.run_timed(command, stdin=subprocess.DEVNULL, env=env)
                if not sm.check(payload):
                    raise RuntimeError(f"{name}: the copy differs from the payload")
                if os.environ.get("TIME_ID") == "1":
                    id_sample = cpg.run_timed([*argv, "--home", sm.dl_home, "id", "--json"], stdin=subprocess.DEVNULL, env=env)
                if r > 0:
                    results[name].append(sample)
                    if trace:
                        phases[name].append(phase_marks(trace))
                    if os.environ.get("TIME_ID") == "1":
                        id_results[name].append(id_sample)
        load = open("/proc/loadavg").read().split()[:3]
        print(f"{rounds} rounds, one-off get of {size_mib} MiB, load average {' '.join(load)}; medians (min-max)")
        base = results[variants[0][0]]
        for name, ss in results.items():
            walls = [s[0] for s in ss]
            ratio = statistics.median(s[0] / b[0] for s, b in zip(ss, base))
            line = (f"{name:14} wall {statistics.median(walls):.3f} s ({min(walls):.3f}-{max(walls):.3f})  "
                    f"user {statistics.median(s[1] for s in ss):.3f}  sys {statistics.median(s[2] for s in ss):.3f}  "
                    f"vs {variants[0][0]} {ratio:.3f}x")
            if id_results[name]:
                line += f"  | id: wall {statistics.median(s[0] for s in id_results[name]):.3f} user {statistics.median(s[1] for s in id_results[name]):.3f}"
            print(line)
        if trace:
            print_phases(phases, variants[0][0])
    finally:
        if sm is not None:
            sm.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        print(f"oneoff-ab: {e}", file=sys.stderr)
        sys.exit(1)
