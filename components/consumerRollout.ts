import type * as pulumi from "@pulumi/pulumi";
import type { ApiConsumerConfig, ConsumerConfig, HostConsumerConfig } from "../lib/configSchema";
import { isHostConsumer } from "../consumers";
import { stdinFields } from "../lib/quote";
import type { BatchEntry } from "../provider/types";
import type { HealthPolicy, Step } from "./exec/step";
import { consumerHosts, consumerTarget, phaseStep, type RotationContext } from "./context";

/** "app-redis → consumer web-1": how every message about this consumer starts. */
export const consumerLabel = (ctx: RotationContext, c: ConsumerConfig) => `${ctx.config.secret.name} → consumer ${c.name}`;

/** What the step provider needs to check one consumer's health (its host aside). */
export function healthPolicy(ctx: RotationContext, c: HostConsumerConfig): HealthPolicy {
    return {
        label: consumerLabel(ctx, c),
        health: c.health,
        retries: c.retries,
        retryDelaySeconds: c.retryDelaySeconds,
        timeoutSeconds: c.timeoutSeconds,
    };
}

/**
 * One consumer's rollout, one step: back up its config to `.bak` and write
 * the credential atomically (0600, owner kept), reload the service, check its
 * health with retries, then watch its log for auth failures since the reload
 * (provider/rollout.ts). It runs again when the generation or mode changes.
 * One resource per consumer keeps the engine's bookkeeping, which rewrites
 * the whole checkpoint per operation, small for large fleets. A consumer
 * behind an API (consumers/, e.g. gitea-actions) is one step too: its kind
 * gives the API the credential and waits for its confirmation
 * (provider/apiConsumer.ts).
 */
export function consumerRollout(
    name: string,
    ctx: RotationContext,
    c: ConsumerConfig,
    credential: { generation: number; value: pulumi.Output<string>; user?: string },
    opts: pulumi.CustomResourceOptions,
): Step {
    // What a rollout step is, whatever the consumer's kind: its title, the credential on stdin, its audit phase.
    const step = {
        title: `${consumerLabel(ctx, c)}: ${verb(ctx)} g${credential.generation}`,
        ...rolloutCommon(ctx, credential),
        timeoutSeconds: c.timeoutSeconds,
        consumer: c.name,
    };
    if (!isHostConsumer(c)) {
        // A consumer behind an API: its kind's methods run in the step provider (provider/apiConsumer.ts).
        return phaseStep(ctx, name, { ...step, op: "api-rollout", api: apiSpec(ctx, c, credential.generation) }, opts);
    }
    return phaseStep(ctx, name, { ...step, op: "rollout", rollout: { ...rolloutSpec(ctx, c, credential.generation), target: consumerTarget(ctx, c) } }, opts);
}

/**
 * A batch of consumers' rollouts, one step (lib/plan.ts, rollout.batch): each
 * consumer deployed as its own step would be, all at once, with an audit line
 * each (provider/batch.ts). The batch's budget is its slowest consumer's.
 */
export function rolloutBatch(
    name: string,
    ctx: RotationContext,
    consumers: ConsumerConfig[],
    batch: { k: number; of: number },
    credential: { generation: number; value: pulumi.Output<string>; user?: string },
    opts: pulumi.CustomResourceOptions,
): Step {
    const { hosts, hostOf } = consumerHosts(ctx);
    const used = new Set(consumers.filter(isHostConsumer).map(hostOf));
    const entries: BatchEntry[] = consumers.map((c) =>
        isHostConsumer(c)
            ? { consumer: c.name, rollout: { ...rolloutSpec(ctx, c, credential.generation), host: hostOf(c) } }
            : { consumer: c.name, api: apiSpec(ctx, c, credential.generation) },
    );
    const span = consumers.length > 1 ? `${consumers[0].name} .. ${consumers.at(-1)!.name}` : consumers[0].name;
    return phaseStep(
        ctx,
        name,
        {
            title: `${ctx.config.secret.name}: ${verb(ctx)} g${credential.generation}, batch ${batch.k} of ${batch.of} (${consumers.length} consumers: ${span})`,
            ...rolloutCommon(ctx, credential),
            timeoutSeconds: Math.max(...consumers.map((c) => c.timeoutSeconds)),
            op: "rollout-batch",
            hosts: Object.fromEntries(Object.entries(hosts).filter(([k]) => used.has(k))),
            batch: entries,
        },
        opts,
    );
}

const verb = (ctx: RotationContext) => (ctx.config.mode === "rollback" ? "restore" : "roll out");

/** What every rollout step has, one consumer's or a batch's: the credential on stdin, its audit phase, a run per mode. */
function rolloutCommon(ctx: RotationContext, credential: { value: pulumi.Output<string>; user?: string }) {
    return {
        stdin: credential.value.apply((v) => (credential.user === undefined ? stdinFields(v) : stdinFields(v, credential.user))),
        perMode: true,
        phase: ctx.config.mode === "rollback" ? "consumer-restored" : "consumer-verified",
    };
}

/** A host consumer's rollout, its host aside. */
function rolloutSpec(ctx: RotationContext, c: HostConsumerConfig, generation: number) {
    return {
        ...healthPolicy(ctx, c),
        generation,
        configPath: c.configPath,
        write: c.write,
        reload: c.reload,
        ...(c.logCheck ? { logCheck: c.logCheck } : {}),
    };
}

/** A consumer behind an API, as its kind's methods get it. */
const apiSpec = (ctx: RotationContext, c: ApiConsumerConfig, generation: number) => ({ label: consumerLabel(ctx, c), generation, consumer: c });
