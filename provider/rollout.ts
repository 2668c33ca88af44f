/**
 * One consumer's rollout as one step: back up its config to `.bak` and write
 * the new secret atomically (0600, owner kept), reload the service, check its
 * health with retries, then make sure its log shows no auth failure since the
 * reload. Remote jobs (provider/agent.ts): read the config; then write,
 * reload, a health command with its retries and the log check in one job. A
 * health URL is fetched from the operator's machine between the write job
 * and a separate log-check job.
 */
import { isJournal, logWhere, matchNoun, type LogCheck } from "../lib/logCheck";
import { shq as q } from "../lib/quote";
import { journalCountSnippet, journalCursorSnippet } from "../lib/scripts/journal";
import { logAnchorOf, type LogAnchor } from "../lib/scripts/logCount";
import { rewriteConfig } from "../writers";
import { runAt, where, type RunResult } from "./exec";
import { checkHealth } from "./health";
import { StepError, failure, redact, sleep, splitFields } from "./outcome";
import type { RolloutSpec } from "./types";

/**
 * Writes stdin over `f` atomically, keeping the old file as `f.bak`;
 * unchanged content is not rewritten. A symbolic link (configs often point
 * into a release directory) is written through: the link stays, the file it
 * points to is replaced (owner kept, mode 0600) and its `.bak` is beside it.
 * A write that fails (a full disk) leaves `f` and `f.bak` as they were and
 * neither temporary file, not even a partial copy of the old config. The
 * temporary file is made 0600 by mktemp under umask 077, before the secret is
 * in it; the directory is cut from the path in the shell, not by dirname.
 */
function writeScript(configPath: string): string {
    return `f=${q(configPath)}
if [ -L "$f" ]; then f=$(readlink -e -- "$f") || { echo "rotation: "${q(configPath)}" is a symbolic link to nothing" >&2; exit 1; }; fi
case $f in */*) d=\${f%/*}; d=\${d:-/} ;; *) d=. ;; esac
umask 077
tmp=$(mktemp "$d/.rotation-write.XXXXXX")
trap 'rm -f -- "$tmp" "$f.bak.rotation-tmp"' EXIT
cat > "$tmp"
chown --reference="$f" "$tmp" 2>/dev/null || true
if ! cmp -s "$tmp" "$f"; then
  cp -p -- "$f" "$f.bak.rotation-tmp"
  chmod 600 "$f.bak.rotation-tmp"
  mv -f -- "$f.bak.rotation-tmp" "$f.bak"
  mv -f -- "$tmp" "$f"
else
  rm -f -- "$tmp"
fi
trap - EXIT
`;
}

/**
 * The health command with its retries, on the host. Prints `HEALTH ok`, or
 * the last try's output (to stderr) and `HEALTH fail <tries> <exit code>`.
 */
function healthLoop(spec: RolloutSpec, command: string): string {
    return `attempt=0
while :; do
  attempt=$((attempt + 1))
  hrc=0
  hout=$(timeout -k 2 ${q(spec.timeoutSeconds)} bash -c ${q(command)} </dev/null 2>&1) || hrc=$?
  [ "$hrc" -eq 0 ] && break
  [ "$attempt" -ge ${q(spec.retries + 1)} ] && break
  sleep ${q(spec.retryDelaySeconds)}
done
if [ "$hrc" -ne 0 ]; then printf '%s\\n' "$hout" | tail -n 5 >&2; printf 'HEALTH fail %s %s\\n' "$attempt" "$hrc"; exit 0; fi
printf 'HEALTH ok\\n'
`;
}

/**
 * Searches the log from its anchor (set before: `$from` for a file, `$cursor`
 * for a unit's journal, lib/scripts/journal.ts) for the pattern; prints
 * `LOGCHECK <status>`: 0 found, 1 nothing, 2 grep could not search (a bad
 * pattern), 3 the journal could not be read.
 */
function logSearch(logCheck: LogCheck): string {
    if (isJournal(logCheck)) {
        const where = q(logWhere(logCheck));
        return `${journalCountSnippet(logCheck)}if [ -z "$grc" ]; then lrc=3
elif [ "$grc" -gt 1 ]; then lrc=$grc
elif [ "$jrc" -ne 0 ]; then lrc=3
elif [ "$n" -gt 0 ]; then lrc=0
else lrc=1
fi
case $lrc in
  0) echo "log check: "${where}" shows $n ${matchNoun(logCheck)} after the reload" >&2 ;;
  1) ;;
  3) echo "log check: could not read "${where}" (journalctl exit $jrc)" >&2 ;;
  *) echo "log check: could not search "${where}" (grep exit $lrc: is the pattern a valid extended regular expression?)" >&2 ;;
esac
printf 'LOGCHECK %s\\n' "$lrc"
`;
    }
    const f = q(logCheck.path);
    return `lrc=1
if [ -e ${f} ]; then
  [ "$(stat -c %s -- ${f})" -ge "$from" ] || from=0
  tail -c +$((from + 1)) -- ${f} | grep -Eq -- ${q(logCheck.pattern)}
  lrc=\${PIPESTATUS[1]}
fi
case $lrc in
  0) echo "log check: "${f}" shows auth failures after the reload" >&2 ;;
  1) ;;
  *) echo "log check: could not search "${f}" (grep exit $lrc: is the pattern a valid extended regular expression?)" >&2 ;;
esac
printf 'LOGCHECK %s\\n' "$lrc"
`;
}

