/**
 * What the console knows about one run of `bin/rotate` (start, resume,
 * rollback): which secrets, and for every step of their plans when it
 * started and ended and how, taken from the engine's events. The live
 * progress (cli/progress.ts) fills it in; the report (cli/report.ts) and
 * `--json` are written from it, and so is how each secret ended, in words.
 * Never holds a secret value: step errors are the step provider's redacted
 * messages.
 */
import { rotationPlan, type Mode, type PlanStep } from "../lib/plan";
import type { Delivery } from "../notify/deliver";
import type { BatchSetting, WaveEntry } from "../lib/waves";

/** One secret of the run as the plan sees it. */
export interface RunSecret {
    name: string;
    /** The generation this run moves to (rotate) or takes back (rollback). */
    generation: number;
    mode: Mode;
    consumers: string[];
    /** The kind of each consumer that is not a config file (consumers/), by name; absent when all are. */
    consumerKinds?: Record<string, string>;
    /** Secrets whose rotation must complete before this one starts (`after`). */
    after: string[];
    /** Canary waves (rollout.waves); absent: one wave. */
    waves?: WaveEntry[];
    /** Consumers per rollout resource (rollout.batch); absent: "auto". */
    batch?: BatchSetting;
    /** Why this generation (the runbook's reason), a note, and the ceremony's witnesses if it had one. */
    reason?: string;
    note?: string;
    /** The ceremony's request; who made and approved it when this run verified the signatures itself. */
    approval?: { request: string; requester?: string; approver?: string };
}

/** The plan (lib/plan.ts) of a run's secret: its consumers, waves and batches as the program builds them. */
export const planOfRun = (s: RunSecret): PlanStep[] =>
    rotationPlan({ mode: s.mode, consumers: s.consumers.map((name) => ({ name })), waves: s.waves, batch: s.batch });

/** A pre-flight's outcome, as start's --json, its report and `bin/rotate preflight --json` give it. */
export interface PreflightResult {
    ok: boolean;
    seconds: number;
    consumers: number;
    problems: { secret: string; at: string; problem: string }[];
}

export type StepOutcome = "pending" | "running" | "ok" | "unchanged" | "failed";

/** One engine step (one resource of type STEP_TYPE). */
export interface StepRecord {
    secret: string;
    /** The plan step's id (lib/plan.ts), e.g. "rollout/web-1"; "other" for steps outside the plan (a withdrawal of an older grant). */
    step: string;
    phase: PlanStep["phase"] | "other";
    consumer?: string;
    /** A rollout's canary wave (1-based), when there are several. */
    wave?: number;
    /** A rollout's batch (1-based), when its consumers share a resource (rollout.batch). */
    batch?: number;
    /** The Pulumi resource name, e.g. "app-redis-rollout-web-1". */
    resource: string;
    /** The engine's operation: create, update, same, delete, ... */
    op?: string;
    /** ms since the epoch, as the console saw the engine's events. */
    start?: number;
    end?: number;
    outcome: StepOutcome;
    /** The redacted error of a failed step. */
    error?: string;
}

export type RunOutcome = "succeeded" | "failed" | "rolled-back" | "refused" | "locked" | "awaiting-person";

export interface RunRecord {
    /** Unique per run, e.g. "dev-20261126T120000Z-start". */
    id: string;
    stack: string;
    command: "start" | "resume" | "rollback";
    started: number;
    ended: number;
    outcome: RunOutcome;
    exitCode: number;
    secrets: RunSecret[];
    steps: StepRecord[];
    /** The audit log's lines that this run appended (parsed JSON). */
    audit: Record<string, unknown>[];
    /** On failure: what to do next, one command or sentence per entry. */
    next: string[];
    /** Error lines of the run that no step claims (the engine's own). */
    errors: string[];
    /** The run's pre-flight steps that ran (cli/progress.ts preflight()): how many consumers, how long, every problem they named. */
    preflight?: PreflightResult;
    /** The stack's last `bin/rotate check` (cli/check.ts), if any: when, and who was not on the current secret. */
    lastCheck?: { time: string; ok: boolean; off: { secret: string; consumer: string; holds: string }[] };
    /** Verification 3: each logged consumer's auth failures after the revocation, from this run's `consumers-verified` audit lines. */
    authFailures?: AuthFailureRow[];
    /** rotation:notify: every delivery of the run's events, delivered or failed (never a URL or key). */
    notifications?: Delivery[];
}

