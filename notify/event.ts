/**
 * What bin/rotate tells people, and when (docs/operating.md, "Notifications"):
 * one event per moment the runbook cares about. The three escalations are the
 * runbook's ESCALATE IFs (a consumer unreachable or failing during the
 * dual-active window, the gate finding a consumer not on the new secret, a
 * failure after the revocation started). An event carries names, counts,
 * generations and the step provider's redacted errors, never a secret value.
 * Pure: no I/O.
 */

/** Every event, in the order a rotation meets them. */
export const EVENTS = [
    "run-started",
    "consumer-failed",
    "gate-refused",
    "failed-after-revocation",
    "run-failed",
    "awaiting-approval",
    "completed",
    "notification-failed",
] as const;
export type EventName = (typeof EVENTS)[number];

/** The events that page someone: the runbook's ESCALATE IFs. */
export const ESCALATIONS: readonly EventName[] = ["consumer-failed", "gate-refused", "failed-after-revocation"];

export type Severity = "info" | "warning" | "error" | "critical";

/** One event as the sinks receive it (before each kind shapes its payload). */
export interface NotifyEvent {
    /** Unique per event; a sink's deliveries of it carry their own ids. */
    id: string;
    event: EventName;
    /** ISO time it happened. */
    time: string;
    stack: string;
    severity: Severity;
    /** One line for people, naming the stack, secret, generation and consumer. */
    summary: string;
    secret?: string;
    generation?: number;
    mode?: "rotate" | "rollback";
    /** consumer-failed: the consumer, and whether it could not be reached at all. */
    consumer?: string;
    unreachable?: boolean;
    /** completed: how many consumers hold the new secret. */
    consumers?: number;
    /** completed: an escalation of this generation was raised before (a pager resolves it). */
    escalated?: boolean;
    /** The step provider's redacted error. */
    error?: string;
    /** The command that ran (start, resume, rollback). */
    command?: string;
    /** run-started: the secrets of the run. */
    secrets?: { name: string; generation: number; mode: string }[];
    /** awaiting-approval: the ceremony's recorded request. */
    request?: { id: string; expiresAt: string };
    /** notification-failed: which delivery failed for good. */
    failed?: { sink: string; event: EventName; attempts: number; error: string };
    /** What to do next, one command or sentence each. */
    next?: string[];
    /** The machine that ran it (bin/rotate's host name). */
    source: string;
}

/** The dedup key of one rotation's incident: per stack, secret and generation (PagerDuty's dedup_key). */
export const dedupKey = (stack: string, secret: string, generation: number) => `secret-rotation/${stack}/${secret}/g${generation}`;

/** What failed on a consumer: a step error that says the host could not be reached is "unreachable". */
export function isUnreachable(error: string): boolean {
    return /exited with code 255|connection to the host ended|connection (refused|closed|timed out|reset)|no route to host|could not resolve|cannot run the checks on|unreachable/i.test(
        error,
    );
}

const gen = (e: { secret?: string; generation?: number }) => (e.secret ? `${e.secret}${e.generation !== undefined ? ` g${e.generation}` : ""}` : "");

/** The one-line summary of an event (what a chat message, a pager incident and a webhook say first). */
export function summaryOf(e: Omit<NotifyEvent, "summary" | "id" | "time" | "source" | "severity">): string {
    const at = `stack ${e.stack}`;
    switch (e.event) {
        case "run-started":
            return `${at}: ${e.command ?? "rotation"} started: ${(e.secrets ?? []).map((s) => `${s.name} g${s.generation}${s.mode === "rollback" ? " (rollback)" : ""}`).join(", ")}`;
        case "consumer-failed":
            return `ESCALATE: ${at}: ${gen(e)}: consumer ${e.consumer} ${e.unreachable ? "is unreachable" : "failed"} during the dual-active window; nothing is revoked, the old secret still works`;
        case "gate-refused":
            return `ESCALATE: ${at}: ${gen(e)}: the gate refused the revocation: a consumer is not on the new secret`;
        case "failed-after-revocation":
            return `CRITICAL: ${at}: ${gen(e)}: failed after the revocation started; roll forward (resume), rollback is refused`;
        case "run-failed":
            return `${at}: ${gen(e)}: the rotation failed before any revocation; the old secret still works`;
        case "awaiting-approval":
            return `${at}: ${gen(e)}: awaiting a second person's approval (request ${e.request?.id})`;
        case "completed":
            return e.mode === "rollback"
                ? `${at}: ${gen(e)} rolled back: ${e.consumers} consumer(s) hold the old secret again`
                : `${at}: ${gen(e)} rotated: ${e.consumers} consumer(s) on the new secret, the old one revoked`;
        case "notification-failed":
            return `${at}: notifying ${e.failed?.sink} of ${e.failed?.event} failed after ${e.failed?.attempts} attempt(s): ${e.failed?.error}`;
    }
}

/** How grave an event is (PagerDuty's severity; chat messages lead with it). */
export function severityOf(e: Pick<NotifyEvent, "event">): Severity {
    switch (e.event) {
        case "failed-after-revocation":
            return "critical";
        case "consumer-failed":
        case "gate-refused":
            return "error";
        case "run-failed":
        case "notification-failed":
        case "awaiting-approval":
            return "warning";
        default:
            return "info";
    }
}
