/**
 * When the engine may take back a generation of a secret. Pulumi deletes
 * what a program no longer registers at the end of an update: an older
 * generation's grant (which withdraws it at the source), a staged copy, a
 * generated value. Without continue-on-error that happens only after a fully
 * successful update. With it (one stack rotates many secrets, and one
 * secret's failure must not stop the others), the engine deletes them even
 * after a step of that secret failed, for example a grant that never ran
 * while the previous generation is still everyone's secret. So a delete of
 * generation K of a secret runs only when the audit log shows that this
 * secret's rotation to a later generation, or the rollback of K itself,
 * completed; a staged copy or generated value of K once a rotation or a
 * rollback of K or later completed (its value is in the store then, or was
 * never promoted). Otherwise the resource stays in state, named in the
 * error, and the next completed run takes it back.
 *
 * Which audit log: the one the current program names (every step it registers
 * passes check() with its audit spec), never a path an earlier run recorded
 * in the deleted resource's state. A second checkout, or a changed
 * `rotation:auditLog`, writes its completions elsewhere, and the recorded
 * path would then refuse every delete for good (issue 23).
 */
import { readAuditLog } from "../adapters/auditLog";
import type { AuditLine } from "../lib/auditLine";
import type { AuditSpec } from "./types";

/** What is taken back: a grant at the source, or a value (a staged copy, a generated secret). */
export type GuardKind = "grant" | "value";

/**
 * Whether the audit log shows it safe to take back generation `generation`
 * of `secret`: for a grant, a completed rotation past it or a completed
 * rollback of it; for a value, a completed rotation or rollback of it or later.
 */
export function takenBackAllowed(auditLog: string, stack: string, secret: string, generation: number, kind: GuardKind = "grant"): boolean {
    let lines: AuditLine[];
    try {
        // Only lines naming the secret are parsed: the provider asks once per delete, and a log grows with every run.
        lines = readAuditLog(auditLog, { mentioning: `"${secret}"` });
    } catch {
        // A log that cannot be read shows nothing: the delete waits.
        return false;
    }
    return takenBackShown(lines, stack, secret, generation, kind);
}

/** takenBackAllowed on lines already read. */
function takenBackShown(lines: AuditLine[], stack: string, secret: string, generation: number, kind: GuardKind = "grant"): boolean {
    for (const l of lines) {
        if (l.stack !== stack || l.secret !== secret || l.outcome !== "ok" || typeof l.generation !== "number") continue;
        if (kind === "grant") {
            if (l.phase === "completed" && l.generation > generation) return true;
            if (l.phase === "rolled-back" && l.generation === generation) return true;
        } else if ((l.phase === "completed" || l.phase === "rolled-back") && l.generation >= generation) {
            return true;
        }
    }
    return false;
}

/** The audit log each stack's (and secret's) steps name in this run of the provider. */
const currentLogs = new Map<string, string>();
const logKey = (stack: unknown, secret?: unknown) => `${String(stack)}\0${secret === undefined ? "" : String(secret)}`;

/** Records the audit log a step of the current program names (called from check(), which sees every registered step). */
export function noteAuditLog(audit: AuditSpec | undefined): void {
    if (!audit?.path || audit.record?.stack === undefined) return;
    currentLogs.set(logKey(audit.record.stack, audit.record.secret), audit.path);
    currentLogs.set(logKey(audit.record.stack), audit.path);
}

/** The audit log the current program names for this secret (else for its stack), if any step of it was registered. */
export function currentAuditLog(stack: string, secret: string): string | undefined {
    return currentLogs.get(logKey(stack, secret)) ?? currentLogs.get(logKey(stack));
}

/** Why a delete is refused (the operator's next move included), or undefined when it may run. */
export function deleteRefusal(recorded: AuditSpec, generation: number, title: string, urn: string, kind: GuardKind = "grant"): string | undefined {
    const { stack, secret } = recorded.record as { stack: string; secret: string };
    const log = currentAuditLog(stack, secret);
    if (log && takenBackAllowed(log, stack, secret, generation, kind)) return undefined;
    const missing =
        kind === "grant"
            ? `no rotation of ${secret} past generation ${generation} and no rollback of it has completed`
            : `no rotation or rollback of ${secret} at generation ${generation} or later has completed`;
    const where = log ? `audit log ${log}` : `no step of stack ${stack} in this run names an audit log to ask`;
    return (
        `kept "${title}": generation ${generation} of ${secret} may still be in use, so it is not taken back: ` +
        `${missing} (${where}). ` +
        `If a step of ${secret} failed in this run, fix it and resume; the next completed run takes it back. ` +
        `If ${secret} was removed from rotation:secrets, put it back, or stop managing it without withdrawing anything: bin/pulumi state delete '${urn}'`
    );
}
