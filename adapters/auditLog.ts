/**
 * The audit log read from disk: the one reader behind the gates, the delete
 * guard, the run report and the schedule (the lines are parsed by
 * lib/auditLine.ts; appending is lib/auditChain.ts's).
 */
import * as fs from "node:fs";
import { parseAuditLog, type AuditLine } from "../lib/auditLine";

export type { AuditLine };

/**
 * The lines of the audit log at `file` (see parseAuditLog: a torn last line
 * is skipped); none when no log exists yet. A log that exists but cannot be
 * read throws (the caller decides whether that refuses or counts as empty).
 */
export function readAuditLog(file: string, opts: { mentioning?: string } = {}): AuditLine[] {
    if (!fs.existsSync(file)) return [];
    return parseAuditLog(fs.readFileSync(file, "utf8"), opts.mentioning);
}
