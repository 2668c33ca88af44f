#!/bin/bash
# Stop everything the lab started (safe when nothing runs). Keeps all state.
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

# OpenBao's graceful shutdown (seal, raft) takes 1-2 s: start it now, reap it below
bao_pid="$(pidfile_pid "$RUN/openbao.pid")"
pid_alive "$bao_pid" && kill -TERM "$bao_pid" 2>/dev/null || true

# Each service stops on its own (they share nothing): all at once, then wait for every one.
stops=()
for h in "${HOSTS[@]}"; do
  { say "stopping $h"; stop_host_all "$h"; } &
  stops+=($!)
done

{
  say "stopping ssh target"
  kill_pidfile "$RUN/target-sshd.pid"
  kill_listeners "$TARGET_IP"
} &
stops+=($!)

{
  if pidfile_alive "$RUN/redis.pid"; then
    # persist runtime ACL changes (rotations) into users.acl
    redis_admin ACL SAVE >/dev/null 2>&1 || echo "lab: warning: redis ACL SAVE failed" >&2
  fi
  say "stopping redis"
  kill_pidfile "$RUN/redis.pid"
  kill_listeners "$REDIS_IP"
} &
stops+=($!)

{ say "stopping the token API"; tokenapi_stop; } &
stops+=($!)

{ say "stopping the notification receiver"; notifyrx_stop; } &
stops+=($!)
# LAB_KEEP_KUBE=1 (up.sh --reset of a healthy lab): the Kubernetes API server stays up.
if [[ "${LAB_KEEP_KUBE:-0}" != 1 ]]; then
  { say "stopping kube-apiserver and etcd"; kube_stop; } &
  stops+=($!)
fi
{ say "stopping gitea"; gitea_stop; } &
stops+=($!)

{
  say "stopping openbao"
  bao_stop
  kill_listeners "$BAO_IP"
} &
stops+=($!)

{
  say "stopping postgres"
  # $LAB_DIR/pg may be a link (lab/up.sh: a lab dir user postgres cannot traverse).
  PGD="$(readlink -f "$LAB_DIR/pg" 2>/dev/null || echo "$LAB_DIR/pg")/data"
  if [[ -f "$PGD/postmaster.pid" ]]; then
    (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGD" stop -m fast -w -t 20 >/dev/null 2>&1) || true
  fi
  kill_listeners "$PG_IP"
} &
stops+=($!)
stopped=0
for j in "${stops[@]}"; do wait "$j" || stopped=$?; done

# fallback: anything still carrying the lab dir in its command line
# (only lab daemons / apps, never this script or its callers)
lab_stragglers() {
  local p comm cmd
  for p in $(pgrep -f -- "$LAB_DIR/" || true); do
    [[ $p == "$$" || $p == "$PPID" ]] && continue
    comm="$(cat "/proc/$p/comm" 2>/dev/null)" || continue
    cmd="$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" || continue
    case "$comm" in
      sshd|pgbouncer|redis-server|postgres|ssh|sleep|bao) echo "$p" ;;
      *) [[ "$cmd" == *"$LAB_SRC/consumer/app.js"* || "$cmd" == *"$LAB_SRC/lib/host-ns.sh"* ]] && echo "$p" ;;
    esac
  done
}
for p in $(lab_stragglers); do kill_pid "$p"; done
for ip in "${LAB_IPS[@]}"; do kill_listeners "$ip"; done
# key copies left by consumer apps that were killed hard
for d in /tmp/rotation-app-ssh-*; do
  [[ -d "$d" ]] || continue
  p="${d#/tmp/rotation-app-ssh-}"; p="${p%%-*}"
  pid_alive "$p" || rm -rf "$d"
done
say "down"
exit "$stopped"
