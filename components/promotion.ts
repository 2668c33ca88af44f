import type * as pulumi from "@pulumi/pulumi";
import { stdinFields } from "../lib/quote";
import { SinglePhase, phaseStep, type Credential, type RotationContext } from "./context";
import { storeStep } from "./storeStep";

export interface PromotionArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** The new credential. */
    readonly credential: Credential;
    /** The revocation. */
    readonly after: pulumi.Input<pulumi.Resource>[];
}

/** Promotes the staged secret to current in the credential store. */
export class Promotion extends SinglePhase {
    constructor(name: string, args: PromotionArgs, opts?: pulumi.ComponentResourceOptions) {
        super("Promotion", name, opts, (parent) => {
            const { config } = args.context;
            return phaseStep(
                args.context,
                name,
                {
                    title: `${config.secret.name}: promote g${config.generation} to current in the store`,
                    ...storeStep(args.context, "promote"),
                    stdin: args.credential.value.apply((v) => stdinFields(v)),
                    phase: "promoted",
                },
                { parent, dependsOn: args.after },
            );
        });
    }
}
