#!/bin/bash
# Runs a command the way systemd runs a service, as far as journald can tell
# (the lab has no systemd as PID 1): in the cgroup SLICE/UNIT.service, so
# journald names its entries _SYSTEMD_UNIT=UNIT.service and `journalctl -u
# UNIT` finds them, with stdout and stderr in the host's journal (systemd-cat,
# identifier UNIT; a line starting with <N> has priority N; stderr's
# unprefixed lines are errors). Runs inside a host's mount namespace, whose
# /run/systemd/journal is its own journald's (lib/host-ns.sh).
#   in-unit.sh SLICE UNIT COMMAND [ARG...]
set -euo pipefail
slice="$1" unit="$2"
shift 2
[[ "$slice" == /*/rotation-lab-*.slice && -d "$slice" ]] || { echo "in-unit.sh: not a lab host's slice: $slice" >&2; exit 2; }
mkdir -p "$slice/$unit.service"
echo "$$" >"$slice/$unit.service/cgroup.procs"
exec systemd-cat -t "$unit" --stderr-priority=err -- "$@"
