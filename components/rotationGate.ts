import * as pulumi from "@pulumi/pulumi";
import { SinglePhase, phaseStep, type RotationContext } from "./context";
import { storeStep } from "./storeStep";

export interface RotationGateArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** The last step of every consumer's rollout. */
    readonly rollouts: pulumi.Resource[];
}

/**
 * The point of no return: it runs only after every consumer was deployed,
 * reloaded and found healthy, and records in the store (a file store's
 * marker, a Vault secret's metadata) that revocation of the previous secret
 * starts, after which rollback is refused.
 */
export class RotationGate extends SinglePhase {
    constructor(name: string, args: RotationGateArgs, opts?: pulumi.ComponentResourceOptions) {
        super("RotationGate", name, opts, (parent) => {
            const { config } = args.context;
            return phaseStep(args.context, name, {
                title: `${config.secret.name}: gate, all ${config.consumers.length} consumers verified on g${config.generation}`,
                ...storeStep(args.context, "commit"),
                phase: "rolled-out",
            }, { parent, dependsOn: args.rollouts });
        });
    }
}
