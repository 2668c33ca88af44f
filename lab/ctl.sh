#!/bin/bash
# Lab control / failure injection.
#   ctl.sh fail-health HOST on|off   make every app on HOST answer /healthz 503 "forced failure"
#   ctl.sh stop-host HOST            stop HOST's sshd only (host unreachable over ssh; apps keep running)
#   ctl.sh start-host HOST           start HOST's sshd again (inside the host's mount namespace)
#   ctl.sh stop-openbao              stop OpenBao (the secret store becomes unreachable; state kept)
#   ctl.sh start-openbao             start OpenBao again (and unseal it); also unseals a sealed one
#   ctl.sh seal-openbao              seal the running OpenBao (every request answers 503 until start-openbao)
#   ctl.sh stop-tokenapi | start-tokenapi   stop / start the token API (tokens kept)
#   ctl.sh halt-host HOST            stop all of HOST (sshd, its sessions, its apps), as a machine that went down; up.sh starts it again
#   ctl.sh notify-faults [ANSWER...] [then ANSWER]   the receiver's next answers (ok, 500, hang, close), e.g. 500 500 500 then hang; none: back to ok
#   ctl.sh stop-gitea | start-gitea         stop / start Gitea (repositories and secrets kept)
#   ctl.sh status                    one line per service: "<name> <addr> up|down"
#   ctl.sh env                       shell export lines for tests (eval "$(lab/ctl.sh env)")
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/tokenapi.sh
source "$LAB_SRC/lib/tokenapi.sh"
# shellcheck source=lib/notifyrx.sh
source "$LAB_SRC/lib/notifyrx.sh"
# shellcheck source=lib/kube.sh
source "$LAB_SRC/lib/kube.sh"
# shellcheck source=lib/gitea.sh
source "$LAB_SRC/lib/gitea.sh"

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
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
  stop-openbao)
    bao_stop
    say "openbao: stopped" ;;
  start-openbao)
    [[ -s "$BAO_UNSEAL_KEY_FILE" && -d "$BAO_DATA" ]] || die "openbao was never initialized (run lab/up.sh)"
    if bao_ok; then say "openbao: already up"; exit 0; fi
    if pidfile_alive "$RUN/openbao.pid" && [[ "$(bao_health_code)" == 503 ]]; then
      bao_unseal || die "openbao: unseal failed"
      wait_for 10 bao_ok || die "openbao: not healthy after unseal (see $RUN/openbao.log)"
      say "openbao: unsealed"; exit 0
    fi
    bao_start
    bao_ok || die "openbao: not healthy (see $RUN/openbao.log)"
    say "openbao: started" ;;
  stop-tokenapi) tokenapi_stop; say "token API: stopped" ;;
  halt-host)
    check_host "${1:-}"; stop_host_all "$1"; say "$1: halted (lab/up.sh starts it again)" ;;
  notify-faults)
    plan=(); rest=ok
    while (($#)); do
      if [[ "$1" == then ]]; then rest="${2:-}"; shift 2 || usage; continue; fi
      plan+=("$1"); shift
    done
    for a in "${plan[@]}" "$rest"; do [[ "$a" =~ ^(ok|500|hang|close)$ ]] || die "notify-faults: unknown answer '$a' (ok, 500, hang, close)"; done
    (umask 077; PLAN="${plan[*]}" AFTER="$rest" node -e 'const e = process.env; process.stdout.write(JSON.stringify({ plan: e.PLAN ? e.PLAN.split(" ") : [], after: e.AFTER }) + "\n")' >"$NOTIFYRX_FAULTS.tmp")
    mv "$NOTIFYRX_FAULTS.tmp" "$NOTIFYRX_FAULTS"
    say "notification receiver: next answers ${plan[*]:-} then $rest" ;;
  stop-gitea) gitea_stop; say "gitea: stopped" ;;
  start-gitea) if gitea_ok; then say "gitea: already up"; else gitea_start; say "gitea: started"; fi ;;
  start-tokenapi) if tokenapi_ok; then say "token API: already up"; else tokenapi_start; say "token API: started"; fi ;;
  seal-openbao)
    r="$(bao_api PUT sys/seal "$BAO_ROOT_TOKEN_FILE" </dev/null)"
    [[ "$r" == 204* || "$r" == 200* ]] || die "openbao: seal failed: $r"
    say "openbao: sealed" ;;
  status)
    for h in "${HOSTS[@]}"; do
      ip="${HOST_IP[$h]}"
      port_status "$h-sshd" "$ip" 22
      for k in "${KINDS[@]}"; do port_status "$h-$k-app" "$ip" "${KIND_PORT[$k]}"; done
      [[ "$h" == "$PGB_HOST" ]] && port_status "$h-pgbouncer" "$ip" "$PGB_PORT"
      if pidfile_alive "$RUN/$h-journald.pid"; then echo "$h-journald $(host_journal "$h") up"; else echo "$h-journald $(host_journal "$h") down"; fi
      [[ -e "$(host_etc "$h")/FAIL_HEALTH" ]] && echo "$h FAIL_HEALTH on"
    done
    port_status target-sshd "$TARGET_IP" 22
    port_status redis "$REDIS_IP" "$REDIS_PORT"
    port_status postgres "$PG_IP" "$PG_PORT"
    port_status openbao "$BAO_IP" "$BAO_PORT"
    case "$(bao_health_code)" in
      503) echo "openbao sealed" ;;
      501) echo "openbao not initialized" ;;
    esac
    tokenapi_status
    notifyrx_status
    port_status etcd "$KUBE_IP" "$ETCD_PORT"
    port_status kube-apiserver "$KUBE_IP" "$KUBE_PORT"
    gitea_status
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
export OPENBAO_ADDR=$BAO_ADDR
export OPENBAO_CACERT=$(q "$BAO_CACERT")
export OPENBAO_BIN=$(q "$BAO_BIN")
export OPENBAO_ROOT_TOKEN_FILE=$(q "$BAO_ROOT_TOKEN_FILE")
export OPENBAO_ROLE_ID_FILE=$(q "$BAO_ROLE_ID_FILE")
export OPENBAO_SECRET_ID_FILE=$(q "$BAO_SECRET_ID_FILE")
export OPENBAO_APPROLE_MOUNT=approle
export OPENBAO_KV_MOUNT=$BAO_KV_MOUNT
export OPENBAO_KV_PREFIX=$BAO_KV_PREFIX
export OPENBAO_AUDIT_LOG=$(q "$BAO_AUDIT_LOG")
export KUBE_SERVER=$KUBE_URL
export KUBE_CACERT=$(q "$BAO_CACERT")
export KUBE_NAMESPACE=$KUBE_NAMESPACE
export KUBE_SECRET=$KUBE_SECRET
export KUBE_ADMIN_KUBECONFIG=$(q "$KUBE_ADMIN_KUBECONFIG")
export KUBE_READER_KUBECONFIG=$(q "$KUBE_READER_KUBECONFIG")
export KUBE_ROTATION_TOKEN_FILE=$(q "$KUBE_ROTATION_TOKEN_FILE")
EOF
    tokenapi_env
    notifyrx_env
    gitea_env
    ;;
  *) usage ;;
esac
