/**
 * A batch of consumers' rollouts as one step (op "rollout-batch",
 * components/consumerRollout.ts rolloutBatch): every consumer of the batch
 * deployed at once, each exactly as its own "rollout" or "api-rollout" step
 * would be (provider/rollout.ts, provider/apiConsumer.ts), with its own audit
 * line. The per-host job limit (provider/limits.ts) still bounds what runs
 * on a host at once.
 *
 * A batch where some consumers failed is recorded anyway, with the names of
 * those that succeeded (`done`), as a partially failed resource: the engine
 * keeps its state and stops the update, so nothing after the rollouts runs,
 * and the next `up` at the same generation runs only the consumers not done.
 */
import { apiRollout } from "./apiConsumer";
import { StepError, appendAudit, failureMessage, splitFields } from "./outcome";
import { rollout } from "./rollout";
import type { BatchEntry, RolloutBatchStep } from "./types";

export interface BatchOutcome {
    /** Consumers of the batch that hold the step's credential: done before, or done now. */
    done: string[];
    /** Each consumer that failed now, with its step error (redacted, it starts with the consumer's label). */
    failures: { consumer: string; message: string }[];
}

/** The consumers of the batch still to run, given those done at the same triggers. */
export function pendingOf(batch: BatchEntry[], done: readonly string[]): BatchEntry[] {
    const finished = new Set(done);
    return batch.filter((e) => !finished.has(e.consumer));
}

/** Runs every pending consumer of the batch at once; one audit line each, as its own step would append. */
export async function runBatch(step: RolloutBatchStep, doneBefore: readonly string[]): Promise<BatchOutcome> {
    const secrets = splitFields(step.stdin);
    const pending = pendingOf(step.batch, doneBefore);
    const stillThere = new Set(step.batch.map((e) => e.consumer));
    const done = doneBefore.filter((c) => stillThere.has(c));
    const failures: BatchOutcome["failures"] = [];
    await Promise.all(
        pending.map(async (e) => {
            const audit = step.audit && { ...step.audit, record: { ...step.audit.record, consumer: e.consumer } };
            try {
                if (e.rollout) await rollout({ ...e.rollout, target: step.hosts[e.rollout.host] }, step.stdin ?? "");
                else await apiRollout(e.api, step.stdin ?? "");
                appendAudit(audit, "ok");
                done.push(e.consumer);
            } catch (err) {
                const message = failureMessage(err, labelOf(e), secrets);
                appendAudit(audit, "failed", message.split("\n")[0]);
                failures.push({ consumer: e.consumer, message });
            }
        }),
    );
    // In the batch's order, whatever order they finished in.
    const order = new Map(step.batch.map((e, i) => [e.consumer, i]));
    const byOrder = (a: string, b: string) => order.get(a)! - order.get(b)!;
    failures.sort((a, b) => byOrder(a.consumer, b.consumer));
    return { done: done.sort(byOrder), failures };
}

const labelOf = (e: BatchEntry) => (e.rollout ? e.rollout.label : e.api.label);

/** The batch's error: how many failed, that the others are kept, then each failure on a line of its own. */
export function batchFailure(step: RolloutBatchStep, outcome: BatchOutcome): string {
    const { failures, done } = outcome;
    const kept = done.length ? `; the other ${done.length} hold it and are not deployed again on resume` : "";
    return `${step.title}: ${failures.length} of ${step.batch.length} consumers failed${kept}\n${failures.map((f) => f.message).join("\n")}`;
}

/**
 * The error that records a partially failed batch: the SDK's provider server
 * answers an error carrying `id` and `properties` as ErrorResourceInitFailed,
 * so the engine keeps the resource's state (its `done`) and still fails it.
 */
export class PartialBatchError extends StepError {
    readonly reasons: string[];

    constructor(
        message: string,
        readonly id: string,
        readonly properties: Record<string, unknown>,
    ) {
        super(message);
        this.reasons = [message];
    }
}
