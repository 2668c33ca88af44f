/**
 * A consumer's log check in its unit's journal, on its host (lib/logCheck.ts):
 * the cursor noted before (the reload, the revocation) and the entries after
 * it counted, as the runbook's `journalctl -u {service} --since ...` and
 * `journalctl -p err` do, but from a cursor (more exact than a time) and
 * without their traps:
 *
 * - `-q` always: without it journalctl prints `-- No entries --` when nothing
 *   matched, and a count of lines (`| wc -l`) says 1.
 * - The cursor is taken with the same selection (unit, priority) as the
 *   search: `--after-cursor` skips the first entry it finds at the cursor's
 *   place, taking it for the cursor's own; when the cursor's entry is not in
 *   the selection (another unit's, a lower priority), the first entry that
 *   is gets skipped instead (systemd 252). No entry yet: an empty cursor,
 *   and everything of the selection counts.
 * - journalctl's own failure (no journal, no journalctl) is no "0"; nor is a
 *   user who may not read the system journal (not root, not in
 *   systemd-journal, adm or wheel): journalctl shows such a user only their
 *   own entries and, with -q, says nothing about it.
 *
 * A pattern is matched (grep -E) against each message's lines (`-o cat`), as
 * a file check's against its lines; without one, each entry counts once
 * (`-o export` with only its cursor field: one `__CURSOR=` line an entry).
 */
import type { JournalLogCheck } from "../logCheck";
import { shq } from "../quote";

/** A journal cursor as journalctl prints it (`s=...;i=...;b=...;m=...;t=...;x=...`); empty: no entry yet. */
export const CURSOR = /^[A-Za-z0-9=;]*$/;

/** `journal_reader`: whether this user reads the whole system journal, as journalctl lets it. */
const READER = `journal_reader() { [ "$(id -u)" -eq 0 ] || id -nG | tr ' ' '\\n' | grep -qxE 'systemd-journal|adm|wheel'; }
`;

/** journalctl over the unit's entries (at the priority or above). */
function select(c: Pick<JournalLogCheck, "unit" | "priority">): string {
    return `journalctl -q --no-pager -u ${shq(c.unit)}${c.priority ? ` -p ${shq(c.priority)}` : ""}`;
}

/** Sets `cursor` to the cursor of the selection's last entry, or empty when it has none (or the journal cannot be read: the search says so). */
export function journalCursorSnippet(c: Pick<JournalLogCheck, "unit" | "priority">): string {
    return `cursor=$(${select(c)} -n 1 -o export --output-fields=__CURSOR 2>/dev/null | sed -n 's/^__CURSOR=//p' | tail -n 1) || cursor=
`;
}

/**
 * With `cursor` set: counts the selection's matches after it into `n`, with
 * grep's exit status in `grc` (2: a bad pattern; empty: grep never ran) and
 * journalctl's in `jrc`. grep runs in this shell (lastpipe), so both
 * statuses are had without a temporary file.
 */
export function journalCountSnippet(c: Omit<JournalLogCheck, "windowSeconds">): string {
    const [mode, pattern] = c.pattern === undefined ? ["export --output-fields=__CURSOR", "^__CURSOR="] : ["cat", c.pattern];
    return `shopt -s lastpipe
n=0 grc= jrc=
${READER}if ! journal_reader; then
  echo "$(id -un) may not read the system journal (not root, not in systemd-journal, adm or wheel): journalctl would show only its own entries" >&2
  jrc=77 grc=1
else
  ${select(c)} \${cursor:+"--after-cursor=$cursor"} -o ${mode} | { n=$(grep -cE -- ${shq(pattern)}); grc=$?; }
  jrc=\${PIPESTATUS[0]}
fi
`;
}

/** Pre-flight (lib/scripts/preflight.ts, `problem` defined): journalctl is there, and this user reads the system journal. */
export function journalPreflightSnippet(c: Pick<JournalLogCheck, "unit">): string {
    const where = shq(`the journal of unit ${c.unit}`);
    return `${READER}if ! command -v journalctl >/dev/null 2>&1; then problem "journalctl is not found on this host: the log check reads "${where}
elif ! journal_reader; then problem "$(id -un) may not read the system journal (not root, not in systemd-journal, adm or wheel): the log check reads "${where}
fi
`;
}
