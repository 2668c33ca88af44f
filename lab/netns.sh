#!/usr/bin/env bash
# Runs a command in a network and mount namespace of its own, with tmpfs over
# the lab's fixed paths, so a second lab can run beside another (design notes, third round).
set -euo pipefail
exec unshare --net --mount --fork --propagation private bash -c '
set -e
ip link set lo up
for d in /etc/rotation-app /var/log/rotation-app /var/lib/rotation-lab /run/sshd /tmp; do mkdir -p "$d"; mount -t tmpfs tmpfs "$d"; done
chmod 1777 /tmp
exec "$@"' bash "$@"
