#!/usr/bin/env bash
# Interleaved A/B timing of whole one-off `get` commands (the fixed cost of a command). Full description: oneoff_ab.py.
#
#   oneoff-ab.sh [ROUNDS] [SIZE_MIB] NAME=PROGRAM[,VAR=VALUE...] ...     (PROGRAM: a publish folder, apphost, Native AOT executable or dll)
set -euo pipefail
exec python3 "$(dirname "$0")/oneoff_ab.py" "$@"
