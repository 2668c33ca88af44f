/**
 * An API token issued by an HTTP API: the grant POSTs the new token, the
 * revocation DELETEs the old one by its fingerprint, the verification GETs
 * `testUrl` with each. The admin token reaches curl's headers on a pipe,
 * never argv.
 */
import { z } from "zod";
import { httpUrl, localPath } from "../lib/fields";
import { shq } from "../lib/quote";
import { preamble } from "../lib/scripts/common";
import { defineSource } from "./kind";

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

/** `deleteUrl` with its placeholder as written (a URL parser escapes the braces). */
const deleteUrlOf = (src: { deleteUrl: string }) => src.deleteUrl.split("%7Bfingerprint%7D").join("{fingerprint}");

export const httpToken = defineSource({
    kind: "http-token",
    schema: z.strictObject({
        kind: z.literal("http-token"),
        /** POST with JSON {name, token} creates a token. */
        createUrl: httpUrl(),
        /** DELETE removes a token; `{fingerprint}` is replaced by the first 16 hex digits of its SHA-256. */
        deleteUrl: httpUrl().refine((u) => u.includes("%7Bfingerprint%7D") || u.includes("{fingerprint}"), "must contain {fingerprint}"),
        /** GET with `Authorization: Bearer <token>` answers 200 for a valid token. */
        testUrl: httpUrl(),
        adminTokenFile: localPath,
        /** The CA bundle that signs the API's certificate (https with a private CA); default: the system's CAs. */
        caFile: localPath.optional(),
    }),
    types: ["password", "api-token"],
    resolve(src, _written, on) {
        src.adminTokenFile = on.file("adminTokenFile", src.adminTokenFile);
        if (src.caFile) src.caFile = on.file("caFile", src.caFile);
    },
    scripts(src, g) {
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
url=${shq(deleteUrlOf(src))}
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
    },
    preflight(src) {
        // The admin token is tried on a DELETE of a fingerprint no token has (sixteen zeros): an API that
        // knows the token answers 404 (or 2xx), one that refuses it 401/403, and nothing is changed.
        const probe = deleteUrlOf(src).split("{fingerprint}").join("0000000000000000");
        return `${httpCall(src.caFile)}admin_file=${shq(src.adminTokenFile)}
test_url=${shq(src.testUrl)}
delete_url=${shq(src.deleteUrl)}
http_call -- "$test_url"
[ "$code" != 000 ] || problem "$test_url (source.testUrl) does not answer$why"
if [ -r "$admin_file" ]; then
  http_call -X DELETE -H @<(printf 'Authorization: Bearer %s\\n' "$(cat -- "$admin_file")") -- ${shq(probe)}
  case "$code" in
    401|403) problem "$delete_url (source.deleteUrl) refuses the admin token in $admin_file (source.adminTokenFile): HTTP $code" ;;
    000) problem "$delete_url (source.deleteUrl) does not answer$why" ;;
  esac
else
  problem "cannot read the admin token file $admin_file (source.adminTokenFile)"
fi`;
    },
});
