/**
 * Pre-flight: what a rotation needs, checked before anything changes. On each
 * consumer's host: the config file exists, is a file (or a link to one) in a
 * directory the rollout can replace it in, holds the key its write format
 * expects (read as the drift check reads it), the reload command's program
 * exists, and there is room for the new file beside it and its `.bak`. At
 * the source and the store (on the operator's machine, or the source's host):
 * the admin credential works and the store is writable.
 *
 * Output: `PREFLIGHT <problem>` per problem, nothing when all is well.
 */
import type { WriteSpec } from "../../writers";
import type { RotationConfig } from "../config";
import { freshNonce } from "../drift";
import { shq } from "../quote";
import { driftCheckScript } from "./check";
import { httpCall } from "./source";

/**
 * The reload command's program exists: its first word, when that is a plain
 * program name or path (a command starting with a variable assignment, a
 * subshell or a quote is the operator's own shell; it is not second-guessed).
 */
function reloadProgramCheck(reload: string): string {
    const first = reload.trim().split(/\s+/)[0] ?? "";
    if (!/^[A-Za-z0-9_./+-]+$/.test(first)) return "";
    return `type -t -- ${shq(first)} >/dev/null 2>&1 || problem "the reload command's program "${shq(first)}" is not found on this host"\n`;
}

/**
 * The checks on a consumer's host. The drift check is embedded exactly as
 * built, in a subshell (its `exit`s end only the subshell): no script is
 * rewritten after values are quoted into it, since an indentation that
 * rewrote every newline also rewrote those inside a quoted config path.
 * Its `CHECK missing` message is its last output and names the path, which
 * may run over lines: all of it is kept.
 */
export function consumerPreflightScript(configPath: string, write: WriteSpec, reload: string): string {
    return `set -uo pipefail
f=${shq(configPath)}
problem() { printf 'PREFLIGHT %s\\n' "$*"; }
t=$f
if [ -L "$f" ]; then t=$(readlink -e -- "$f") || { problem "$f is a symbolic link to nothing"; exit 0; }; fi
if [ ! -e "$t" ]; then problem "no config file $f"; exit 0; fi
[ -f "$t" ] || { problem "$f is not a regular file"; exit 0; }
d=$(dirname -- "$t")
[ -w "$d" ] || problem "the directory $d is not writable: the new config could not replace $f"
${reloadProgramCheck(reload)}size=$(stat -c %s -- "$t")
need=$((2 * size + 65536))
avail=$(df --output=avail -B1 -- "$d" 2>/dev/null | tail -n 1 | tr -d ' ')
[ -n "$avail" ] && [ "$avail" -lt "$need" ] && problem "only $avail bytes free in $d; the new $f and its .bak need $need"
(
${driftCheckScript(configPath, write, freshNonce())}) | sed -n '/^CHECK missing /,$p' | sed '1s/^CHECK missing /PREFLIGHT /'
`;
}

/**
 * The problems in a pre-flight script's output. A problem runs to the next
 * `PREFLIGHT ` line, not to the end of its own: a config path may hold a
 * newline, and the problem that names the path must name all of it.
 */
export function problemsOf(stdout: string): string[] {
    const body = stdout.endsWith("\n") ? stdout.slice(0, -1) : stdout;
    return `\n${body}`.split("\nPREFLIGHT ").slice(1);
}

const PROBLEM = `set -uo pipefail\nproblem() { printf 'PREFLIGHT %s\\n' "$*"; }\n`;

/** A file store on the operator's machine: its directory writable, the current secret there. (A Vault store is asked by checkVaultStores.) */
export function storePreflightScript(config: RotationConfig): string | undefined {
    const st = config.store;
    if (st.kind !== "file") return undefined;
    const current = shq(`${st.dir}/${config.secret.name}`);
    return `${PROBLEM}dir=${shq(st.dir)}
[ -d "$dir" ] && [ -w "$dir" ] || problem "$dir is not a writable directory"
[ -f ${current} ] || problem "no current secret at "${current}
`;
}

/** The source's admin credential (or, for an SSH key, its authorized_keys file), checked where the source's scripts run. */
export function sourcePreflightScript(config: RotationConfig): string | undefined {
    const checks: string[] = [];
    const src = config.source;
    switch (src.kind) {
        case "redis-acl":
            checks.push(`out=$(printf 'PING\\n' | REDISCLI_AUTH="$(cat -- ${shq(src.adminPasswordFile)} 2>/dev/null)" timeout 10 redis-cli --no-auth-warning -h ${shq(src.host)} -p ${shq(src.port)} --user ${shq(src.adminUser)} 2>&1) || true
[ "$out" = PONG ] || problem "redis "${shq(`${src.host}:${src.port}`)}" does not accept the admin credential of "${shq(src.adminUser)}": $(printf '%s' "$out" | head -n 1)"`);
            break;
        case "postgres-role":
            checks.push(`out=$(PGPASSWORD="$(cat -- ${shq(src.adminPasswordFile)} 2>/dev/null)" PGCONNECT_TIMEOUT=10 psql -X -At -h ${shq(src.host)} -p ${shq(src.port)} -U ${shq(src.adminUser)} -d ${shq(src.database)} -c 'select 1' 2>&1) || true
[ "$out" = 1 ] || problem "postgres "${shq(`${src.host}:${src.port}`)}" does not accept the admin login "${shq(src.adminUser)}": $(printf '%s' "$out" | head -n 1)"`);
            break;
        case "http-token": {
            // The admin token is tried on a DELETE of a fingerprint no token has (sixteen zeros): an API that
            // knows the token answers 404 (or 2xx), one that refuses it 401/403, and nothing is changed.
            const probe = src.deleteUrl.split("%7Bfingerprint%7D").join("{fingerprint}").split("{fingerprint}").join("0000000000000000");
            checks.push(`${httpCall(src.caFile)}admin_file=${shq(src.adminTokenFile)}
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
fi`);
            break;
        }
        case "ssh-authorized-key":
            checks.push(`f=${shq(src.authorizedKeysFile)}
{ [ -f "$f" ] && [ -w "$f" ]; } || [ -w "$(dirname -- "$f")" ] || problem "$f cannot be written on this host"`);
            break;
        case "command":
            break;
    }
    return checks.length ? `${PROBLEM}${checks.join("\n")}\n` : undefined;
}
