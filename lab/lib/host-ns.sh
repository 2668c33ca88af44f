#!/bin/bash
# Runs INSIDE a private mount namespace (started by up.sh via
# `unshare -m --propagation private`): gives this host its own
# /etc/rotation-app and /var/log/rotation-app, starts its sshd, its three
# consumer apps (and pgbouncer on host3), then stays as the namespace holder.
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

rm -f "$APP_ETC"/*.pid
/usr/sbin/sshd -D -f "$LAB_DIR/hosts/$HOST/sshd_config" -E "$RUN/$HOST-sshd.log" </dev/null &

KNOWN="$LAB_DIR/known_hosts"
for kind in "${KINDS[@]}"; do
  node "$LAB_SRC/consumer/app.js" --kind "$kind" --config "$APP_ETC/${KIND_CONF[$kind]}" \
    --listen "$IP:${KIND_PORT[$kind]}" --log "$APP_LOG/$kind-app.log" --pidfile "$APP_ETC/$kind-app.pid" \
    --target "root@$TARGET_IP" --known-hosts "$KNOWN" </dev/null >>"$RUN/$HOST-$kind-app.out" 2>&1 &
done

if [[ "$HOST" == "$PGB_HOST" ]]; then
  # pgbouncer refuses to run as root: it drops to `postgres` (-u) right after
  # start, so its config, auth_file and logfile are owned by postgres (0600).
  # It runs in the foreground; the pid file is written here (the process
  # execs into pgbouncer, so $$ of the subshell is pgbouncer's pid).
  touch "$APP_LOG/pgbouncer.log"; chown postgres: "$APP_LOG/pgbouncer.log"
  bash -c 'echo $$ >"$1"; exec pgbouncer -u postgres "$2"' pgb "$APP_ETC/pgbouncer.pid" "$APP_ETC/pgbouncer.ini" \
    </dev/null >>"$RUN/$HOST-pgbouncer.out" 2>&1 &
fi

# namespace holder: stay alive (TERM ends us; down.sh kills the namespace)
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $! || true; done
