/**
 * Verification 3, on a consumer's host: its log's size at the gate (the
 * anchor "since the revocation"), and later how many lines after that byte
 * match the consumer's auth-failure pattern. Counted, not only found: the
 * report and the audit line show each consumer's count, 0 included.
 *
 * Output, one marker line each: `LOGSIZE <bytes>`; `LOGCOUNT <count> <grep
 * exit status>` (0 or 1: counted; 2: the log could not be searched). A log
 * that does not exist has size 0 and count 0; one that shrank since the
 * anchor (rotated by logrotate) is counted from its start.
 */
import { shq } from "../quote";

/** The log's size in bytes now (0 when it does not exist yet). */
export function logSizeScript(path: string): string {
    return `f=${shq(path)}
printf 'LOGSIZE %s\\n' "$(stat -c %s -- "$f" 2>/dev/null || echo 0)"
`;
}

/** How many lines of the log after byte `from` match `pattern` (grep -E). */
export function logCountScript(logCheck: { path: string; pattern: string }, from: number): string {
    return `set -u
f=${shq(logCheck.path)}
from=${Number(from)}
n=0 rc=1
if [ -e "$f" ]; then
  [ "$(stat -c %s -- "$f")" -ge "$from" ] || from=0
  n=$(tail -c +$((from + 1)) -- "$f" | grep -cE -- ${shq(logCheck.pattern)}) && rc=0 || rc=$?
fi
printf 'LOGCOUNT %s %s\\n' "\${n:-0}" "$rc"
`;
}

/** A `LOGSIZE` answer's byte count; undefined when there is none. */
export function logSizeOf(stdout: string): number | undefined {
    const m = /^LOGSIZE (\d+)$/m.exec(stdout);
    return m ? Number(m[1]) : undefined;
}

/** A `LOGCOUNT` answer: the count, or undefined when grep could not search (or no answer came). */
export function logCountOf(stdout: string): { count?: number; grepStatus?: number } {
    const m = /^LOGCOUNT (\d+) (\d+)$/m.exec(stdout);
    if (!m) return {};
    const grepStatus = Number(m[2]);
    return grepStatus <= 1 ? { count: Number(m[1]), grepStatus } : { grepStatus };
}
