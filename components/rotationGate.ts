import * as pulumi from "@pulumi/pulumi";
import { fileStoreScripts } from "../lib/scripts/store";
import { LOCAL, SinglePhase, phaseStep, type RotationContext } from "./context";

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
export class RotationGate extends SinglePhase {
    constructor(name: string, args: RotationGateArgs, opts?: pulumi.ComponentResourceOptions) {
        super("RotationGate", name, opts, (parent) => {
            const { config } = args.context;
            return phaseStep(args.context, name, {
                title: `${config.secret.name}: gate, all ${config.consumers.length} consumers verified on g${config.generation}`,
                target: LOCAL,
                script: config.store.kind === "file" ? fileStoreScripts(config.store.dir, config.secret.name, config.generation).commit : "true",
                phase: "rolled-out",
            }, { parent, dependsOn: args.rollouts });
        });
    }
}
