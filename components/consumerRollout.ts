import type * as pulumi from "@pulumi/pulumi";
import type { ConsumerConfig, HostConsumerConfig } from "../lib/config";
import { isHostConsumer } from "../consumers";
import { stdinFields } from "../lib/quote";
import type { HealthPolicy, Step } from "./exec/step";
import { consumerTarget, phaseStep, type RotationContext } from "./context";

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
    const restoring = ctx.config.mode === "rollback";
    // What a rollout step is, whatever the consumer's kind: its title, the credential on stdin, its audit phase.
    const step = {
        title: `${consumerLabel(ctx, c)}: ${restoring ? "restore" : "roll out"} g${credential.generation}`,
        stdin: credential.value.apply((v) => (credential.user === undefined ? stdinFields(v) : stdinFields(v, credential.user))),
        perMode: true,
        timeoutSeconds: c.timeoutSeconds,
        phase: restoring ? "consumer-restored" : "consumer-verified",
        consumer: c.name,
    };
    if (!isHostConsumer(c)) {
        // A consumer behind an API: its kind's methods run in the step provider (provider/apiConsumer.ts).
        return phaseStep(
            ctx,
            name,
            { ...step, op: "api-rollout", api: { label: consumerLabel(ctx, c), generation: credential.generation, consumer: c } },
            opts,
        );
    }
    return phaseStep(
        ctx,
        name,
        {
            ...step,
            op: "rollout",
            rollout: {
                ...healthPolicy(ctx, c),
                target: consumerTarget(ctx, c),
                generation: credential.generation,
                configPath: c.configPath,
                write: c.write,
                reload: c.reload,
                ...(c.logCheck ? { logCheck: c.logCheck } : {}),
            },
        },
        opts,
    );
}
