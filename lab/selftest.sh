#!/bin/bash
# Check a running lab end to end. Exits non-zero with a message on the first failure.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
START=$SECONDS

fail() { echo "selftest: FAIL: $*" >&2; exit 1; }
ok() { echo "selftest: ok   $*"; }

[[ -f "$LAB_DIR/lab.json" ]] || fail "no $LAB_DIR/lab.json (run lab/up.sh)"
KEY="$LAB_DIR/operator/id_ed25519"
lab_ssh() { # lab_ssh IP CMD...
  local ip="$1"; shift
  timeout 15 ssh -F /dev/null -i "$KEY" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$LAB_DIR/known_hosts" -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=5 \
    -o LogLevel=ERROR "root@$ip" "$@"
}
http() { # http URL -> prints "CODE BODY"
  curl -sS -m 10 -o /tmp/lab-selftest.$$ -w '%{http_code}' "$1" 2>/dev/null | tr -d '\n' || true
  echo " $(head -c 300 /tmp/lab-selftest.$$ 2>/dev/null | tr '\n' ' ')"
  rm -f /tmp/lab-selftest.$$
}

# 1. ssh into every host and the target with pinned host keys
for h in "${HOSTS[@]}"; do
  out="$(lab_ssh "${HOST_IP[$h]}" 'echo hello-$(id -un)' 2>&1)" || fail "ssh root@${HOST_IP[$h]} ($h): $out"
  [[ "$out" == hello-root ]] || fail "ssh $h: unexpected output: $out"
done
out="$(lab_ssh "$TARGET_IP" true 2>&1)" || fail "ssh root@$TARGET_IP (target): $out"
ok "ssh (operator key, StrictHostKeyChecking=yes) into ${HOSTS[*]} and target"

# 2. every app is healthy
for h in "${HOSTS[@]}"; do
  for k in "${KINDS[@]}"; do
    r="$(http "http://${HOST_IP[$h]}:${KIND_PORT[$k]}/healthz")"
    [[ "$r" == "200 ok"* ]] || fail "$h $k-app /healthz: $r"
    fp="$(http "http://${HOST_IP[$h]}:${KIND_PORT[$k]}/secret-fingerprint")"
    [[ "$fp" =~ ^200\ [0-9a-f]{64}\ $ ]] || fail "$h $k-app /secret-fingerprint: $fp"
  done
done
ok "/healthz 200 and /secret-fingerprint for redis/pg/ssh apps on ${HOSTS[*]}"

# 3. pgbouncer serves the configured login role
want="$(sed -n 's/^app *=.* user=\([^ ]*\).*/\1/p' "$(host_etc "$PGB_HOST")/pgbouncer.ini" | head -1)"
got="$(PGCONNECT_TIMEOUT=5 timeout 10 psql -X "host=${HOST_IP[$PGB_HOST]} port=$PGB_PORT dbname=app user=app" -Atc 'select current_user' 2>&1)" \
  || fail "psql through pgbouncer: $got"
[[ -n "$want" && "$got" == "$want" ]] || fail "pgbouncer: current_user '$got', configured '$want'"
ok "pgbouncer ${HOST_IP[$PGB_HOST]}:$PGB_PORT -> current_user=$got"

# 4. redis ACL: app with the store's secret works, a wrong one gets WRONGPASS
redis_as_app() { # stdin: password; args: command
  local pw; pw="$(cat)"
  REDISCLI_AUTH="$pw" timeout 5 redis-cli --no-auth-warning --user app -h "$REDIS_IP" -p "$REDIS_PORT" "$@" 2>&1
}
r="$(redis_as_app PING <"$LAB_DIR/store/app-redis")" || true
if [[ "$r" != PONG ]]; then
  # after a rotation the store may be behind: accept the secret host1's consumer holds
  r2="$(sed -n 's/^  password: "\(.*\)"$/\1/p' "$(host_etc host1)/redis.yaml" | redis_as_app PING)" || true
  [[ "$r2" == PONG ]] || fail "redis AUTH as app with the store's secret: $r"
  ok "redis AUTH app: store secret rejected, host1's current secret accepted (lab was rotated)"
else
  ok "redis AUTH app with the store's secret -> PONG"
