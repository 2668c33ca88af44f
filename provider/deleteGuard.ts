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
 */
import * as fs from "fs";
import type { AuditSpec } from "./types";

interface Line {
    stack?: string;
    secret?: string;
    generation?: number;
    phase?: string;
    outcome?: string;
}

/** What is taken back: a grant at the source, or a value (a staged copy, a generated secret). */
export type GuardKind = "grant" | "value";

/**
 * Whether the audit log shows it safe to take back generation `generation`
 * of `secret`: for a grant, a completed rotation past it or a completed
 * rollback of it; for a value, a completed rotation or rollback of it or later.
 */
export function takenBackAllowed(auditLog: string, stack: string, secret: string, generation: number, kind: GuardKind = "grant"): boolean {
    let text: string;
    try {
        text = fs.readFileSync(auditLog, "utf8");
    } catch {
        return false;
    }
    for (const raw of text.split("\n")) {
        if (!raw.includes(`"${secret}"`)) continue;
        let l: Line;
        try {
            l = JSON.parse(raw);
        } catch {
            continue;
        }
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

/** Why a delete is refused (the operator's next move included), or undefined when it may run. */
export function deleteRefusal(audit: AuditSpec, generation: number, title: string, urn: string, kind: GuardKind = "grant"): string | undefined {
    const { stack, secret } = audit.record as { stack: string; secret: string };
    if (takenBackAllowed(audit.path, stack, secret, generation, kind)) return undefined;
    const missing = kind === "grant"
        ? `no rotation of ${secret} past generation ${generation} and no rollback of it has completed`
        : `no rotation or rollback of ${secret} at generation ${generation} or later has completed`;
    return (
        `kept "${title}": generation ${generation} of ${secret} may still be in use, so it is not taken back: ` +
        `${missing} (audit log ${audit.path}). ` +
        `If a step of ${secret} failed in this run, fix it and resume; the next completed run takes it back. ` +
        `If ${secret} was removed from rotation:secrets, put it back, or stop managing it without withdrawing anything: bin/pulumi state delete '${urn}'`
    );
}
