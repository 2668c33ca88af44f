/**
 * Notifications in the console (notify/): the notifier of a stack, its
 * credentials read before anything changes; the events of a run taken from
 * its steps as they end (a consumer failed, the gate refused) and from its
 * verdict (failed after the revocation, completed); each delivery that
 * failed for good as a line of the audit log. A rotation never waits for a
 * delivery and never fails because of one.
 */
import { appendChained } from "../adapters/auditChain";
import type { AuditLine } from "../adapters/auditLog";
import type { EnvironmentConfig } from "../lib/config";
import { ConfigError } from "../lib/errors";
import { type EventInput, Notifier } from "../notify/deliver";
import { isUnreachable } from "../notify/event";
import { sinkOf } from "../notify";
import type { SinkCredentials } from "../notify/kind";
import { auditLines, auditLogOf } from "./common";
import type { RunTracker } from "./progress";
import { type RunRecord, type RunSecret, secretOutcomes } from "./runRecord";
import { PROJECT } from "./stack";

/** A run's notifier and what it needs to know of the stack's history. */
export interface RunNotify {
    notifier: Notifier;
    /** Whether an earlier run of this generation failed (so its incident is open: a completion resolves it). */
    escalated(secret: string, generation: number): boolean;
}

/** Each sink's URL and key, read from their files or variables; throws a ConfigError naming every problem. */
export function sinkCredentials(stack: string, env: EnvironmentConfig, from: NodeJS.ProcessEnv = process.env): Record<string, SinkCredentials> {
    const out: Record<string, SinkCredentials> = {};
    const problems: string[] = [];
    for (const [name, sink] of Object.entries(env.notify?.sinks ?? {})) {
        const r = sinkOf(sink.kind).credentials(sink as never, PROJECT, `rotation:notify.sinks.${name}`, from);
        problems.push(...r.problems);
        if (r.credentials) out[name] = r.credentials;
    }
    if (problems.length) throw new ConfigError(stack, problems);
    return out;
}

/**
 * The stack's notifier (none without rotation:notify). Its credentials are
 * read now, so a missing key file stops the command before anything changes.
 */
export function openNotifier(stack: string, env: EnvironmentConfig): RunNotify | undefined {
    if (!env.notify || !Object.keys(env.notify.sinks).length) return undefined;
    const credentials = sinkCredentials(stack, env);
    const log = auditLogOf(env);
    const notifier = new Notifier({
        stack,
        config: env.notify,
        credentials,
        secretRoutes: (s) => env.secrets[s]?.notify?.routes,
        onFailed: (d) =>
            appendChained(log, {
                time: new Date().toISOString(),
                stack,
                ...(d.secret ? { secret: d.secret, generation: d.generation } : {}),
                phase: "notification-failed",
                outcome: "failed",
                sink: d.sink,
                sinkKind: d.kind,
                event: d.event,
                action: d.action,
                delivery: d.id,
                attempts: d.attempts,
                detail: d.error ?? "failed",
            }),
    });
    let lines: AuditLine[] | undefined;
    return {
        notifier,
        escalated: (secret, generation) => {
            lines ??= auditLines(env);
            return lines.some((l) => l.stack === stack && l.secret === secret && l.generation === generation && l.phase === "run-failed");
        },
    };
}

/** The secret's part of an event. */
const of = (s: RunSecret | undefined) => (s ? { secret: s.name, generation: s.generation, mode: s.mode } : {});

/**
 * Watches a run's steps: the first that starts announces the run; a
 * consumer's rollout or the gate that fails is an escalation at once (the
 * pager need not wait for the run to end). Returns the secrets escalated.
 */
export function watchRun(n: RunNotify, tracker: RunTracker, stack: string, command: string): Set<string> {
    const escalated = new Set<string>();
    let started = false;
    tracker.onChange((r, change) => {
        if (change === "started" && !started) {
            started = true;
            n.notifier.emit({
                event: "run-started",
                stack,
                command,
                secrets: tracker.secrets.map((s) => ({ name: s.name, generation: s.generation, mode: s.mode })),
            });
        }
        if (change !== "ended" || r.outcome !== "failed") return;
        const secret = tracker.secrets.find((s) => s.name === r.secret);
        const next = [`bin/rotate resume --stack ${stack} --yes`];
        if (r.phase === "rollout" && r.consumer) {
            escalated.add(r.secret);
            n.notifier.emit({
                event: "consumer-failed",
                stack,
                command,
                ...of(secret),
                consumer: r.consumer,
                unreachable: isUnreachable(r.error ?? ""),
                ...(r.error ? { error: r.error } : {}),
                next,
            });
        } else if (r.phase === "gate") {
            escalated.add(r.secret);
            n.notifier.emit({ event: "gate-refused", stack, command, ...of(secret), ...(r.error ? { error: r.error } : {}), next });
        }
    });
    return escalated;
}

/**
 * The run's verdict, per secret: completed (with its consumers), failed
 * after its revocation started (critical), or failed otherwise (unless a
 * consumer or the gate was escalated already).
 */
export function announceVerdict(
    n: RunNotify,
    record: Pick<RunRecord, "secrets" | "steps" | "stack" | "command" | "next">,
    afterRevocation: string[],
    escalated: Set<string>,
): void {
    for (const { secret, outcome } of secretOutcomes(record)) {
        const base = { stack: record.stack, command: record.command, ...of(secret) };
        const next = record.next.filter((x) => x.startsWith(`${secret.name}:`)).map((x) => x.slice(secret.name.length + 1).trim());
        const error = record.steps.find((s) => s.secret === secret.name && s.outcome === "failed")?.error;
        let e: EventInput | undefined;
        if (outcome === "done") e = { ...base, event: "completed", consumers: secret.consumers.length, escalated: n.escalated(secret.name, secret.generation) };
        else if (outcome === "failed" && afterRevocation.includes(secret.name))
            e = { ...base, event: "failed-after-revocation", ...(error ? { error } : {}), next };
        else if (outcome === "failed" && !escalated.has(secret.name)) e = { ...base, event: "run-failed", ...(error ? { error } : {}), next };
        if (e) n.notifier.emit(e);
    }
}