fi
r="$(printf 'definitely-wrong-%s' "$RANDOM" | redis_as_app PING)" || true
[[ "$r" == *WRONGPASS* && "$r" != *PONG* ]] || fail "redis AUTH with a wrong password did not fail with WRONGPASS: $r"
ok "redis AUTH app with a wrong password -> WRONGPASS"

# 5. every host has its own /etc/rotation-app
for h in "${HOSTS[@]}"; do echo "marker-$h-$$" >"$(host_etc "$h")/selftest-marker"; done
for h in "${HOSTS[@]}"; do
  got="$(lab_ssh "${HOST_IP[$h]}" 'cat /etc/rotation-app/selftest-marker' 2>&1)" || fail "ssh $h cat marker: $got"
  [[ "$got" == "marker-$h-$$" ]] || fail "$h sees '$got' at /etc/rotation-app, expected its own marker"
done
[[ ! -e "$APP_ETC/selftest-marker" ]] || fail "root namespace sees a host's marker at $APP_ETC"
for h in "${HOSTS[@]}"; do rm -f "$(host_etc "$h")/selftest-marker"; done
ok "each host sees its own /etc/rotation-app over ssh; root namespace sees an empty mount point"

# 6. reload over ssh (SIGHUP) keeps the apps healthy
for k in "${KINDS[@]}"; do
  lab_ssh "${HOST_IP[host1]}" "kill -HUP \"\$(cat /etc/rotation-app/$k-app.pid)\"" || fail "SIGHUP $k-app on host1"
done
sleep 0.3
for k in "${KINDS[@]}"; do
  r="$(http "http://${HOST_IP[host1]}:${KIND_PORT[$k]}/healthz")"
  [[ "$r" == "200 ok"* ]] || fail "host1 $k-app after SIGHUP: $r"
done
grep -q "reloaded config" "$(host_log host1)/redis-app.log" || fail "host1 redis-app log shows no reload"
ok "SIGHUP over ssh reloads host1's apps, still healthy"
# journald: the app's unit journal shows the reload too, as `journalctl -u` on a real host (lib/in-unit.sh)
out="$(lab_ssh "${HOST_IP[host1]}" 'journalctl -q -u redis-app -o cat | grep -c "^reloaded config"' 2>&1)" || fail "journalctl -u redis-app on host1: $out"
[[ "$out" =~ ^[1-9][0-9]*$ ]] || fail "journalctl -u redis-app on host1 shows no reload: $out"
ok "journalctl -u redis-app on host1 shows its reloads ($out)"

# 7. failure injection
bash "$LAB_SRC/ctl.sh" fail-health host2 on >/dev/null
r="$(http "http://${HOST_IP[host2]}:${KIND_PORT[redis]}/healthz")"
bash "$LAB_SRC/ctl.sh" fail-health host2 off >/dev/null
[[ "$r" == "503 forced failure"* ]] || fail "fail-health on: expected 503 forced failure, got $r"
r="$(http "http://${HOST_IP[host2]}:${KIND_PORT[redis]}/healthz")"
[[ "$r" == "200 ok"* ]] || fail "fail-health off: $r"
ok "ctl.sh fail-health on/off"

bash "$LAB_SRC/ctl.sh" stop-host host2 >/dev/null
if lab_ssh "${HOST_IP[host2]}" true 2>/dev/null; then fail "ssh to host2 still works after stop-host"; fi
r="$(http "http://${HOST_IP[host2]}:${KIND_PORT[pg]}/healthz")"
bash "$LAB_SRC/ctl.sh" start-host host2 >/dev/null
[[ "$r" == "200 ok"* ]] || fail "host2 pg-app should keep running while its sshd is down: $r"
echo "marker-host2-$$" >"$(host_etc host2)/selftest-marker"
got="$(lab_ssh "${HOST_IP[host2]}" 'cat /etc/rotation-app/selftest-marker' 2>&1)" || { rm -f "$(host_etc host2)/selftest-marker"; fail "ssh host2 after start-host: $got"; }
rm -f "$(host_etc host2)/selftest-marker"
[[ "$got" == "marker-host2-$$" ]] || fail "host2 after start-host sees '$got' (namespace lost?)"
ok "ctl.sh stop-host/start-host host2 (ssh down then up, own namespace kept)"

