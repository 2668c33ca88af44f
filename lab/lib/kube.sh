# shellcheck shell=bash
# The lab's Kubernetes API server, sourced after common.sh: the credential
# store of the `kubernetes-secret` kind (stores/kubernetesSecret.ts) keeps the
# lab's Redis password in a Secret there.
#   - etcd (Debian's etcd-server) on 127.0.1.40:2379, data in kube/etcd;
#   - kube-apiserver v1.37.2 (built by toolchain/kube-apiserver/build.sh into
#     .tools/) on https://127.0.1.40:6443, its serving certificate from the
#     lab CA (openbao/ca.pem), static tokens (secrets/kube-admin.token: group
#     system:masters; secrets/kube-reader.token: user lab-reader) and RBAC;
#   - namespace rotation-lab, Secret app-redis (key `current`: the Redis
#     password of generation 0), service account `rotation` allowed get and
#     patch on that Secret only (its token in secrets/kube-rotation.token),
#     lab-reader allowed get only.
# No kubelet, controller manager or scheduler: nothing reads the Secret but
# the rotation. Pid files and logs live in kube/ (not run/): `up.sh --reset`
# keeps a healthy server and only puts its objects back to generation 0.
# Never prints a token or the Secret, nor puts either in argv.

KUBE_IP=127.0.1.40
KUBE_PORT=6443
ETCD_PORT=2379
ETCD_PEER_PORT=2380
KUBE_VERSION=v1.37.2
KUBE_URL="https://$KUBE_IP:$KUBE_PORT"
KUBE_DIR="$LAB_DIR/kube"
KUBE_ETCD_DATA="$KUBE_DIR/etcd"
KUBE_TLS_CERT="$KUBE_DIR/apiserver.pem"
KUBE_TLS_KEY="$KUBE_DIR/apiserver.key"
KUBE_SA_KEY="$KUBE_DIR/service-account.key"
KUBE_SA_PUB="$KUBE_DIR/service-account.pub"
KUBE_TOKENS="$KUBE_DIR/tokens.csv"
KUBE_LOG="$KUBE_DIR/kube-apiserver.log"
KUBE_PIDFILE="$KUBE_DIR/kube-apiserver.pid"
ETCD_LOG="$KUBE_DIR/etcd.log"
ETCD_PIDFILE="$KUBE_DIR/etcd.pid"
KUBE_ADMIN_TOKEN_FILE="$LAB_DIR/secrets/kube-admin.token"
KUBE_READER_TOKEN_FILE="$LAB_DIR/secrets/kube-reader.token"
KUBE_ROTATION_TOKEN_FILE="$LAB_DIR/secrets/kube-rotation.token"
KUBE_ADMIN_KUBECONFIG="$LAB_DIR/secrets/kube-admin.kubeconfig"
KUBE_READER_KUBECONFIG="$LAB_DIR/secrets/kube-reader.kubeconfig"
KUBE_NAMESPACE=rotation-lab
KUBE_SA=rotation
KUBE_READER=lab-reader
KUBE_SECRET=app-redis
KUBE_ROLE=rotation-app-redis
KUBE_READER_ROLE=reader-app-redis
ETCD_BIN=/usr/bin/etcd
# the build's path (cheap: a hash of the wrapper module's files)
kube_bin() { echo "${KUBE_APISERVER_BIN:-$(bash "$LAB_SRC/../toolchain/kube-apiserver/build.sh" --path)}"; }

# kube_api METHOD PATH [CONTENT_TYPE]: one request as the lab's admin; the body
# comes on stdin for POST/PUT/PATCH. Prints "CODE BODY" (CODE 000: unreachable).
# The token travels in a header curl reads from a pipe, never in argv.
kube_api() {
  local m="$1" p="$2" ct="${3:-application/json}" out data=()
  case "$m" in POST | PUT | PATCH) data=(-H "Content-Type: $ct" --data-binary @-) ;; esac
  out="$(curl -sS -m 10 --cacert "$BAO_CACERT" -X "$m" -w '\n%{http_code}' "${data[@]}" \
    -H @<(printf 'Authorization: Bearer %s\n' "$(tr -d '\r\n' <"$KUBE_ADMIN_TOKEN_FILE")") "$KUBE_URL$p" 2>/dev/null)" || true
  [[ "$out" == *$'\n'* ]] || out=$'\n'"${out:-000}"
  printf '%s %s\n' "${out##*$'\n'}" "${out%$'\n'*}"
}
kube_code() { local r; r="$(kube_api "$@")"; echo "${r%% *}"; }

