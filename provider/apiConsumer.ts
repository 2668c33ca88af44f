/**
 * The consumers behind an API (consumers/, reach "api"), as the step
 * provider runs them: the rollout (op "api-rollout"), the gate's question
 * (`apiDrift`) and the pre-flight. The kind's own methods do the work in
 * this process; here their errors become step errors with every secret of
 * the step redacted, and their answers the gate's verdicts.
 */
import { apiConsumerOf } from "../consumers";
import type { ConsumerHolding } from "../consumers";
import { StepError, redact, splitFields } from "./outcome";
import type { ApiConsumerSpec, ApiDriftCheck } from "./types";

/** The rollout (or, with the previous credential, the rollback) of one consumer behind an API. */
export async function apiRollout(spec: ApiConsumerSpec, stdin: string): Promise<void> {
    const secrets = splitFields(stdin);
    const [secret, user] = secrets;
    try {
        await apiConsumerOf(spec.consumer.kind).deliver(spec, { secret, ...(user !== undefined ? { user } : {}), generation: spec.generation });
    } catch (e) {
        const message = String((e as Error).message);
        throw new StepError(redact(message.startsWith(spec.label) ? message : `${spec.label}: ${message}`, secrets));
    }
}

/** What each consumer behind an API holds, as the gate asks (a write-only store passes: its rollout was confirmed). */
export async function apiHoldings(
    checks: ApiDriftCheck[],
    values: { current: string; previous?: string },
    users: { current?: string; previous?: string } = {},
): Promise<{ check: ApiDriftCheck; holds: ConsumerHolding; detail?: string }[]> {
    const asked = { ...values, currentUser: users.current, previousUser: users.previous };
    return Promise.all(checks.map(async (check) => ({ check, ...(await apiConsumerOf(check.api.kind).holds(check.api, asked)) })));
}

/** Every pre-flight problem of the consumers behind an API, by consumer name. */
export async function apiPreflight(apis: { name: string; consumer: ApiConsumerSpec["consumer"] }[]): Promise<{ name: string; problems: string[] }[]> {
    return Promise.all(apis.map(async (a) => ({ name: a.name, problems: await apiConsumerOf(a.consumer.kind).preflight(a.consumer) })));
}