/** Notes the log's anchor before the reload: `LOGSIZE` (and `$logsize`) for a file, `LOGCURSOR` (and `$cursor`) for a journal. */
function logAnchor(logCheck: LogCheck | undefined): string {
    if (logCheck && isJournal(logCheck)) return `${journalCursorSnippet(logCheck)}printf 'LOGCURSOR %s\\n' "$cursor"\n`;
    return `logsize=${logCheck ? `$(stat -c %s -- ${q(logCheck.path)} 2>/dev/null || echo 0)` : "0"}
printf 'LOGSIZE %s\\n' "$logsize"
`;
}

/**
 * The write and the reload in one job, and for a health command also the
 * health check and the log check. Our own output is marker lines on stdout
 * (LOGSIZE or LOGCURSOR, RELOAD, HEALTH, LOGCHECK); the reload's and the
 * health command's output go to stderr, so they cannot forge them. The log's
 * size (a journal's cursor) is noted before the reload: the log check counts
 * from there, and waits until the window after the reload has passed.
 */
export function writeAndReloadScript(spec: RolloutSpec, write: boolean): string {
    const onHost = "command" in spec.health;
    const checks = !onHost
        ? ""
        : `set +e
${healthLoop(spec, (spec.health as { command: string }).command)}${
    spec.logCheck
        ? `left=$(( reloaded + ${Number(spec.logCheck.windowSeconds)} * 1000000 - \${EPOCHREALTIME/./} ))
[ "$left" -gt 0 ] && printf -v nap '%d.%06d' $((left / 1000000)) $((left % 1000000)) && sleep "$nap"
${isJournal(spec.logCheck) ? "" : "from=$logsize\n"}${logSearch(spec.logCheck)}`
        : ""
}`;
    return `set -eu
${write ? writeScript(spec.configPath) : ""}${logAnchor(spec.logCheck)}rc=0
( set +eu
${spec.reload}
) </dev/null >&2 || rc=$?
reloaded=\${EPOCHREALTIME/./}
printf 'RELOAD %s\\n' "$rc"
[ "$rc" -eq 0 ] || exit 0
${checks}`;
}

/** How long the write job may take: the write and reload, every health try, the log window. */
export function writeJobBudget(spec: RolloutSpec): number {
    if (!("command" in spec.health)) return spec.timeoutSeconds;
    const health = (spec.retries + 1) * (spec.timeoutSeconds + 2 + spec.retryDelaySeconds);
    return spec.timeoutSeconds + health + (spec.logCheck?.windowSeconds ?? 0) + 5;
}

/** The log check on its own (after a health URL): the search from the anchor (a byte offset, a journal cursor), its verdict in `LOGCHECK`. */
export function logCheckScript(logCheck: LogCheck, anchor: LogAnchor): string {
    const from = isJournal(logCheck) ? `cursor=${q(String(anchor))}` : `from=${Number(anchor)}`;
    return `set -u\n${from}\n${logSearch(logCheck)}`;
}

/** The log check's verdict from a job's `LOGCHECK` marker: grep found a match (1), could not search (3), or no marker. */
function logCheckFailed(r: RunResult): RunResult | undefined {
    const lrc = /^LOGCHECK (.*)$/m.exec(r.stdout)?.[1];
    if (lrc === "1") return undefined;
    return { ...r, code: lrc === undefined ? r.code : lrc === "0" ? 1 : 3 };
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
    // Its own kind: it lasts the consumer's reload and health check, which a quick read must not wait on.
    const wr = await runAt(spec.target, writeAndReloadScript(spec, changed), changed ? next : "", writeJobBudget(spec), "reload");
    const reloadedAt = Date.now();
    const marker = (name: string) => new RegExp(`^${name} (.*)$`, "m").exec(wr.stdout)?.[1];
    if (marker("RELOAD") === undefined) throw failure(writeTitle, wr, opts);
    if (marker("RELOAD") !== "0") throw failure(`${spec.label}: reload`, { ...wr, code: Number(marker("RELOAD")) }, opts);
    const logTitle = spec.logCheck ? `${spec.label}: no ${matchNoun(spec.logCheck).replace("(s)", "s")} in ${logWhere(spec.logCheck)}` : "";

    if ("command" in spec.health) {
        // Health and log check ran in the same job, on the host.
        const health = marker("HEALTH");
        if (health === undefined) throw failure(`${spec.label}: health check`, wr, opts);
        const [verdict, tries, code] = health.split(" ");
        if (verdict !== "ok")
            throw failure(`${spec.label}: health check`, { ...wr, code: Number(code), timedOut: code === "124" }, { ...opts, attempts: Number(tries) });
        const failed = spec.logCheck && logCheckFailed(wr);
        if (failed) throw failure(logTitle, failed, opts);
        return;
    }

    await checkHealth(spec, `${spec.label}: health check`, secrets);

    if (spec.logCheck) {
        const wait = reloadedAt + spec.logCheck.windowSeconds * 1000 - Date.now();
        if (wait > 0) await sleep(wait / 1000);
        const r = await runAt(
            spec.target,
            logCheckScript(spec.logCheck, logAnchorOf(wr.stdout) ?? (isJournal(spec.logCheck) ? "" : 0)),
            "",
            spec.timeoutSeconds,
        );
        const failed = r.code !== 0 || r.timedOut ? r : logCheckFailed(r);
        if (failed) throw failure(logTitle, failed, opts);
    }
}
