import type * as pulumi from "@pulumi/pulumi";
import { preflightSpec } from "../provider/preflight";
import { consumerHosts, phaseStep, type RotationContext } from "./context";
import type { Step } from "./exec/step";

/**
 * The first step of a rotation: every consumer's host, config, reload
 * program and free space, the source's admin credential and the store,
 * checked in parallel by the step provider (provider/preflight.ts) before
 * anything is read, generated, staged or granted. It runs once per
 * generation, so a plain `pulumi up` finds an unreachable host before the
 * new secret exists, not at its rollout; its failure names every problem.
 * A helper, not a component: one step, parented to the rotation.
 */
export function preflightStep(name: string, ctx: RotationContext, after: pulumi.Input<pulumi.Resource>[], parent: pulumi.Resource): Step {
    const { config } = ctx;
    const { hosts, hostOf } = consumerHosts(ctx);
    const n = config.consumers.length;
    return phaseStep(
        ctx,
        name,
        {
            title: `${config.secret.name}: pre-flight of g${config.generation} (${n} consumer${n === 1 ? "" : "s"}, the source, the store)`,
            op: "preflight",
            hosts,
            preflight: preflightSpec(ctx, hostOf),
            phase: "preflight",
        },
        { parent, dependsOn: after },
    );
}
