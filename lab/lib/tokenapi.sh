# shellcheck shell=bash
# The lab's API-token service (lab/tokenapi/server.js) and what rotates
# through it, sourced after common.sh:
#   - the token API on 127.0.1.33:8300 (admin token secrets/tokenapi-admin.token,
#     token hashes in tokenapi/tokens.json, request log run/tokenapi.log);
#   - a `token` consumer app on every host (:8084, /etc/rotation-app/token.env),
#     started inside the host's mount namespace, whose /healthz calls the
#     token API's /whoami with the token it holds;
#   - the key list of the `command` source's secret, app-api-key: sha256
#     hashes in a fixed path (one lab per machine, any checkout's stack names
#     it), and each host's /etc/rotation-app/api-key holding the key itself.
# Never prints or puts a token in argv.

TOKENAPI_IP=127.0.1.33
TOKENAPI_PORT=8300
TOKENAPI_URL="http://$TOKENAPI_IP:$TOKENAPI_PORT"
TOKENAPI_DIR="$LAB_DIR/tokenapi"
TOKENAPI_ADMIN_FILE="$LAB_DIR/secrets/tokenapi-admin.token"
TOKENAPI_LOG="$RUN/tokenapi.log"
TOKENAPI_PIDFILE="$RUN/tokenapi.pid"
TOKEN_APP_PORT=8084
API_KEYS_FILE=/var/lib/rotation-lab/keys/app-api-key.sha256

tokenapi_ok() {
  pidfile_alive "$TOKENAPI_PIDFILE" && [[ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$TOKENAPI_URL/healthz" 2>/dev/null)" == 200 ]]
}

tokenapi_start() {
  kill_pidfile "$TOKENAPI_PIDFILE"
  kill_listeners "$TOKENAPI_IP"
  mkdir -p "$RUN" "$TOKENAPI_DIR"; chmod 700 "$TOKENAPI_DIR"
  (umask 077; touch "$TOKENAPI_LOG")
  # A clean environment: nothing of the caller's reaches the service.
  setsid env -i PATH="$PATH" LANG=C.UTF-8 node "$LAB_SRC/tokenapi/server.js" --listen "$TOKENAPI_IP:$TOKENAPI_PORT" \
    --dir "$TOKENAPI_DIR" --admin-token-file "$TOKENAPI_ADMIN_FILE" --log "$TOKENAPI_LOG" --pidfile "$TOKENAPI_PIDFILE" \
    --seed-file "$LAB_DIR/store/app-token" --seed-name app-token-g0 </dev/null >>"$RUN/tokenapi.out" 2>&1 &
  wait_for 10 tokenapi_ok || die "the token API did not come up (see $RUN/tokenapi.out)"
}

tokenapi_stop() {
  kill_pidfile "$TOKENAPI_PIDFILE"
  kill_listeners "$TOKENAPI_IP"
}

# token_app_ok HOST: the host's token consumer app runs and listens
token_app_ok() { pidfile_alive "$(host_etc "$1")/token-app.pid" && port_open "${HOST_IP[$1]}" "$TOKEN_APP_PORT"; }

# token_app_start HOST: inside the host's mount namespace (it reads /etc/rotation-app/token.env there)
token_app_start() {
  local h="$1" holder slice
  holder="$(pidfile_pid "$RUN/$h.pid")"
  pid_alive "$holder" || die "$h is not running"
  slice="$(host_slice "$h")"
  [[ -n "$slice" ]] || die "$h has no cgroup slice for its units ($RUN/$h.slice)"
  kill_pidfile "$(host_etc "$h")/token-app.pid"
  kill_listeners "${HOST_IP[$h]}" "$TOKEN_APP_PORT"
  # in the host's unit token-app (its journal: lib/in-unit.sh), like the host's own apps
  setsid nsenter -t "$holder" -m -- bash "$LAB_SRC/lib/in-unit.sh" "$slice" "${KIND_UNIT[token]}" \
    node "$LAB_SRC/consumer/app.js" --kind token --config "$APP_ETC/token.env" \
    --listen "${HOST_IP[$h]}:$TOKEN_APP_PORT" --log "$APP_LOG/token-app.log" --pidfile "$APP_ETC/token-app.pid" --stdout journal \
    </dev/null >>"$RUN/$h-token-app.out" 2>&1 &
}

