/**
 * One consumer's rollout as one step: back up its config to `.bak` and write
 * the new secret atomically (0600, owner kept), reload the service, check its
 * health with retries, then make sure its log shows no auth failure since the
 * reload. Three sessions over the host's shared connection: read the config,
 * write + reload, search the log (plus one per health try for a command check).
 */
import { rewriteConfig } from "../lib/configFormats";
import { runAt, shellWord as q, where } from "./exec";
import { checkHealth } from "./health";
import { StepError, failure, redact, sleep, splitFields } from "./outcome";
import type { RolloutSpec } from "./types";

/** Writes stdin over `f` atomically, keeping the old file as `f.bak`; unchanged content is not rewritten. */
function writeScript(configPath: string): string {
    return `f=${q(configPath)}
d=$(dirname -- "$f")
tmp=$(mktemp "$d/.rotation-write.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
chmod 600 "$tmp"
chown --reference="$f" "$tmp" 2>/dev/null || true
if ! cmp -s "$tmp" "$f"; then
  cp -p -- "$f" "$f.bak.rotation-tmp"
  chmod 600 "$f.bak.rotation-tmp"
  mv -f -- "$f.bak.rotation-tmp" "$f.bak"
  mv -f -- "$tmp" "$f"
fi
rm -f -- "$tmp"
trap - EXIT
`;
}

/**
 * The write and the reload in one session. Our own output is two marker
 * lines on stdout; the reload's output goes to stderr, so it cannot forge them.
 * The log's size is noted before the reload: the log check counts from there.
 */
export function writeAndReloadScript(spec: RolloutSpec, write: boolean): string {
    const log = spec.logCheck ? q(spec.logCheck.path) : undefined;
    return `set -eu
${write ? writeScript(spec.configPath) : ""}printf 'LOGSIZE %s\\n' "${log ? `$(stat -c %s -- ${log} 2>/dev/null || echo 0)` : "0"}"
rc=0
( set +eu
${spec.reload}
) </dev/null >&2 || rc=$?
printf 'RELOAD %s\\n' "$rc"
`;
}

/** Fails when the log gained a line matching the pattern since `offset`; any grep error fails too. */
export function logCheckScript(logCheck: NonNullable<RolloutSpec["logCheck"]>, offset: number): string {
    const f = q(logCheck.path);
    return `set -u
[ -e ${f} ] || exit 0
from=${Number(offset)}
[ "$(stat -c %s -- ${f})" -ge "$from" ] || from=0
tail -c +$((from + 1)) -- ${f} | grep -Eq -- ${q(logCheck.pattern)}
rc=\${PIPESTATUS[1]}
case $rc in
  0) echo "log check: "${f}" shows auth failures after the reload" >&2; exit 1 ;;
  1) exit 0 ;;
  *) echo "log check: could not search "${f}" (grep exit $rc: is the pattern a valid extended regular expression?)" >&2; exit 3 ;;
esac
`;
}

export async function rollout(spec: RolloutSpec, stdin: string): Promise<void> {
    const secrets = splitFields(stdin);
    const [secret, user] = secrets;
    const at = where(spec.target);
    const writeTitle = `${spec.label}: write g${spec.generation} into ${spec.configPath} (backup in .bak)`;
    const opts = { where: at, timeoutSeconds: spec.timeoutSeconds, secrets };

    const read = await runAt(spec.target, `cat -- ${q(spec.configPath)}`, "", spec.timeoutSeconds);
    if (read.code !== 0 || read.timedOut) throw failure(`${writeTitle} (read ${spec.configPath})`, read, opts);
    let next: string;
    try {
        next = rewriteConfig(spec.write, read.stdout, secret, user);
    } catch (e) {
        throw new StepError(`${writeTitle}: cannot update ${spec.configPath}: ${redact(String((e as Error).message), secrets)}`);
    }

    const changed = next !== read.stdout;
    const wr = await runAt(spec.target, writeAndReloadScript(spec, changed), changed ? next : "", spec.timeoutSeconds);
    const reloadedAt = Date.now();
    const marker = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(wr.stdout)?.[1] ?? NaN);
    if (Number.isNaN(marker("RELOAD"))) throw failure(writeTitle, wr, opts);
    if (marker("RELOAD") !== 0) throw failure(`${spec.label}: reload`, { ...wr, code: marker("RELOAD") }, opts);

    await checkHealth(spec, `${spec.label}: health check`, secrets);

    if (spec.logCheck) {
        const wait = reloadedAt + spec.logCheck.windowSeconds * 1000 - Date.now();
        if (wait > 0) await sleep(wait / 1000);
        const title = `${spec.label}: no auth failures in ${spec.logCheck.path}`;
        const r = await runAt(spec.target, logCheckScript(spec.logCheck, marker("LOGSIZE") || 0), "", spec.timeoutSeconds);
        if (r.code !== 0 || r.timedOut) throw failure(title, r, opts);
    }
}
