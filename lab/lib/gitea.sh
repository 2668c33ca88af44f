# shellcheck shell=bash
# The lab's Gitea (the gitea-actions consumer's server), sourced after common.sh:
#   - Gitea v1.26.0 built by toolchain/gitea.sh into .tools/gitea, on
#     127.0.1.50:3000 (plain HTTP on loopback), sqlite, Actions enabled;
#   - it refuses to run as root: it runs as nobody (setpriv), its work dir
#     owned by nobody (under $LAB_DIR/gitea, or /var/lib/rotation-lab when
#     nobody cannot traverse $LAB_DIR), its binary a copy there too when
#     nobody cannot reach .tools/gitea (gitea_reachable);
#   - an admin `lab-admin` (random password, never shown), its API token in
#     secrets/gitea-admin.token (0600), a repository lab-admin/app with a
#     workflow .gitea/workflows/deploy.yml (on: workflow_dispatch), and its
#     Actions secret REDIS_PASSWORD holding generation 0 (store/app-redis).
# No runner can be had here (design notes, third round): a dispatched run
# stays queued. Never prints or puts a token or secret in argv.

GITEA_IP=127.0.1.50
GITEA_PORT=3000
GITEA_URL="http://$GITEA_IP:$GITEA_PORT"
GITEA_TOOLS="$LAB_SRC/../.tools/gitea"
GITEA_BIN="$GITEA_TOOLS/gitea"
GITEA_ADMIN=lab-admin
GITEA_REPO="$GITEA_ADMIN/app"
GITEA_SECRET=REDIS_PASSWORD
GITEA_WORKFLOW=deploy.yml
GITEA_TOKEN_FILE="$LAB_DIR/secrets/gitea-admin.token"
GITEA_PIDFILE="$RUN/gitea.pid"
GITEA_UID=65534
if runuser -u nobody -- test -x "$LAB_DIR" 2>/dev/null; then
  GITEA_DIR="$LAB_DIR/gitea"
else
  GITEA_DIR="/var/lib/rotation-lab/gitea-$(printf '%s' "$LAB_DIR" | sha256sum | cut -c1-12)"
fi
GITEA_INI="$GITEA_DIR/custom/conf/app.ini"

gitea_built() { [[ -x "$GITEA_BIN" && -d "$GITEA_TOOLS/options" && -d "$GITEA_TOOLS/templates" ]]; }

# nobody must reach the binary and its options/ and templates/: in a clone in a 0700 home they are
# where it cannot, so they are copied, once per build (.tools/gitea/.key), under /var/lib/rotation-lab.
gitea_reachable() {
  runuser -u nobody -- test -x "$GITEA_BIN" 2>/dev/null && return 0
  local key copy
  key="$(tr -cd 'A-Za-z0-9' <"$GITEA_TOOLS/.key" 2>/dev/null)"
  [[ -n "$key" ]] || key="$(sha256sum <"$GITEA_BIN" | cut -c1-12)"
  copy="/var/lib/rotation-lab/gitea-tools-$key"
  if [[ ! -x "$copy/gitea" ]]; then
    install -d -m 755 /var/lib/rotation-lab
    rm -rf "$copy.tmp"
    mkdir -m 755 "$copy.tmp"
    cp -R "$GITEA_BIN" "$GITEA_TOOLS/options" "$GITEA_TOOLS/templates" "$copy.tmp/"
    chmod -R a+rX "$copy.tmp"
    rm -rf "$copy"
    mv "$copy.tmp" "$copy"
  fi
  GITEA_TOOLS="$copy"
  GITEA_BIN="$copy/gitea"
}

# gitea_as ARGS...: the gitea binary as nobody, in its work dir, with a clean environment
gitea_as() {
  gitea_reachable
  (cd "$GITEA_DIR" && setpriv --reuid "$GITEA_UID" --regid "$GITEA_UID" --clear-groups -- \
    env -i PATH="$PATH" HOME="$GITEA_DIR/home" USER=nobody LANG=C.UTF-8 GITEA_WORK_DIR="$GITEA_DIR" \
    "$GITEA_BIN" --config "$GITEA_INI" --work-path "$GITEA_DIR" "$@")
}