/** One consumer's auth failures counted after the revocation (provider/authFailures.ts). */
export interface AuthFailureRow {
    secret: string;
    generation: number;
    consumer: string;
    /** Null: its log could not be searched. */
    count: number | null;
    /** Counted from the gate, just before the revocation; or from the check's own start (the gate ran in an earlier run). */
    since: "revocation" | "check";
    /** Counted in a unit's journal (from a cursor), not a log file (from a byte offset). */
    journal: boolean;
}

/**
 * The counts of the `consumers-verified` audit lines ("web-1=0 web-2=3",
 * "?" not searched); a later line of the same secret and generation (a
 * resume's) replaces an earlier one.
 */
export function authFailureRows(audit: Record<string, unknown>[]): AuthFailureRow[] {
    const latest = new Map<string, AuthFailureRow[]>();
    for (const l of audit) {
        if (l.phase !== "consumers-verified" || typeof l.authFailures !== "string") continue;
        const names = (field: unknown) =>
            new Set(
                String(field ?? "")
                    .split(" ")
                    .filter(Boolean),
            );
        const fromCheck = names(l.authFailuresFromCheck);
        const inJournal = names(l.authFailuresInJournal);
        const rows = l.authFailures
            .split(" ")
            .filter(Boolean)
            .map((pair): AuthFailureRow => {
                const at = pair.lastIndexOf("=");
                const consumer = pair.slice(0, at);
                const n = pair.slice(at + 1);
                return {
                    secret: String(l.secret),
                    generation: Number(l.generation),
                    consumer,
                    count: /^\d+$/.test(n) ? Number(n) : null,
                    since: fromCheck.has(consumer) ? "check" : "revocation",
                    journal: inJournal.has(consumer),
                };
            });
        latest.set(`${l.secret}\0${l.generation}`, rows);
    }
    return [...latest.values()].flat();
}

/** A secret as the run's lines name it: `app-redis 2 -> 3`, or `app-redis generation 3` taken back. */
export const secretLabel = (s: RunSecret) =>
    s.mode === "rollback" ? `${s.name} generation ${s.generation}` : `${s.name} ${s.generation - 1} -> ${s.generation}`;

export type SecretOutcome = "done" | "failed" | "not started" | "not finished";

/**
 * How each secret the run worked on ended: a step failed; every step done;
 * none started (it waits for a failed `after`); or some left. A secret the
 * run found finished (every step unchanged: a resume's others) is left out.
 */
export function secretOutcomes(record: Pick<RunRecord, "secrets" | "steps">): { secret: RunSecret; outcome: SecretOutcome }[] {
    return record.secrets.flatMap((secret) => {
        const steps = record.steps.filter((s) => s.secret === secret.name);
        if (steps.length && steps.every((s) => s.outcome === "unchanged")) return [];
        const outcome: SecretOutcome = steps.some((s) => s.outcome === "failed")
            ? "failed"
            : steps.every((s) => s.outcome === "ok" || s.outcome === "unchanged")
              ? "done"
              : steps.every((s) => s.outcome === "pending")
                ? "not started"
                : "not finished";
        return [{ secret, outcome }];
    });
}

/**
 * The closing line of a failed run over several secrets, from its steps:
 * which completed and which failed (`rotation of app-pg 0 -> 1: done;
 * app-redis 0 -> 1: FAILED after 12.3s`), not one FAILED for all. Undefined
 * when the run worked on one secret, or failed before any step did.
 */
export function failedRunLine(lead: string, record: Pick<RunRecord, "secrets" | "steps">, seconds: string): string | undefined {
    const outcomes = secretOutcomes(record);
    if (outcomes.length < 2 || !outcomes.some((o) => o.outcome === "failed")) return undefined;
    const words: Record<SecretOutcome, string> = {
        done: "done",
        failed: `FAILED after ${seconds}s`,
        "not started": "not started",
        "not finished": "not finished",
    };
    const groups = (Object.keys(words) as SecretOutcome[]).flatMap((k) => {
        const of = outcomes.filter((o) => o.outcome === k).map((o) => secretLabel(o.secret));
        return of.length ? [`${of.join(", ")}: ${words[k]}`] : [];
    });
    return `${lead}${groups.join("; ")}`;
}
