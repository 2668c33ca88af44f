#!/bin/bash
# Runs INSIDE a private mount namespace (started by up.sh via
# `unshare -m --propagation private`): gives this host its own
# /etc/rotation-app and /var/log/rotation-app, starts its journald, its sshd,
# its three consumer apps (and pgbouncer on host3) each in a unit of its own
# (lib/in-unit.sh), then stays as the namespace holder.
#   host-ns.sh HOST LAB_DIR
set -euo pipefail
HOST="$1"
LAB_DIR="$2"
export LAB_DIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
IP="${HOST_IP[$HOST]}"

# the namespace must really be private before we mount anything
[[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ]] || { echo "not in a private mount namespace" >&2; exit 1; }

mount --bind "$LAB_DIR/hosts/$HOST/etc" "$APP_ETC"
mount --bind "$LAB_DIR/hosts/$HOST/log" "$APP_LOG"
echo $$ >"$RUN/$HOST.pid"

# journald (design notes, third round: it runs without systemd as PID 1). Its
# runtime directories are this host's; its journal is $LAB_DIR/hosts/$HOST/journal,
# bound over /run/log/journal (volatile storage), where journalctl on the host
# reads it and the tests (leak scan) read it from outside. The machine's own
# journal in /var/log/journal is no part of this host: hidden. The host has a
# machine id of its own.
mount -t tmpfs -o mode=755 lab-run-systemd /run/systemd
mount -t tmpfs -o mode=755 lab-run-log /run/log
mkdir -p /run/log/journal /run/systemd/journald.conf.d
mount --bind "$(host_journal "$HOST")" /run/log/journal
if [[ -d /var/log/journal ]]; then mount -t tmpfs -o mode=755 lab-no-journal /var/log/journal; fi
if [[ -f /etc/machine-id ]]; then mount --bind "$LAB_DIR/hosts/$HOST/machine-id" /etc/machine-id; fi
# Nothing dropped (no rate limit), no kernel or audit messages (the machine's, not this host's), nothing forwarded.
printf '%s\n' '[Journal]' Storage=volatile RateLimitIntervalSec=0 ReadKMsg=no Audit=no ForwardToSyslog=no ForwardToWall=no \
  RuntimeMaxUse=32M >/run/systemd/journald.conf.d/lab.conf
/lib/systemd/systemd-journald </dev/null >>"$RUN/$HOST-journald.out" 2>&1 &
echo $! >"$RUN/$HOST-journald.pid"
CG2="$(cgroup2_root)"
[[ -n "$CG2" ]] || { echo "no cgroup2 hierarchy is mounted: journald could not tell this host's units apart" >&2; exit 1; }
# The namespace's inode alone is not unique over time: the kernel reuses it, and another lane's
# teardown still retrying rmdir on its old slice of that name would remove this one. A random part is.
SLICE="$CG2/rotation-lab-$HOST-$(readlink /proc/self/ns/mnt | tr -dc 0-9)-$(od -An -N4 -tx4 /dev/urandom | tr -dc 0-9a-f).slice"
mkdir -p "$SLICE"
echo "$SLICE" >"$RUN/$HOST.slice"

rm -f "$APP_ETC"/*.pid
/usr/sbin/sshd -D -f "$LAB_DIR/hosts/$HOST/sshd_config" -E "$RUN/$HOST-sshd.log" </dev/null &

# the apps' systemd-cat connects to journald's stream socket as it starts
wait_for 5 test -S /run/systemd/journal/stdout || { echo "journald did not come up (see $RUN/$HOST-journald.out)" >&2; exit 1; }
in_unit() { bash "$LAB_SRC/lib/in-unit.sh" "$SLICE" "$@"; }

KNOWN="$LAB_DIR/known_hosts"
for kind in "${KINDS[@]}"; do
  in_unit "${KIND_UNIT[$kind]}" node "$LAB_SRC/consumer/app.js" --kind "$kind" --config "$APP_ETC/${KIND_CONF[$kind]}" \
    --listen "$IP:${KIND_PORT[$kind]}" --log "$APP_LOG/$kind-app.log" --pidfile "$APP_ETC/$kind-app.pid" \
    --target "root@$TARGET_IP" --known-hosts "$KNOWN" --stdout journal </dev/null >>"$RUN/$HOST-$kind-app.out" 2>&1 &
done

if [[ "$HOST" == "$PGB_HOST" ]]; then
  # pgbouncer refuses to run as root: it drops to `postgres` (-u) right after
  # start, so its config, auth_file and logfile are owned by postgres (0600).
  # It runs in the foreground; the pid file is written here (the process
  # execs into pgbouncer, so $$ of the subshell is pgbouncer's pid; in-unit.sh
  # and systemd-cat exec too).
  touch "$APP_LOG/pgbouncer.log"; chown postgres: "$APP_LOG/pgbouncer.log"
  in_unit "$PGB_UNIT" bash -c 'echo $$ >"$1"; exec pgbouncer -u postgres "$2"' pgb "$APP_ETC/pgbouncer.pid" "$APP_ETC/pgbouncer.ini" \
    </dev/null >>"$RUN/$HOST-pgbouncer.out" 2>&1 &
fi

# namespace holder: stay alive (TERM ends us; down.sh kills the namespace)
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $! || true; done