# gitea_api METHOD PATH [JSON]: "<status> <body>" as the admin (token in a header on a pipe, never argv)
gitea_api() {
  local body data=()
  (($# >= 3)) && data=(--data-binary "$3")
  body="$(curl -s -m 10 -w '\n%{http_code}' -X "$1" -H @<(printf 'Authorization: token %s\n' "$(cat "$GITEA_TOKEN_FILE")") \
    -H 'Content-Type: application/json' "${data[@]}" "$GITEA_URL/api/v1$2" 2>/dev/null)" || true
  printf '%s %s' "${body##*$'\n'}" "${body%$'\n'*}"
}

gitea_ok() {
  pidfile_alive "$GITEA_PIDFILE" && [[ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$GITEA_URL/api/v1/version" 2>/dev/null)" == 200 ]]
}

gitea_write_config() {
  mkdir -p "$GITEA_DIR/custom/conf" "$GITEA_DIR/data" "$GITEA_DIR/log" "$GITEA_DIR/home" "$GITEA_DIR/repos"
  ln -sfn "$GITEA_TOOLS/options" "$GITEA_DIR/options"
  ln -sfn "$GITEA_TOOLS/templates" "$GITEA_DIR/templates"
  [[ -f "$GITEA_INI" ]] || (umask 077; cat >"$GITEA_INI" <<EOF
APP_NAME = rotation lab
RUN_USER = nobody
RUN_MODE = prod
WORK_PATH = $GITEA_DIR

[server]
PROTOCOL = http
HTTP_ADDR = $GITEA_IP
HTTP_PORT = $GITEA_PORT
ROOT_URL = $GITEA_URL/
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
APP_DATA_PATH = $GITEA_DIR/data

[database]
DB_TYPE = sqlite3
PATH = $GITEA_DIR/data/gitea.db

[repository]
ROOT = $GITEA_DIR/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = $(openssl rand -hex 32)

[service]
DISABLE_REGISTRATION = true

[oauth2]
ENABLED = false

[mailer]
ENABLED = false

[actions]
ENABLED = true

[session]
PROVIDER = memory

[log]
MODE = file
LEVEL = Info
ROOT_PATH = $GITEA_DIR/log
logger.access.MODE = file
logger.router.MODE = file
EOF
)
  chown -R "$GITEA_UID:$GITEA_UID" "$GITEA_DIR"
}

gitea_start() {
  gitea_reachable
  kill_pidfile "$GITEA_PIDFILE"
  kill_listeners "$GITEA_IP"
  gitea_write_config
  mkdir -p "$RUN"
  # One simple command in the background (its own redirections, so no descriptor of ours stays open in it),
  # and its pid: setsid and setpriv exec, so it is gitea's.
  (
    cd "$GITEA_DIR" || exit 1
    setsid setpriv --reuid "$GITEA_UID" --regid "$GITEA_UID" --clear-groups -- \
      env -i PATH="$PATH" HOME="$GITEA_DIR/home" USER=nobody LANG=C.UTF-8 GITEA_WORK_DIR="$GITEA_DIR" \
      "$GITEA_BIN" --config "$GITEA_INI" --work-path "$GITEA_DIR" web </dev/null >>"$RUN/gitea.out" 2>&1 &
    echo $! >"$GITEA_PIDFILE"
  )
  wait_for 30 gitea_ok || die "gitea did not come up (see $RUN/gitea.out, $GITEA_DIR/log)"
}

gitea_stop() {
  kill_pidfile "$GITEA_PIDFILE"
  kill_listeners "$GITEA_IP"
}

# The admin, its token, the repository with its workflow and generation 0 of its secret: only what is missing.
gitea_seed() {
  local r
  if [[ ! -s "$GITEA_TOKEN_FILE" ]]; then
    gitea_as admin user create --admin --username "$GITEA_ADMIN" --email "$GITEA_ADMIN@lab.invalid" \
      --random-password --must-change-password=false >/dev/null 2>>"$RUN/gitea.out" ||
      gitea_as admin user list 2>/dev/null | grep -qw "$GITEA_ADMIN" || die "gitea: cannot create the admin user (see $RUN/gitea.out)"
    gitea_as admin user generate-access-token --username "$GITEA_ADMIN" --token-name "rotation-lab-$(date +%s)" --scopes all --raw 2>>"$RUN/gitea.out" |
      write_secret_file "$GITEA_TOKEN_FILE" root:
    [[ -s "$GITEA_TOKEN_FILE" ]] || die "gitea: no admin token (see $RUN/gitea.out)"
  fi
  r="$(gitea_api GET "/repos/$GITEA_REPO")"
  if [[ "${r%% *}" == 404 ]]; then
    r="$(gitea_api POST /user/repos '{"name":"app","auto_init":true,"default_branch":"main","private":true}')"
    [[ "${r%% *}" == 201 ]] || die "gitea: cannot create $GITEA_REPO: ${r%% *}"
    r="$(gitea_api PATCH "/repos/$GITEA_REPO" '{"has_actions":true}')"
    [[ "${r%% *}" == 200 ]] || die "gitea: cannot enable Actions on $GITEA_REPO: ${r%% *}"
  elif [[ "${r%% *}" != 200 ]]; then
    die "gitea: GET /repos/$GITEA_REPO answered ${r%% *}"
  fi
  if [[ "$(gitea_api GET "/repos/$GITEA_REPO/contents/.gitea/workflows/$GITEA_WORKFLOW" | cut -d' ' -f1)" == 404 ]]; then
    local wf
    wf="$(printf '%s\n' 'name: deploy' 'on: [workflow_dispatch]' 'jobs:' '  deploy:' '    runs-on: ubuntu-latest' '    steps:' \
      '      - run: test -n "${{ secrets.REDIS_PASSWORD }}"' | base64 -w0)"
    r="$(gitea_api POST "/repos/$GITEA_REPO/contents/.gitea/workflows/$GITEA_WORKFLOW" "{\"content\":\"$wf\",\"message\":\"deploy workflow\",\"branch\":\"main\"}")"
    [[ "${r%% *}" == 201 ]] || die "gitea: cannot add the workflow: ${r%% *} ${r#* }"
  fi
  # Generation 0 of the Actions secret, only when the repository has none yet (a rotation's result survives restarts).
  if ! gitea_api GET "/repos/$GITEA_REPO/actions/secrets" | cut -d' ' -f2- | grep -q "\"$GITEA_SECRET\""; then
    r="$(node -e 'process.stdout.write(JSON.stringify({data: require("fs").readFileSync(process.argv[1], "utf8")}))' "$LAB_DIR/store/app-redis" |
      curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT -H @<(printf 'Authorization: token %s\n' "$(cat "$GITEA_TOKEN_FILE")") \
        -H 'Content-Type: application/json' --data-binary @- "$GITEA_URL/api/v1/repos/$GITEA_REPO/actions/secrets/$GITEA_SECRET")"
    [[ "$r" == 201 || "$r" == 204 ]] || die "gitea: cannot seed the Actions secret $GITEA_SECRET: $r"
  fi
}

# Start or repair (idempotent). Without a build (bin/setup-toolchain), the lab runs without Gitea.
gitea_up() {
  if ! gitea_built; then
    say "gitea: not built ($GITEA_BIN missing: bin/setup-toolchain builds it); the lab runs without it"
    return 0
  fi
  if gitea_ok; then say "gitea already up on $GITEA_IP:$GITEA_PORT"
  else say "starting gitea on $GITEA_IP:$GITEA_PORT"; gitea_start; fi
  gitea_seed
}

# --reset: a fresh Gitea (database, repositories, logs, admin token).
gitea_reset() {
  gitea_stop
  rm -rf "$GITEA_DIR" "$GITEA_TOKEN_FILE"
}

gitea_status() {
  port_status gitea "$GITEA_IP" "$GITEA_PORT"
}

gitea_env() {
  cat <<EOF
export GITEA_URL=$GITEA_URL
export GITEA_TOKEN_FILE=$(printf '%q' "$GITEA_TOKEN_FILE")
export GITEA_REPO=$GITEA_REPO
EOF
}

# lab.json's entry for Gitea (no secret); null when it is not built.
gitea_json() {
  gitea_built || { printf '{"gitea":null}'; return 0; }
  GITEA_URL="$GITEA_URL" GITEA_IP="$GITEA_IP" GITEA_PORT="$GITEA_PORT" GITEA_TOKEN_FILE="$GITEA_TOKEN_FILE" GITEA_DIR="$GITEA_DIR" \
  GITEA_REPO="$GITEA_REPO" GITEA_SECRET="$GITEA_SECRET" GITEA_WORKFLOW="$GITEA_WORKFLOW" GITEA_PIDFILE="$GITEA_PIDFILE" GITEA_INI="$GITEA_INI" RUN="$RUN" \
  node -e 'const e = process.env; process.stdout.write(JSON.stringify({
    gitea: { url: e.GITEA_URL, host: e.GITEA_IP, port: +e.GITEA_PORT, version: "1.26.0", adminUser: "lab-admin", tokenFile: e.GITEA_TOKEN_FILE,
      repo: e.GITEA_REPO, secret: e.GITEA_SECRET, workflow: e.GITEA_WORKFLOW, workDir: e.GITEA_DIR, config: e.GITEA_INI,
      database: `${e.GITEA_DIR}/data/gitea.db`, logDir: `${e.GITEA_DIR}/log`, pidfile: e.GITEA_PIDFILE, out: `${e.RUN}/gitea.out` },
  }))'
}