# 8. OpenBao: unsealed, KV v2, AppRole login, policy, audit log without plaintext
jfield() { "$LAB_PY" -c 'import json,sys; d=json.load(sys.stdin); v=eval(sys.argv[1]); print(v if isinstance(v,str) else json.dumps(v))' "$1"; }
body() { printf '%s' "${1#* }"; }
r="$(bao_api GET sys/health)"
[[ "$r" == 200* ]] || fail "openbao $BAO_ADDR sys/health: $r"
[[ "$(body "$r" | jfield '[d["initialized"], d["sealed"], d["version"]]')" == "[true, false, \"$BAO_VERSION\"]" ]] \
  || fail "openbao sys/health: $r"
ok "openbao $BAO_VERSION at $BAO_ADDR (TLS, lab CA): initialized, unsealed"
r="$(bao_api GET "sys/mounts/$BAO_KV_MOUNT" "$BAO_ROOT_TOKEN_FILE")"
[[ "$r" == 200* && "$(body "$r" | jfield 'd["type"] + ":" + d["options"]["version"]')" == kv:2 ]] \
  || fail "openbao: $BAO_KV_MOUNT/ is not a KV v2 mount: $r"
ok "openbao: KV v2 mounted at $BAO_KV_MOUNT/ (root token from file)"

r="$("$LAB_PY" -c 'import json,sys; print(json.dumps({"role_id": open(sys.argv[1]).read().strip(), "secret_id": open(sys.argv[2]).read().strip()}))' \
     "$BAO_ROLE_ID_FILE" "$BAO_SECRET_ID_FILE" | bao_api POST auth/approle/login)"
[[ "$r" == 200* ]] || fail "openbao AppRole login (role $BAO_ROLE): $r"
tok="$(body "$r" | jfield 'd["auth"]["client_token"]')"
[[ "$(body "$r" | jfield '"rotation-lab" in d["auth"]["token_policies"]')" == true ]] || fail "AppRole token lacks policy $BAO_POLICY"
as_app() { bao_api "$1" "$2" <(printf '%s' "$tok"); }
r="$(as_app GET "$BAO_KV_MOUNT/data/$BAO_KV_PREFIX/app-redis")"
[[ "$r" == 200* ]] || fail "AppRole token: GET $BAO_KV_MOUNT/data/$BAO_KV_PREFIX/app-redis: $r"
(umask 077; body "$r" | jfield 'd["data"]["data"]["current"]' | tr -d '\n' >"$RUN/selftest-kv.$$")
trap 'rm -f "$RUN/selftest-kv.$$"' EXIT
[[ -s "$RUN/selftest-kv.$$" ]] || fail "$BAO_KV_MOUNT/$BAO_KV_PREFIX/app-redis has no field current"
if cmp -s "$RUN/selftest-kv.$$" "$LAB_DIR/store/app-redis"; then kvnote="= store/app-redis"; else kvnote="differs from store/app-redis (lab was rotated)"; fi
r="$(as_app GET "$BAO_KV_MOUNT/data/other")"
[[ "$r" == 403* ]] || fail "AppRole token: GET $BAO_KV_MOUNT/data/other should be 403: $r"
r="$(as_app GET "sys/internal/ui/mounts/$BAO_KV_MOUNT/$BAO_KV_PREFIX/app-redis")"
[[ "$r" == 200* ]] || fail "AppRole token: sys/internal/ui/mounts (KV version detection): $r"
r="$(as_app LIST "$BAO_KV_MOUNT/metadata/$BAO_KV_PREFIX/")"
[[ "$r" == 200* && "$(body "$r" | jfield 'sorted(d["data"]["keys"])')" == *'"app-pg", "app-redis"'* ]] \
  || fail "AppRole token: LIST $BAO_KV_MOUNT/metadata/$BAO_KV_PREFIX/: $r"
ok "openbao AppRole login -> policy $BAO_POLICY: read $BAO_KV_MOUNT/$BAO_KV_PREFIX/app-redis ($kvnote), 403 on $BAO_KV_MOUNT/data/other"

[[ -s "$BAO_AUDIT_LOG" ]] || fail "openbao audit log $BAO_AUDIT_LOG missing or empty"
grep -q '"hmac-sha256:' "$BAO_AUDIT_LOG" || fail "openbao audit log has no HMAC'd values"
for f in "$RUN/selftest-kv.$$" "$LAB_DIR/store/app-redis" "$BAO_SECRET_ID_FILE" "$BAO_ROOT_TOKEN_FILE"; do
  if grep -qF -f "$f" "$BAO_AUDIT_LOG"; then fail "openbao audit log contains the value of $f in plaintext"; fi