# Generation 0 of both secrets, the key list and the consumers' files: only what is missing.
tokenapi_seed() {
  local h etc
  for f in "$TOKENAPI_ADMIN_FILE" "$LAB_DIR/store/app-token" "$LAB_DIR/store/app-api-key"; do
    gen_pass "$f" 40
  done
  mkdir -p "$(dirname "$API_KEYS_FILE")"; chmod 755 "$(dirname "$API_KEYS_FILE")"
  if [[ ! -f "$API_KEYS_FILE" ]]; then
    (umask 077; sha256sum <"$LAB_DIR/store/app-api-key" | cut -c1-64 >"$API_KEYS_FILE")
  fi
  for h in "${HOSTS[@]}"; do
    etc="$(host_etc "$h")"
    [[ -f "$etc/token.env" ]] || { echo "TOKEN_API_URL=$TOKENAPI_URL/whoami"; echo "API_TOKEN=$(cat "$LAB_DIR/store/app-token")"; } | write_secret_file "$etc/token.env" root:
    [[ -f "$etc/api-key" ]] || write_secret_file "$etc/api-key" root: <"$LAB_DIR/store/app-api-key"
  done
}

# Start or repair (idempotent); the hosts must be up.
tokenapi_up() {
  local h started=()
  tokenapi_seed
  if tokenapi_ok; then say "token API already up on $TOKENAPI_IP:$TOKENAPI_PORT"
  else say "starting the token API on $TOKENAPI_IP:$TOKENAPI_PORT"; tokenapi_start; fi
  for h in "${HOSTS[@]}"; do
    token_app_ok "$h" && continue
    token_app_start "$h"; started+=("$h")
  done
  for h in "${started[@]}"; do
    wait_for 10 token_app_ok "$h" || die "$h: the token app did not come up (see $RUN/$h-token-app.out)"
  done
  ((${#started[@]} == 0)) || say "token apps started on ${started[*]} (:$TOKEN_APP_PORT)"
}

# --reset: tokens and the key list back to nothing (the hosts' files and the store go with up.sh's wipe).
tokenapi_reset() {
  rm -rf "$TOKENAPI_DIR" "$API_KEYS_FILE" "$TOKENAPI_LOG"
}

tokenapi_status() {
  local h
  port_status tokenapi "$TOKENAPI_IP" "$TOKENAPI_PORT"
  for h in "${HOSTS[@]}"; do
    port_status "$h-token-app" "${HOST_IP[$h]}" "$TOKEN_APP_PORT"
  done
}

tokenapi_env() {
  cat <<EOF
export TOKENAPI_URL=$TOKENAPI_URL
export TOKENAPI_ADMIN_TOKEN_FILE=$(printf '%q' "$TOKENAPI_ADMIN_FILE")
export TOKENAPI_LOG=$(printf '%q' "$TOKENAPI_LOG")
export TOKENAPI_STORAGE=$(printf '%q' "$TOKENAPI_DIR/tokens.json")
export STORE_APP_TOKEN=$(printf '%q' "$LAB_DIR/store/app-token")
export STORE_APP_API_KEY=$(printf '%q' "$LAB_DIR/store/app-api-key")
export API_KEYS_FILE=$API_KEYS_FILE
EOF
}

# lab.json's entries for the token API and the key list (one JSON object, no secret).
tokenapi_json() {
  TOKENAPI_URL="$TOKENAPI_URL" TOKENAPI_IP="$TOKENAPI_IP" TOKENAPI_PORT="$TOKENAPI_PORT" TOKENAPI_ADMIN_FILE="$TOKENAPI_ADMIN_FILE" \
  TOKENAPI_DIR="$TOKENAPI_DIR" TOKENAPI_LOG="$TOKENAPI_LOG" TOKENAPI_PIDFILE="$TOKENAPI_PIDFILE" API_KEYS_FILE="$API_KEYS_FILE" LAB_DIR="$LAB_DIR" \
  node -e 'const e = process.env; process.stdout.write(JSON.stringify({
    tokenapi: { url: e.TOKENAPI_URL, host: e.TOKENAPI_IP, port: +e.TOKENAPI_PORT, adminTokenFile: e.TOKENAPI_ADMIN_FILE,
      createUrl: `${e.TOKENAPI_URL}/tokens`, deleteUrl: `${e.TOKENAPI_URL}/tokens/{fingerprint}`, testUrl: `${e.TOKENAPI_URL}/whoami`,
      storage: `${e.TOKENAPI_DIR}/tokens.json`, log: e.TOKENAPI_LOG, pidfile: e.TOKENAPI_PIDFILE, initialName: "app-token-g0" },
    apiKeys: { file: e.API_KEYS_FILE, consumerConfig: "/etc/rotation-app/api-key" },
  }))'
}
