import * as pulumi from "@pulumi/pulumi";
import { fileStoreScripts } from "../lib/scripts/store";
import { Step } from "./exec/step";
import { LOCAL, TOKEN, auditSpec, triggers, type RotationContext } from "./context";

export interface RotationGateArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** The last step of every consumer's rollout. */
    readonly rollouts: pulumi.Resource[];
}

/**
 * The point of no return: it runs only after every consumer was deployed,
 * reloaded and found healthy, and records (in a file store) that revocation
 * of the previous secret starts, after which rollback is refused.
 */
export class RotationGate extends pulumi.ComponentResource {
    /** The resource the revocation waits for. */
    readonly done: pulumi.Resource;

    constructor(name: string, args: RotationGateArgs, opts?: pulumi.ComponentResourceOptions) {
        super(`${TOKEN}:RotationGate`, name, {}, opts);
        const { config } = args.context;
        const script = config.store.kind === "file"
            ? fileStoreScripts(config.store.dir, config.secret.name, config.generation).commit
            : "true";
        this.done = new Step(name, {
            title: `${config.secret.name}: gate, all ${config.consumers.length} consumers verified on g${config.generation}`,
            target: LOCAL,
            script,
            triggers: triggers(args.context),
            audit: auditSpec(args.context, "rolled-out"),
        }, { parent: this, dependsOn: args.rollouts });
        this.registerOutputs({});
    }
}
