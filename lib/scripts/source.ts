import type { SourceConfig, SshTarget } from "../config";
import { shq } from "../quote";
import { pinnedKnownHosts, preamble } from "./common";

/**
 * What the rotation does at the secret's source, as scripts. Secrets arrive on
 * stdin: grant and withdraw get the new credential, revoke the previous one,
 * verify both (previous first). For an ssh-key source the grant material is
 * the public key, the verify material the private keys.
 */
export interface SourceScripts {
    /** Where grant, withdraw and revoke run (verify always runs locally). */
    target: { kind: "local" } | SshTarget;
    grant: string;
    withdraw: string;
    revoke: string;
    verify: string;
}

export interface Generations {
    /** The generation being rolled out. */
    generation: number;
    secretName: string;
}

/** The login a postgres-role credential of generation `g` uses. */
export function postgresLogin(src: Extract<SourceConfig, { kind: "postgres-role" }>, g: number): string {
    return g === 0 && src.initialLogin ? src.initialLogin : `${src.loginPrefix}${g}`;
}

function redisScripts(src: Extract<SourceConfig, { kind: "redis-acl" }>): SourceScripts {
    // Config values reach the scripts as single-quoted shell variables, never spliced into a string.
    const lib = `redis_user=${shq(src.user)}
redis_at=${shq(`${src.host}:${src.port}`)}
admin_acl() {
  local out
  out=$(printf '%s\\n' "$1" | REDISCLI_AUTH="$(cat -- ${shq(src.adminPasswordFile)})" redis-cli --no-auth-warning -h ${shq(src.host)} -p ${shq(src.port)} --user ${shq(src.adminUser)} 2>&1) || true
  case "$out" in OK) return 0 ;; *"$2"*) [ -n "$2" ] && return 0 ;; esac
  fail "redis $redis_at: ACL SETUSER $redis_user failed: $out"
}
hash_of() { printf '%s' "$1" | sha256sum | cut -c1-64; }
auth_ok() {
  local r
  r=$(REDISCLI_AUTH="$1" redis-cli --no-auth-warning -h ${shq(src.host)} -p ${shq(src.port)} --user ${shq(src.user)} PING 2>&1) || true
  [ "$r" = PONG ]
}
`;
    return {
        target: { kind: "local" },
        grant: `${preamble("NEW")}${lib}admin_acl "ACL SETUSER $redis_user on #$(hash_of "$NEW")" ""\nauth_ok "$NEW" || fail "redis: the new password of $redis_user is not accepted after the grant"\n`,
        withdraw: `${preamble("NEW")}${lib}admin_acl "ACL SETUSER $redis_user !$(hash_of "$NEW")" "does not exist"\n`,
        revoke: `${preamble("OLD")}${lib}admin_acl "ACL SETUSER $redis_user !$(hash_of "$OLD")" "does not exist"\n`,
        verify: `${preamble("OLD", "NEW")}${lib}auth_ok "$NEW" || fail "redis: the new password of $redis_user is rejected"\n! auth_ok "$OLD" || fail "redis: the old password of $redis_user is still accepted"\necho "redis: old password rejected, new accepted"\n`,
    };
}

