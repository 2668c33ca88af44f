#!/usr/bin/env bash
# Runs a command in network, mount and PID namespaces of its own, with tmpfs
# over the lab's fixed paths, so a second lab runs beside another on the same
# 127.0.1.x addresses (design notes, third round). Its own PID namespace keeps
# the lab's `pgrep -f <lab dir>` and the tests' kills to its own processes,
# and everything it started ends with the command.
#
#   lab/netns.sh <command...>
#   LAB_LANE=<dir> lab/netns.sh <command...>   also mounts <dir>/lab over the
#       checkout's .lab and <dir>/work over .test-work, so lanes of one
#       checkout keep their labs and workspaces apart (bin/test).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "lab/netns.sh: needs root (unshare)" >&2; exit 2; }
# Those paths get an empty tmpfs inside: a checkout (or a lane) under one of them would vanish.
for d in /etc/rotation-app /var/log/rotation-app /var/lib/rotation-lab /run/sshd /tmp; do
  for p in "$ROOT" ${LAB_LANE:+"$LAB_LANE"}; do
    case "$p/" in "$d"/*) echo "lab/netns.sh: $p is under $d, which a lab's namespace covers with a tmpfs of its own; use a checkout and LAB_LANE outside /tmp and the lab's paths" >&2; exit 2 ;; esac
  done
done
if [ -n "${LAB_LANE:-}" ]; then
  mkdir -p "$LAB_LANE/lab" "$LAB_LANE/work" "$ROOT/.lab" "$ROOT/.test-work"
  chmod 755 "$LAB_LANE" "$LAB_LANE/lab"
fi
exec unshare --net --mount --pid --fork --mount-proc --propagation private bash -c '
set -e
ip link set lo up
for d in /etc/rotation-app /var/log/rotation-app /var/lib/rotation-lab /run/sshd /tmp; do mkdir -p "$d"; mount -t tmpfs tmpfs "$d"; done
chmod 1777 /tmp
if [ -n "${LAB_LANE:-}" ]; then
  mount --bind "$LAB_LANE/lab" "$0/.lab"
  mount --bind "$LAB_LANE/work" "$0/.test-work"
fi
shift
exec "$@"' "$ROOT" _ "$@"
