# shellcheck shell=bash
# Shared settings and helpers for the lab scripts (sourced, not run).
# Never prints or puts secret values in argv.

LAB_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${LAB_DIR:-}" ]]; then
  LAB_DIR="$LAB_SRC/../.lab"
fi
mkdir -p "$LAB_DIR"
LAB_DIR="$(cd "$LAB_DIR" && pwd)"
export LAB_DIR

HOSTS=(host1 host2 host3)
declare -A HOST_IP=([host1]=127.0.1.11 [host2]=127.0.1.12 [host3]=127.0.1.13)
TARGET_IP=127.0.1.20
# The deploy key's authorized_keys on the SSH target: a fixed path (one lab per
# machine), so stack files can name it whatever directory the checkout is in.
TARGET_AUTH_KEYS=/var/lib/rotation-lab/target/authorized_keys
REDIS_IP=127.0.1.30
REDIS_PORT=6379
PG_IP=127.0.1.31
PG_PORT=5432
PGB_HOST=host3
PGB_PORT=6432
KINDS=(redis pg ssh)
declare -A KIND_PORT=([redis]=8081 [pg]=8082 [ssh]=8083)
declare -A KIND_CONF=([redis]=redis.yaml [pg]=pg.env [ssh]=deploy_key)
LAB_IPS=(127.0.1.11 127.0.1.12 127.0.1.13 127.0.1.20 127.0.1.30 127.0.1.31)

PG_BIN=/usr/lib/postgresql/15/bin
RUN="$LAB_DIR/run"
APP_ETC=/etc/rotation-app
APP_LOG=/var/log/rotation-app

say() { echo "lab: $*"; }
die() { echo "lab: ERROR: $*" >&2; exit 1; }

pid_alive() { [[ -n "${1:-}" && "$1" =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null; }
pidfile_pid() { [[ -f "$1" ]] && tr -dc '0-9' <"$1" || true; }
pidfile_alive() { pid_alive "$(pidfile_pid "$1")"; }

# port_open IP PORT: a TCP connect succeeds within 1 s
port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# wait_for SECONDS CMD...: poll CMD every 0.1 s
wait_for() {
  local n=$(( $1 * 10 )); shift
  while (( n-- > 0 )); do "$@" && return 0; sleep 0.1; done
  "$@"
}

# kill_pid PID: TERM, wait up to 5 s, then KILL
kill_pid() {
  local pid="$1" i
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do pid_alive "$pid" || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
kill_pidfile() { local p; p="$(pidfile_pid "$1")"; [[ -n "$p" ]] && kill_pid "$p"; rm -f "$1"; }

# pids listening on IP (any port) or IP:PORT
listener_pids() {
  local filter="src $1"
  [[ -n "${2:-}" ]] && filter="src $1:$2"
  ss -Hltnp "$filter" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u || true
}
kill_listeners() {
  local p
  for p in $(listener_pids "$@"); do kill_pid "$p"; done
}

# kill every process in the mount namespace of PID (never our own namespace)
kill_namespace_of() {
  local holder="$1" ns mine p pids=()
  pid_alive "$holder" || return 0
  ns="$(readlink "/proc/$holder/ns/mnt" 2>/dev/null)" || return 0
  mine="$(readlink /proc/self/ns/mnt)"
  [[ -n "$ns" && "$ns" != "$mine" ]] || return 0
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/ns/mnt" 2>/dev/null)" == "$ns" ]] && pids+=("${p#/proc/}")
  done
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local i
  for i in $(seq 50); do
    local any=0
    for p in "${pids[@]}"; do pid_alive "$p" && any=1; done
    ((any)) || return 0
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

host_etc() { echo "$LAB_DIR/hosts/$1/etc"; }
host_log() { echo "$LAB_DIR/hosts/$1/log"; }

# stop one consumer host (its whole namespace and anything on its ip)
stop_host_all() {
  local h="$1" ip="${HOST_IP[$1]}" f
  kill_namespace_of "$(pidfile_pid "$RUN/$h.pid")"
  kill_pidfile "$RUN/$h.pid"
  kill_pidfile "$RUN/$h-sshd.pid"
  for f in "$(host_etc "$h")"/*.pid; do [[ -e "$f" ]] && kill_pidfile "$f"; done
  kill_listeners "$ip"
}

redis_admin() { # redis_admin CMD...  (password via env, never argv)
  REDISCLI_AUTH="$(cat "$LAB_DIR/secrets/redis-admin.pass")" \
    timeout 5 redis-cli --no-auth-warning --user admin -h "$REDIS_IP" -p "$REDIS_PORT" "$@"
}