function postgresScripts(src: Extract<SourceConfig, { kind: "postgres-role" }>, g: Generations): SourceScripts {
    const login = postgresLogin(src, g.generation);
    const previous = postgresLogin(src, g.generation - 1);
    const lib = `login=${shq(login)}
previous=${shq(previous)}
psql_admin() {
  PGPASSWORD="$(cat -- ${shq(src.adminPasswordFile)})" PGCONNECT_TIMEOUT=10 psql -X -q -At -v ON_ERROR_STOP=1 -h ${shq(src.host)} -p ${shq(src.port)} -U ${shq(src.adminUser)} -d ${shq(src.database)} -f - 2>&1
}
sql_lit() { local s=\${1//\\'/\\'\\'}; printf "'%s'" "$s"; }
can_login() {
  PGPASSWORD="$2" PGCONNECT_TIMEOUT=10 psql -X -At -h ${shq(src.host)} -p ${shq(src.port)} -U "$1" -d ${shq(src.database)} -c 'select 1' >/dev/null 2>&1
}
# A failed statement must not be echoed into the server log with its password literal.
quiet='\\set ON_ERROR_STOP 0
SET log_min_error_statement = panic;
\\set ON_ERROR_STOP 1'
# Takes a login's LOGIN right away and ends its open sessions.
disable() {
  printf "DO \\$\\$BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN ALTER ROLE %s NOLOGIN; END IF; END\\$\\$;\\n" "$1" "$1"
  printf "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '%s';\\n" "$1"
}
`;
    return {
        target: { kind: "local" },
        grant: `${preamble("NEW")}${lib}out=$( { printf '%s\\n' "$quiet"
  printf "DO \\$\\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE %s LOGIN IN ROLE %s; END IF; END\\$\\$;\\n" ${shq(login)} ${shq(login)} ${shq(src.group)}
  printf 'ALTER ROLE %s WITH LOGIN PASSWORD %s;\\n' ${shq(login)} "$(sql_lit "$NEW")"
} | psql_admin) || fail "postgres: creating login $login failed: $out"
can_login "$login" "$NEW" || fail "postgres: login $login is not accepted after the grant"
`,
        withdraw: `${preamble("NEW")}${lib}out=$( { disable ${shq(login)}; printf 'DROP ROLE IF EXISTS %s;\\n' ${shq(login)}; } | psql_admin) || fail "postgres: dropping login $login failed: $out"\n`,
        revoke: `${preamble("OLD")}${lib}out=$(disable ${shq(previous)} | psql_admin) || fail "postgres: revoking login $previous failed: $out"\n`,
        verify: `${preamble("OLD", "NEW")}${lib}can_login "$login" "$NEW" || fail "postgres: login $login with the new password is rejected"\n! can_login "$previous" "$OLD" || fail "postgres: login $previous with the old password is still accepted"\necho "postgres: $previous rejected, $login accepted"\n`,
    };
}

function authorizedKeyScripts(src: Extract<SourceConfig, { kind: "ssh-authorized-key" }>, g: Generations, hostKey: string): SourceScripts {
    const file = shq(src.authorizedKeysFile);
    const drop = (v: string) => `blob=$(printf '%s' "$${v}" | awk '{print $2}')
[ -n "$blob" ] || fail "no public key on stdin"
[ -f ${file} ] || exit 0
tmp=$(mktemp ${shq(src.authorizedKeysFile + ".XXXXXX")})
awk -v b="$blob" '{keep=1; for (i = 1; i <= NF; i++) if ($i == b) keep=0; if (keep) print}' ${file} > "$tmp"
chmod --reference=${file} "$tmp"; chown --reference=${file} "$tmp" 2>/dev/null || true
mv -f -- "$tmp" ${file}
`;
    return {
        target: { kind: "ssh", host: src.host, port: src.port, user: src.user, hostKey, privateKeyFile: src.privateKeyFile },
        grant: `${preamble("PUB")}blob=$(printf '%s' "$PUB" | awk '{print $2}')
[ -n "$blob" ] || fail "no public key on stdin"
touch ${file}
if ! awk -v b="$blob" '{for (i = 1; i <= NF; i++) if ($i == b) found=1} END {exit !found}' ${file}; then
  printf '%s %s\\n' "$(printf '%s' "$PUB" | awk '{print $1" "$2}')" ${shq(`rotation:${g.secretName}:g${g.generation}`)} >> ${file}
fi
`,
        withdraw: `${preamble("PUB")}${drop("PUB")}`,
        revoke: `${preamble("PUB")}${drop("PUB")}`,
        verify: `${preamble("OLD", "NEW")}${pinnedKnownHosts("kh", src.host, src.port, hostKey)}account=${shq(`${src.loginUser}@${src.host}`)}
try_login() {
  local d rc=0
  d=$(mktemp -d)
  printf '%s\\n' "$1" > "$d/key"
  chmod 600 "$d/key"
  ssh -n -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$kh" -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10 -o LogLevel=ERROR -i "$d/key" -p ${shq(src.port)} -l ${shq(src.loginUser)} -- ${shq(src.host)} true >/dev/null 2>&1 || rc=$?
  rm -rf -- "$d"
  return $rc
}
try_login "$NEW" || fail "ssh: the new key is rejected by $account"
! try_login "$OLD" || fail "ssh: the old key is still accepted by $account"
echo "ssh: old key rejected, new accepted"
`,
    };
}

/**
 * curl's answer as `code=<http status>` (000: none), with why when there was
 * none; the admin token reaches curl's headers on a pipe, never argv.
 */
