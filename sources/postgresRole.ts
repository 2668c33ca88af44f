/**
 * A PostgreSQL login per generation: generation N logs in as
 * `${loginPrefix}N`, a member of `group` (which holds the privileges). The
 * grant creates the new login beside the old, the revocation takes the old
 * one's LOGIN and ends its sessions, a withdrawal drops the new one.
 */
import { z } from "zod";
import { hostname, localPath, port, sqlIdentifier } from "../lib/fields";
import { shq } from "../lib/quote";
import { preamble } from "../lib/scripts/common";
import { defineSource } from "./kind";

const schema = z.strictObject({
    kind: z.literal("postgres-role"),
    host: hostname,
    port: port.default(5432),
    database: sqlIdentifier,
    group: sqlIdentifier,
    /** Generation N logs in as `${loginPrefix}${N}`. */
    loginPrefix: z.string().regex(/^[a-z_][a-z0-9_]{0,50}$/, "must be a lowercase SQL identifier prefix"),
    /** The login in use before the first managed rotation; defaults to `${loginPrefix}0`. */
    initialLogin: sqlIdentifier.optional(),
    adminUser: sqlIdentifier,
    adminPasswordFile: localPath,
});

/** The login a postgres-role credential of generation `g` uses. */
export function postgresLogin(src: z.output<typeof schema>, g: number): string {
    return g === 0 && src.initialLogin ? src.initialLogin : `${src.loginPrefix}${g}`;
}

export const postgresRole = defineSource({
    kind: "postgres-role",
    schema,
    types: ["password", "api-token"],
    login: postgresLogin,
    resolve(src, _written, on) {
        src.adminPasswordFile = on.file("adminPasswordFile", src.adminPasswordFile);
    },
    scripts(src, g) {
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
    },
    preflight: (
        src,
    ) => `out=$(PGPASSWORD="$(cat -- ${shq(src.adminPasswordFile)} 2>/dev/null)" PGCONNECT_TIMEOUT=10 psql -X -At -h ${shq(src.host)} -p ${shq(src.port)} -U ${shq(src.adminUser)} -d ${shq(src.database)} -c 'select 1' 2>&1) || true
[ "$out" = 1 ] || problem "postgres "${shq(`${src.host}:${src.port}`)}" does not accept the admin login "${shq(src.adminUser)}": $(printf '%s' "$out" | head -n 1)"`,
});
