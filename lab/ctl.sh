#!/bin/bash
# Lab control / failure injection.
#   ctl.sh fail-health HOST on|off   make every app on HOST answer /healthz 503 "forced failure"
#   ctl.sh stop-host HOST            stop HOST's sshd only (host unreachable over ssh; apps keep running)
#   ctl.sh start-host HOST           start HOST's sshd again (inside the host's mount namespace)
#   ctl.sh status                    one line per service: "<name> <addr> up|down"
#   ctl.sh env                       shell export lines for tests (eval "$(lab/ctl.sh env)")
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
check_host() { [[ -n "${1:-}" && -n "${HOST_IP[$1]:-}" ]] || die "unknown host '${1:-}' (one of: ${HOSTS[*]})"; }

cmd="${1:-}"; shift || true
case "$cmd" in
  fail-health)
    check_host "${1:-}"; h="$1"
    case "${2:-}" in
      on) touch "$(host_etc "$h")/FAIL_HEALTH"; say "$h: forced /healthz failure ON" ;;
      off) rm -f "$(host_etc "$h")/FAIL_HEALTH"; say "$h: forced /healthz failure OFF" ;;
      *) usage ;;
    esac ;;
  stop-host)
    check_host "${1:-}"; h="$1"
    kill_pidfile "$RUN/$h-sshd.pid"
    kill_listeners "${HOST_IP[$h]}" 22
    say "$h: sshd stopped" ;;
  start-host)
    check_host "${1:-}"; h="$1"; ip="${HOST_IP[$h]}"
    holder="$(pidfile_pid "$RUN/$h.pid")"
    pid_alive "$holder" || die "$h is not running (run lab/up.sh)"
    if pidfile_alive "$RUN/$h-sshd.pid" && port_open "$ip" 22; then say "$h: sshd already up"; exit 0; fi
    mkdir -p /run/sshd
    # sshd without -D daemonizes and writes its PidFile; it stays in the host's namespace
    nsenter -t "$holder" -m -- /usr/sbin/sshd -f "$LAB_DIR/hosts/$h/sshd_config" -E "$RUN/$h-sshd.log" </dev/null >/dev/null 2>&1
    wait_for 10 port_open "$ip" 22 || die "$h: sshd did not come up (see $RUN/$h-sshd.log)"
    say "$h: sshd started" ;;
  status)
    st() { if port_open "$2" "$3"; then echo "$1 $2:$3 up"; else echo "$1 $2:$3 down"; fi; }
    for h in "${HOSTS[@]}"; do
      ip="${HOST_IP[$h]}"
      st "$h-sshd" "$ip" 22
      for k in "${KINDS[@]}"; do st "$h-$k-app" "$ip" "${KIND_PORT[$k]}"; done
      [[ "$h" == "$PGB_HOST" ]] && st "$h-pgbouncer" "$ip" "$PGB_PORT"
      [[ -e "$(host_etc "$h")/FAIL_HEALTH" ]] && echo "$h FAIL_HEALTH on"
    done
    st target-sshd "$TARGET_IP" 22
    st redis "$REDIS_IP" "$REDIS_PORT"
    st postgres "$PG_IP" "$PG_PORT"
    ;;
  env)
    q() { printf '%q' "$1"; }
    cat <<EOF
export LAB_DIR=$(q "$LAB_DIR")
export LAB_JSON=$(q "$LAB_DIR/lab.json")
export LAB_KNOWN_HOSTS=$(q "$LAB_DIR/known_hosts")
export OPERATOR_KEY=$(q "$LAB_DIR/operator/id_ed25519")
export LAB_STORE_DIR=$(q "$LAB_DIR/store")
export LAB_HOSTS=$(q "${HOSTS[*]}")
export LAB_HOST1_IP=${HOST_IP[host1]}
export LAB_HOST2_IP=${HOST_IP[host2]}
export LAB_HOST3_IP=${HOST_IP[host3]}
export REDIS_HOST=$REDIS_IP
export REDIS_PORT=$REDIS_PORT
export REDIS_ADMIN_USER=admin
export REDIS_ADMIN_PASS_FILE=$(q "$LAB_DIR/secrets/redis-admin.pass")
export REDIS_APP_USER=app
export PG_HOST=$PG_IP
export PG_PORT=$PG_PORT
export PG_ADMIN_USER=postgres
export PG_ADMIN_PASS_FILE=$(q "$LAB_DIR/secrets/pg-admin.pass")
export PG_DATABASE=app
export PG_GROUP=app
export PG_LOGIN_PREFIX=app_g
export PGBOUNCER_HOST=${HOST_IP[$PGB_HOST]}
export PGBOUNCER_PORT=$PGB_PORT
export SSH_TARGET_IP=$TARGET_IP
export SSH_TARGET_AUTHORIZED_KEYS=$(q "$TARGET_AUTH_KEYS")
export STORE_APP_REDIS=$(q "$LAB_DIR/store/app-redis")
export STORE_APP_PG=$(q "$LAB_DIR/store/app-pg")
export STORE_APP_DEPLOY_KEY=$(q "$LAB_DIR/store/app-deploy-key")
EOF
    ;;
  *) usage ;;
esac