done
rm -f "$RUN/selftest-kv.$$"
ok "openbao audit log $BAO_AUDIT_LOG: HMAC'd, no plaintext secret value, secret_id or root token"

bash "$LAB_SRC/ctl.sh" stop-openbao >/dev/null
r="$(bao_api GET sys/health)"
bash "$LAB_SRC/ctl.sh" start-openbao >/dev/null || fail "ctl.sh start-openbao failed"
[[ "$r" == 000* ]] || fail "openbao still answers after stop-openbao: $r"
r="$(as_app GET "$BAO_KV_MOUNT/data/$BAO_KV_PREFIX/app-pg")"
[[ "$r" == 200* ]] || fail "AppRole token after stop/start-openbao: $r"
ok "ctl.sh stop-openbao/start-openbao (unreachable, then unsealed again; token and data kept)"

# 9. the token API and what rotates through it (lib/tokenapi.sh); tokens go to curl on a pipe, never argv
# shellcheck source=lib/tokenapi.sh
source "$LAB_SRC/lib/tokenapi.sh"
whoami_with() { printf 'Authorization: Bearer %s\n' "$(cat)" | curl -s -m 5 -o /dev/null -w '%{http_code}' -H @- "$TOKENAPI_URL/whoami" 2>/dev/null || true; }
for h in "${HOSTS[@]}"; do
  r="$(http "http://${HOST_IP[$h]}:$TOKEN_APP_PORT/healthz")"
  [[ "$r" == "200 ok token accepted"* ]] || fail "$h token-app /healthz: $r"
done
held="$(sed -n 's/^API_TOKEN=//p' "$(host_etc host1)/token.env")"
[[ "$(printf '%s' "$held" | whoami_with)" == 200 ]] || fail "token API: host1's token is not accepted at $TOKENAPI_URL/whoami"
[[ "$(printf 'never-issued-%s-0123456789' "$RANDOM" | whoami_with)" == 401 ]] || fail "token API: an unknown token is not refused with 401"
[[ "$(stat -c %a "$TOKENAPI_ADMIN_FILE") $(stat -c %a "$TOKENAPI_DIR/tokens.json")" == "600 600" ]] || fail "token API: admin token file or storage is not 0600"
code="$(printf 'Authorization: Bearer %s\n' "$(cat "$TOKENAPI_ADMIN_FILE")" | curl -s -m 5 -o /dev/null -w '%{http_code}' -X DELETE -H @- "$TOKENAPI_URL/tokens/0000000000000000" 2>/dev/null || true)"
[[ "$code" == 404 ]] || fail "token API: DELETE of an unknown fingerprint with the admin token answered $code, not 404"
for f in "$TOKENAPI_DIR/tokens.json" "$TOKENAPI_LOG"; do
  if printf '%s' "$held" | grep -qF -f - "$f"; then fail "token API: $f holds a token in plaintext"; fi
done
ok "token API $TOKENAPI_URL: token apps healthy on ${HOSTS[*]}, host1's token 200, unknown 401, admin DELETE 404, storage and log 0600 without a token"
bash "$LAB_SRC/ctl.sh" stop-tokenapi >/dev/null
r="$(http "http://${HOST_IP[host1]}:$TOKEN_APP_PORT/healthz")"
bash "$LAB_SRC/ctl.sh" start-tokenapi >/dev/null || fail "ctl.sh start-tokenapi failed"
[[ "$r" == 503* ]] || fail "host1 token-app should answer 503 while the token API is down: $r"
[[ "$(printf '%s' "$held" | whoami_with)" == 200 ]] || fail "token API: host1's token lost across stop/start"
ok "ctl.sh stop-tokenapi/start-tokenapi (consumers 503 while down; tokens kept)"
h1="$(sha256sum <"$(host_etc host1)/api-key" | cut -c1-64)"
grep -qxF "$h1" "$API_KEYS_FILE" || fail "command source: host1's api-key is not on the key list $API_KEYS_FILE"
ok "command source: host1's api-key is on the key list $API_KEYS_FILE"

echo "selftest: PASS ($((SECONDS - START))s)"
