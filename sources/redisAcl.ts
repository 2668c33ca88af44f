/**
 * A Redis ACL user: the grant adds the new password's hash to the user
 * (`ACL SETUSER u #<sha256>`) beside the old one, the revocation removes the
 * old hash. An admin user changes the ACL; its password comes from a file.
 */
import { z } from "zod";
import { hostname, localPath, port } from "../lib/fields";
import { shq } from "../lib/quote";
import { preamble } from "../lib/scripts/common";
import { defineSource } from "./kind";

const aclUser = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be a Redis ACL user name");

export const redisAcl = defineSource({
    kind: "redis-acl",
    schema: z.strictObject({
        kind: z.literal("redis-acl"),
        host: hostname,
        port: port.default(6379),
        user: aclUser,
        adminUser: aclUser,
        adminPasswordFile: localPath,
    }),
    types: ["password", "api-token"],
    resolve(src, _written, on) {
        src.adminPasswordFile = on.file("adminPasswordFile", src.adminPasswordFile);
    },
    scripts(src) {
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
    },
    preflight: (
        src,
    ) => `out=$(printf 'PING\\n' | REDISCLI_AUTH="$(cat -- ${shq(src.adminPasswordFile)} 2>/dev/null)" timeout 10 redis-cli --no-auth-warning -h ${shq(src.host)} -p ${shq(src.port)} --user ${shq(src.adminUser)} 2>&1) || true
[ "$out" = PONG ] || problem "redis "${shq(`${src.host}:${src.port}`)}" does not accept the admin credential of "${shq(src.adminUser)}": $(printf '%s' "$out" | head -n 1)"`,
});