etcd_ok() { pidfile_alive "$ETCD_PIDFILE" && [[ "$(curl -s -m 2 "http://$KUBE_IP:$ETCD_PORT/health" 2>/dev/null)" == *'"health":"true"'* ]]; }
kube_ready() { [[ "$(kube_code GET /readyz)" == 200 ]]; }
kube_ok() { etcd_ok && pidfile_alive "$KUBE_PIDFILE" && kube_ready; }
kube_answers_or_died() { ! pidfile_alive "$KUBE_PIDFILE" || kube_ready; }

etcd_start() {
  kill_pidfile "$ETCD_PIDFILE"
  kill_listeners "$KUBE_IP" "$ETCD_PORT"
  kill_listeners "$KUBE_IP" "$ETCD_PEER_PORT"
  mkdir -p "$KUBE_ETCD_DATA"; chmod 700 "$KUBE_ETCD_DATA"
  setsid env -i PATH="$PATH" LANG=C.UTF-8 "$ETCD_BIN" --name lab --data-dir "$KUBE_ETCD_DATA" \
    --listen-client-urls "http://$KUBE_IP:$ETCD_PORT" --advertise-client-urls "http://$KUBE_IP:$ETCD_PORT" \
    --listen-peer-urls "http://$KUBE_IP:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://$KUBE_IP:$ETCD_PEER_PORT" \
    --initial-cluster "lab=http://$KUBE_IP:$ETCD_PEER_PORT" --logger zap \
    </dev/null >>"$ETCD_LOG" 2>&1 &
  echo $! >"$ETCD_PIDFILE"
  wait_for 20 etcd_ok || die "etcd did not come up (see $ETCD_LOG)"
}

kube_start() {
  local bin
  bin="$(kube_bin)"
  [[ -x "$bin" ]] || die "no kube-apiserver at $bin: run bin/setup-toolchain (it builds $KUBE_VERSION from Go modules)"
  kill_pidfile "$KUBE_PIDFILE"
  kill_listeners "$KUBE_IP" "$KUBE_PORT"
  # A clean environment: nothing of the caller's reaches the server.
  setsid env -i PATH="$PATH" HOME="$KUBE_DIR" LANG=C.UTF-8 "$bin" \
    --etcd-servers="http://$KUBE_IP:$ETCD_PORT" \
    --bind-address="$KUBE_IP" --advertise-address="$KUBE_IP" --secure-port="$KUBE_PORT" \
    --tls-cert-file="$KUBE_TLS_CERT" --tls-private-key-file="$KUBE_TLS_KEY" \
    --token-auth-file="$KUBE_TOKENS" --anonymous-auth=false --authorization-mode=RBAC \
    --service-account-issuer="$KUBE_URL" --service-account-key-file="$KUBE_SA_PUB" \
    --service-account-signing-key-file="$KUBE_SA_KEY" --service-cluster-ip-range=10.96.0.0/24 \
    --endpoint-reconciler-type=none --enable-priority-and-fairness=false --profiling=false \
    </dev/null >>"$KUBE_LOG" 2>&1 &
  echo $! >"$KUBE_PIDFILE"
  wait_for 90 kube_answers_or_died || true
  kube_ready || die "kube-apiserver did not become ready (see $KUBE_LOG)"
}

kube_stop() {
  kill_pidfile "$KUBE_PIDFILE"
  kill_listeners "$KUBE_IP" "$KUBE_PORT"
  kill_pidfile "$ETCD_PIDFILE"
  kill_listeners "$KUBE_IP"
}

# kube_apply COLLECTION NAME: the object (JSON on stdin) created, or replaced when it exists.
kube_apply() {
  local body code
  body="$(cat)"
  code="$(printf '%s' "$body" | kube_code POST "$1")"
  [[ "$code" == 201 ]] && return 0
  [[ "$code" == 409 ]] || die "kube: POST $1 ($2): HTTP $code"
  code="$(printf '%s' "$body" | kube_code PUT "$1/$2")"
  [[ "$code" == 200 ]] || die "kube: PUT $1/$2: HTTP $code"
}

# kube_seed RESET: the namespace, the RBAC, the Secret (generation 0 where it
# is missing, or always with RESET=1) and the rotation account's token.
kube_seed() {
  local reset="$1" ns="/api/v1/namespaces/$KUBE_NAMESPACE" rbac="/apis/rbac.authorization.k8s.io/v1/namespaces/$KUBE_NAMESPACE" code
  code="$(printf '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"%s"}}' "$KUBE_NAMESPACE" | kube_code POST /api/v1/namespaces)"
  [[ "$code" == 201 || "$code" == 409 ]] || die "kube: could not create namespace $KUBE_NAMESPACE: HTTP $code"
  code="$(printf '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"%s"}}' "$KUBE_SA" | kube_code POST "$ns/serviceaccounts")"
  [[ "$code" == 201 || "$code" == 409 ]] || die "kube: could not create service account $KUBE_SA: HTTP $code"
  # the least the rotation needs: get and patch on its one Secret (docs/kinds.md)
  printf '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"%s"},"rules":[{"apiGroups":[""],"resources":["secrets"],"resourceNames":["%s"],"verbs":["get","patch"]}]}' \
    "$KUBE_ROLE" "$KUBE_SECRET" | kube_apply "$rbac/roles" "$KUBE_ROLE"
  printf '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"%s"},"subjects":[{"kind":"ServiceAccount","name":"%s","namespace":"%s"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"%s"}}' \
    "$KUBE_ROLE" "$KUBE_SA" "$KUBE_NAMESPACE" "$KUBE_ROLE" | kube_apply "$rbac/rolebindings" "$KUBE_ROLE"
  # lab-reader may read the Secret, not write it: the pre-flight's refusal
  printf '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"%s"},"rules":[{"apiGroups":[""],"resources":["secrets"],"resourceNames":["%s"],"verbs":["get"]}]}' \
    "$KUBE_READER_ROLE" "$KUBE_SECRET" | kube_apply "$rbac/roles" "$KUBE_READER_ROLE"
  printf '{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"%s"},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"%s"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"%s"}}' \
    "$KUBE_READER_ROLE" "$KUBE_READER" "$KUBE_READER_ROLE" | kube_apply "$rbac/rolebindings" "$KUBE_READER_ROLE"
  if ((reset)); then
    code="$(kube_code DELETE "$ns/secrets/$KUBE_SECRET")"
    [[ "$code" == 200 || "$code" == 404 ]] || die "kube: could not delete Secret $KUBE_SECRET: HTTP $code"
  fi
  code="$(kube_code GET "$ns/secrets/$KUBE_SECRET")"
  if [[ "$code" == 404 ]]; then
    say "kube: seeding Secret $KUBE_NAMESPACE/$KUBE_SECRET (key current) from store/app-redis"
    # the value goes base64 through printf (a builtin) into curl's stdin, never argv
    code="$(printf '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"%s"},"type":"Opaque","data":{"current":"%s"}}' \
      "$KUBE_SECRET" "$(base64 -w0 <"$LAB_DIR/store/app-redis")" | kube_code POST "$ns/secrets")"
    [[ "$code" == 201 ]] || die "kube: could not create Secret $KUBE_SECRET: HTTP $code"
  elif [[ "$code" != 200 ]]; then
    die "kube: GET Secret $KUBE_SECRET: HTTP $code"
  fi
  # The rotation account's token (TokenRequest, 48 h), straight into its file.
  printf '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":172800}}' \
    | kube_api POST "$ns/serviceaccounts/$KUBE_SA/token" \
    | node -e '
const fs = require("fs");
const r = fs.readFileSync(0, "utf8"), code = r.slice(0, 3);
let t;
try { t = JSON.parse(r.slice(4)).status.token; } catch {}
if (code !== "201" || typeof t !== "string") { console.error(`lab: ERROR: kube: TokenRequest for the rotation account: HTTP ${code}`); process.exit(1); }
fs.writeFileSync(process.argv[1] + ".tmp", t, { mode: 0o600 });
fs.renameSync(process.argv[1] + ".tmp", process.argv[1]);' "$KUBE_ROTATION_TOKEN_FILE" || die "kube: no token for the rotation account"
}

# kube_kubeconfig FILE USER TOKEN_FILE: a kubeconfig (0600) for one of the static tokens
kube_kubeconfig() {
  write_secret_file "$1" root: <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: $KUBE_URL
    certificate-authority: $BAO_CACERT
users:
- name: $2
  user:
    token: $(tr -d '\r\n' <"$3")
contexts:
- name: $2@lab
  context:
    cluster: lab
    user: $2
    namespace: $KUBE_NAMESPACE
current-context: $2@lab
EOF
}

# kube_up RESET: certificate, keys, tokens; etcd and the server (left alone
# when healthy); then the objects. Needs the lab CA ($BAO_CACERT, $BAO_CAKEY).
kube_up() {
  local reset="$1" bin
  bin="$(kube_bin)"
  [[ -x "$bin" ]] || die "no kube-apiserver at $bin: run bin/setup-toolchain (it builds $KUBE_VERSION from Go modules)"
  [[ -x "$ETCD_BIN" ]] || die "no etcd at $ETCD_BIN: run lab/up.sh --prepare (Debian's etcd-server)"
  mkdir -p "$KUBE_DIR"; chmod 700 "$KUBE_DIR"
  local restart=0
  if ! cert_ok "$KUBE_TLS_KEY" "$KUBE_TLS_CERT" "$KUBE_IP"; then
    say "kube: issuing the apiserver's certificate for IP $KUBE_IP"
    issue_cert "$KUBE_TLS_KEY" "$KUBE_TLS_CERT" kube-apiserver "IP:$KUBE_IP,DNS:kubernetes,DNS:kubernetes.default" \
      || die "openssl: could not issue the kube-apiserver certificate"
    restart=1
  fi
  if [[ ! -s "$KUBE_SA_KEY" || ! -s "$KUBE_SA_PUB" ]]; then
    (umask 077
     openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$KUBE_SA_KEY" >/dev/null 2>&1 &&
     openssl pkey -in "$KUBE_SA_KEY" -pubout -out "$KUBE_SA_PUB" >/dev/null 2>&1) || die "openssl: could not make the service-account key"
    restart=1
  fi
  gen_pass "$KUBE_ADMIN_TOKEN_FILE" 40
  gen_pass "$KUBE_READER_TOKEN_FILE" 40
  local tokens
  tokens="$(printf '%s,lab-admin,lab-admin,"system:masters"\n%s,%s,%s\n' "$(cat "$KUBE_ADMIN_TOKEN_FILE")" "$(cat "$KUBE_READER_TOKEN_FILE")" "$KUBE_READER" "$KUBE_READER")"
  if [[ "$(cat "$KUBE_TOKENS" 2>/dev/null)" != "$tokens" ]]; then
    printf '%s\n' "$tokens" | write_secret_file "$KUBE_TOKENS" root:
    restart=1
  fi
  if ((restart == 0)) && kube_ok; then
    say "kube-apiserver already up on $KUBE_URL"
  else
    kube_stop
    # a server that was not healthy starts from an empty etcd on --reset
    ((reset)) && rm -rf "$KUBE_ETCD_DATA"
    say "starting etcd and kube-apiserver $KUBE_VERSION on $KUBE_IP"
    etcd_start
    kube_start
  fi
  kube_seed "$reset"
  kube_kubeconfig "$KUBE_ADMIN_KUBECONFIG" lab-admin "$KUBE_ADMIN_TOKEN_FILE"
  kube_kubeconfig "$KUBE_READER_KUBECONFIG" "$KUBE_READER" "$KUBE_READER_TOKEN_FILE"
}

# lab.json's "kubernetes" section
kube_json() {
  KUBE_URL="$KUBE_URL" KUBE_IP="$KUBE_IP" KUBE_PORT="$KUBE_PORT" KUBE_VERSION="$KUBE_VERSION" CA="$BAO_CACERT" NS="$KUBE_NAMESPACE" \
  SA="$KUBE_SA" ROLE="$KUBE_ROLE" SECRET="$KUBE_SECRET" READER="$KUBE_READER" READER_ROLE="$KUBE_READER_ROLE" \
  ADMIN_TOKEN="$KUBE_ADMIN_TOKEN_FILE" ADMIN_KC="$KUBE_ADMIN_KUBECONFIG" READER_TOKEN="$KUBE_READER_TOKEN_FILE" \
  READER_KC="$KUBE_READER_KUBECONFIG" ROT_TOKEN="$KUBE_ROTATION_TOKEN_FILE" BIN="$(kube_bin)" PIDFILE="$KUBE_PIDFILE" LOG="$KUBE_LOG" \
  ETCD="http://$KUBE_IP:$ETCD_PORT" ETCD_DATA="$KUBE_ETCD_DATA" ETCD_PIDFILE="$ETCD_PIDFILE" ETCD_LOG="$ETCD_LOG" \
  node -e '
const e = process.env;
process.stdout.write(JSON.stringify({ kubernetes: {
  server: e.KUBE_URL, host: e.KUBE_IP, port: +e.KUBE_PORT, version: e.KUBE_VERSION, caFile: e.CA, namespace: e.NS,
  secrets: { redis: e.SECRET },
  serviceAccount: e.SA, role: e.ROLE, rotationTokenFile: e.ROT_TOKEN,
  adminTokenFile: e.ADMIN_TOKEN, adminKubeconfig: e.ADMIN_KC,
  reader: e.READER, readerRole: e.READER_ROLE, readerTokenFile: e.READER_TOKEN, readerKubeconfig: e.READER_KC,
  apiserver: { bin: e.BIN, pidfile: e.PIDFILE, log: e.LOG },
  etcd: { endpoint: e.ETCD, dataDir: e.ETCD_DATA, pidfile: e.ETCD_PIDFILE, log: e.ETCD_LOG },
} }));'
}
