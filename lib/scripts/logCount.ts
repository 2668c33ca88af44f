/**
 * Verification 3, on a consumer's host: its log's anchor at the gate ("since
 * the revocation"), and later how many lines after it match the consumer's
 * auth-failure pattern. Counted, not only found: the report and the audit
 * line show each consumer's count, 0 included.
 *
 * A log file's anchor is its size (`LOGSIZE <bytes>`); a unit journal's is
 * the cursor of its last entry (`LOGCURSOR <cursor>`, lib/scripts/journal.ts).
 * The count: `LOGCOUNT <count> <grep exit status> [<journalctl exit status>]`
 * (grep 0 or 1 and journalctl 0: counted; grep 2: the pattern is no extended
 * regular expression; otherwise journalctl non-zero: the journal could not be
 * read). A
 * log file that does not exist has size 0 and count 0; one that shrank since
 * the anchor (rotated by logrotate) is counted from its start.
 */
import { isJournal, type JournalLogCheck, type LogSource } from "../logCheck";
import { shq } from "../quote";
import { CURSOR, journalCountSnippet, journalCursorSnippet } from "./journal";

/** Where the count starts: a log file's size in bytes, or a journal cursor ("": from the unit's first entry). */
export type LogAnchor = number | string;

/** What an anchor is taken of: a log file, or a unit's journal (at a priority). */
export type AnchorSource = { path: string } | Pick<JournalLogCheck, "unit" | "priority">;

/** The log's anchor now: its size (0 when it does not exist yet), or the cursor of the unit's last entry (of the priority). */
export function logAnchorScript(c: AnchorSource): string {
    if ("unit" in c) return `${journalCursorSnippet(c)}printf 'LOGCURSOR %s\\n' "$cursor"\n`;
    return `f=${shq(c.path)}
printf 'LOGSIZE %s\\n' "$(stat -c %s -- "$f" 2>/dev/null || echo 0)"
`;
}

/** How many lines of the log after the anchor match the pattern (grep -E); for a journal without one, how many entries. */
export function logCountScript(c: LogSource, from: LogAnchor): string {
    if (isJournal(c))
        return `set -u
cursor=${shq(String(from))}
${journalCountSnippet(c)}printf 'LOGCOUNT %s %s %s\\n' "\${n:-0}" "\${grc:-9}" "$jrc"
`;
    return `set -u
f=${shq(c.path)}
from=${Number(from)}
n=0 rc=1
if [ -e "$f" ]; then
  [ "$(stat -c %s -- "$f")" -ge "$from" ] || from=0
  n=$(tail -c +$((from + 1)) -- "$f" | grep -cE -- ${shq(c.pattern)}) && rc=0 || rc=$?
fi
printf 'LOGCOUNT %s %s\\n' "\${n:-0}" "$rc"
`;
}

/**
 * logCountScript for many consumers of one host in one shell: each count
 * after a `<boundary> <i>` line. A log file's size is asked once however
 * many consumers log to it, and no consumer costs a job of its own: at a
 * thousand consumers that was seconds of the verification.
 */
export function logCountBatchScript(items: { source: LogSource; from: LogAnchor }[], boundary: string): string {
    if (!/^[A-Za-z0-9-]+$/.test(boundary)) throw new Error("logCountBatchScript: the boundary must be letters, digits and dashes");
    const each = items.map(
        ({ source, from }, i) =>
            `printf '%s ${i}\\n' "$boundary"
${
    isJournal(source)
        ? `(
${logCountScript(source, from)})`
        : `count_file ${shq(source.path)} ${Number(from)} ${shq(source.pattern)}`
}`,
    );
    return `set -u
boundary=${boundary}
declare -A sizes=()
count_file() {
  local f=$1 from=$2 n=0 rc=1
  if [ -e "$f" ]; then
    [ -n "\${sizes[$f]+x}" ] || sizes[$f]=$(stat -c %s -- "$f")
    [ "\${sizes[$f]}" -ge "$from" ] || from=0
    n=$(tail -c +$((from + 1)) -- "$f" | grep -cE -- "$3") && rc=0 || rc=$?
  fi
  printf 'LOGCOUNT %s %s\\n' "\${n:-0}" "$rc"
}
${each.join("\n")}
`;
}

/** A `LOGSIZE` or `LOGCURSOR` answer's anchor; undefined when there is none. */
export function logAnchorOf(stdout: string): LogAnchor | undefined {
    const size = /^LOGSIZE (\d+)$/m.exec(stdout);
    if (size) return Number(size[1]);
    const cursor = /^LOGCURSOR (.*)$/m.exec(stdout);
    return cursor && CURSOR.test(cursor[1]) ? cursor[1] : undefined;
}

/** A `LOGCOUNT` answer: the count, or why there is none (grep's status 2 and up, journalctl's non-zero; neither: no answer came). */
export function logCountOf(stdout: string): { count?: number; grepStatus?: number; journalStatus?: number } {
    const m = /^LOGCOUNT (\d+) (\d+)(?: (\d+))?$/m.exec(stdout);
    if (!m) return {};
    const grepStatus = Number(m[2]);
    const journalStatus = m[3] === undefined ? undefined : Number(m[3]);
    // grep's error first: a grep that stopped early (a bad pattern) leaves journalctl writing into a closed pipe.
    if (grepStatus > 1) return { grepStatus };
    return journalStatus ? { grepStatus, journalStatus } : { count: Number(m[1]), grepStatus };
}
