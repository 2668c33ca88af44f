/**
 * A consumer's `logCheck`: where its auth failures show, searched after its
 * reload (provider/rollout.ts) and counted after the revocation
 * (provider/authFailures.ts). Either a log file (`path`, the lines after the
 * byte noted before) or a systemd unit's journal (`unit`, the entries after
 * the journal cursor noted before: more exact than a time), with a `pattern`
 * (grep -E on the line or message), a `priority` (the unit's entries at that
 * level or more severe, as `journalctl -p`), or both.
 */
import { z } from "zod";
import { absPath, text, wholeNumber } from "./fields";

/** journalctl's priority names, most severe first (`-p err` is err and everything above it). */
export const PRIORITIES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"] as const;
export type Priority = (typeof PRIORITIES)[number];

/** A log file: the lines after the byte noted before, matching `pattern`. */
export interface FileLogCheck {
    path: string;
    /** An extended regular expression (grep -E) that marks an auth failure. */
    pattern: string;
    windowSeconds: number;
}

/** A systemd unit's journal: its entries after the cursor noted before, matching `pattern` and/or at `priority` or above. */
export interface JournalLogCheck {
    unit: string;
    pattern?: string;
    priority?: Priority;
    windowSeconds: number;
}

export type LogCheck = FileLogCheck | JournalLogCheck;

/** What is searched, without the window: the scripts' view of a log check. */
export type LogSource = Omit<FileLogCheck, "windowSeconds"> | Omit<JournalLogCheck, "windowSeconds">;

export const isJournal = <T extends LogSource>(c: T): c is Extract<T, { unit: string }> => "unit" in c;

/** "/var/log/app.log", or "the journal of unit app1 (priority err or above)": for messages. */
export function logWhere(c: LogSource): string {
    if (!isJournal(c)) return c.path;
    return `the journal of unit ${c.unit}${c.priority ? ` (priority ${c.priority} or above)` : ""}`;
}

/** What a match is called: an auth failure when a pattern says what one is, otherwise an error at the priority. */
export const matchNoun = (c: LogSource): string => (isJournal(c) && c.pattern === undefined ? "error(s)" : "auth failure(s)");

/** A systemd unit name as journalctl -u takes it ("app1" means app1.service); never an option. */
const unitName = z.string().regex(/^[A-Za-z0-9_.:@\\][A-Za-z0-9_.:@\\-]{0,249}$/, "must be a systemd unit name such as 'app1' or 'app1.service'");

/** The `logCheck` of a consumer entry: exactly one of path or unit, each with what it needs. */
export const logCheckSchema = z
    .strictObject({
        path: absPath.optional(),
        unit: unitName.optional(),
        pattern: text.optional(),
        priority: z.enum(PRIORITIES, { error: `must be one of ${PRIORITIES.join(", ")} (as journalctl -p)` }).optional(),
        windowSeconds: wholeNumber().min(1, "must be 1-60").max(60, "must be 1-60").default(3),
    })
    .superRefine((c, ctx) => {
        const at = (path: string[], message: string) => ctx.addIssue({ code: "custom", path, message });
        if ((c.path === undefined) === (c.unit === undefined)) {
            at([], "set exactly one of path (a log file on the host) or unit (a systemd unit whose journal is searched)");
        } else if (c.path !== undefined) {
            if (c.pattern === undefined) at(["pattern"], "is required with path: the extended regular expression (grep -E) of an auth failure");
            if (c.priority !== undefined) at(["priority"], "only with unit: a log file has no priorities");
        } else if (c.pattern === undefined && c.priority === undefined) {
            at([], "with unit, set pattern (grep -E on each message), priority (e.g. err), or both");
        }
    })
    .transform(
        (c): LogCheck =>
            c.path !== undefined
                ? { path: c.path, pattern: c.pattern!, windowSeconds: c.windowSeconds }
                : {
                      unit: c.unit!,
                      ...(c.pattern !== undefined ? { pattern: c.pattern } : {}),
                      ...(c.priority !== undefined ? { priority: c.priority } : {}),
                      windowSeconds: c.windowSeconds,
                  },
    );