export function httpCall(caFile?: string): string {
    // A private CA (source.caFile) is passed as a file; without one curl trusts the system's CAs.
    return `${caFile ? `ca=(--cacert ${shq(caFile)})` : "ca=()"}
http_call() {
  local rc=0
  code=$(curl --globoff -s -o /dev/null -w '%{http_code}' --max-time 20 "\${ca[@]}" "$@") || rc=$?
  case "$rc" in 0) why= ;; 6) why=" (curl: cannot resolve the host)" ;; 7) why=" (curl: connection refused)" ;; 28) why=" (curl: no answer within 20s)" ;;
    35) why=" (curl: the TLS handshake failed)" ;; 60|77) why=" (curl: the server's certificate is not trusted; source.caFile names the CA that signs it)" ;; *) why=" (curl exit $rc)" ;; esac
  [ -n "$code" ] || code=000
}
`;
}

function httpTokenScripts(src: Extract<SourceConfig, { kind: "http-token" }>, g: Generations): SourceScripts {
    // Config values enter as single-quoted variables; messages name the secret, the field and the URL, never a token.
    const lib = `where=${shq(`http-token source of ${g.secretName}`)}
admin_file=${shq(src.adminTokenFile)}
test_url=${shq(src.testUrl)}
admin_header() { printf 'Authorization: Bearer %s\\n' "$(cat -- "$admin_file")"; }
${httpCall(src.caFile)}refused() {
  case "$code" in
    401|403) fail "$where: $1 (source.$2) answered $code: the admin token in $admin_file (source.adminTokenFile) is refused" ;;
    *) fail "$where: $1 (source.$2) answered $code$why" ;;
  esac
}
`;
    const del = (v: string) => `${lib}fp=$(printf '%s' "$${v}" | sha256sum | cut -c1-16)
url=${shq(src.deleteUrl.split("%7Bfingerprint%7D").join("{fingerprint}"))}
url=\${url//\\{fingerprint\\}/$fp}
http_call -X DELETE -H @<(admin_header) -- "$url"
case "$code" in 2??|404) ;; *) refused "DELETE $url" deleteUrl ;; esac
`;
    const test = `token_ok() {
  local code
  code=$(printf 'Authorization: Bearer %s\\n' "$1" | curl --globoff -s -o /dev/null -w '%{http_code}' --max-time 20 "\${ca[@]}" -H @- -- "$test_url") || true
  [ "$code" = 200 ]
}
`;
    return {
        target: { kind: "local" },
        grant: `${preamble("NEW")}${lib}body=$(printf '%s\\0' "$NEW" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.stringify({name:process.argv[1],token:s.split("\\0")[0]})))' ${shq(`${g.secretName}-g${g.generation}`)})
url=${shq(src.createUrl)}
http_call -X POST -H @<(admin_header) -H 'Content-Type: application/json' --data-binary @<(printf '%s' "$body") -- "$url"
case "$code" in 2??) ;; *) refused "POST $url" createUrl ;; esac
`,
        withdraw: `${preamble("NEW")}${del("NEW")}`,
        revoke: `${preamble("OLD")}${del("OLD")}`,
        verify: `${preamble("OLD", "NEW")}${lib}${test}token_ok "$NEW" || fail "$where: the new token is rejected by $test_url (source.testUrl)"
! token_ok "$OLD" || fail "$where: the old token is still accepted by $test_url (source.testUrl)"
echo "http-token: old rejected, new accepted"
`,
    };
}

function commandScripts(src: Extract<SourceConfig, { kind: "command" }>, g: Generations): SourceScripts {
    // The operator's own commands read the same NUL-terminated stdin.
    return {
        target: { kind: "local" },
        grant: src.grant,
        withdraw: src.withdraw,
        revoke: src.revoke,
        verify: `${preamble("OLD", "NEW")}test_one() { printf '%s\\0' "$1" | bash -c ${shq(src.test)} >/dev/null 2>&1; }\ntest_one "$NEW" || fail ${shq(`command source of ${g.secretName}: the new secret is rejected by the test command (source.test)`)}\n! test_one "$OLD" || fail ${shq(`command source of ${g.secretName}: the old secret is still accepted by the test command (source.test)`)}\necho "source: old rejected, new accepted"\n`,
    };
}

/** Scripts for the grant, withdrawal, revocation and verification at the source. */
export function sourceScripts(src: SourceConfig, g: Generations, sourceHostKey?: string): SourceScripts {
    switch (src.kind) {
        case "redis-acl":
            return redisScripts(src);
        case "postgres-role":
            return postgresScripts(src, g);
        case "ssh-authorized-key":
            return authorizedKeyScripts(src, g, sourceHostKey ?? "");
        case "http-token":
            return httpTokenScripts(src, g);
        case "command":
            return commandScripts(src, g);
    }
}
