/**
 * One line of the audit log as the steps (provider/outcome.ts) and bin/rotate
 * (cli/run.ts) append it: a JSON object, hash-chained by lib/auditChain.ts.
 * The fields its readers decide on are named; the others (reason, detail,
 * consumers, authFailures, ...) ride along. A line is only checked to be a
 * JSON object: a field holds what its writer put there, so a reader that
 * must not be fooled by a hand-edited line checks the type it relies on.
 */
export interface AuditLine {
    time?: string;
    stack?: string;
    secret?: string;
    generation?: number;
    /** "rotate" or "rollback". */
    mode?: string;
    phase?: string;
    /** "ok" or "failed". */
    outcome?: string;
    consumer?: string;
    [field: string]: unknown;
}

/**
 * The lines of an audit log's text, in order. A line that is not a JSON
 * object is skipped: the last one may be torn (its writer killed mid-append,
 * or still appending), and every reader decides on the lines it can read.
 * With `mentioning`, only lines whose text contains it are parsed (a cheap
 * pre-filter for a long log).
 */
export function parseAuditLog(text: string, mentioning?: string): AuditLine[] {
    const out: AuditLine[] = [];
    for (const raw of text.split("\n")) {
        if (!raw || (mentioning !== undefined && !raw.includes(mentioning))) continue;
        let line: unknown;
        try {
            line = JSON.parse(raw);
        } catch {
            continue;
        }
        if (typeof line === "object" && line !== null && !Array.isArray(line)) out.push(line as AuditLine);
    }
    return out;
}
