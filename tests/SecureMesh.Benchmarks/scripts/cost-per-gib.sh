#!/usr/bin/env bash
# CPU seconds per GiB on each side of a transfer (user and system, per process, from /proc/PID/stat and wait4), for
# SecureMesh against ssh chacha20 and against Syncthing, in rotating same-round triples, medians and pairwise ratios.
# Also the Syncthing speed comparison (ONLY=securemesh,syncthing). Full description: cost_per_gib.py's header.
#
#   cost-per-gib.sh [ROUNDS] [SIZE_MIB]      ONLY=securemesh,ssh,syncthing   MODE=node|oneoff   SECUREMESH_DLL=...
#                                            COMPARE_DLL=... (another build as a contestant, "baseline": before/after pairs;
#                                            several, comma-separated: "baseline", "baseline2", ...)
#
# Needs a Release build (dotnet build src/SecureMesh.Cli -c Release) or a published one (SECUREMESH_DLL), and the
# Debian packages openssh-server and syncthing.
set -euo pipefail
exec python3 "$(dirname "$0")/cost_per_gib.py" "$@"
