import * as pulumi from "@pulumi/pulumi";
import { stdinFields } from "../lib/quote";
import { SinglePhase, phaseStep, type Credential, type RotationContext } from "./context";
import { storeStep } from "./storeStep";

export interface StoreStagingArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** The new credential to stage beside the current one. */
    readonly credential: Credential;
    /** The credential in use: a new secret equal to it (or to the one before it) is refused. */
    readonly previous: Credential;
    /** What staging waits for. */
    readonly after: pulumi.Input<pulumi.Resource>[];
}

/**
 * Stages the new secret in the credential store beside the current one:
 * `<name>.new` in a file store, field `new` of the KV secret in Vault. Deleting it (after
 * promotion, or on rollback) removes the staged copy. A new secret equal to the
 * one in use, or to the one before it, is refused here, before anything is
 * granted: its revocation would be an outage.
 */
export class StoreStaging extends SinglePhase {
    constructor(name: string, args: StoreStagingArgs, opts?: pulumi.ComponentResourceOptions) {
        super("StoreStaging", name, opts, (parent) => {
            const { config } = args.context;
            return phaseStep(
                args.context,
                name,
                {
                    title: `${config.secret.name}: stage g${config.generation} in the store`,
                    ...storeStep(args.context, "stage"),
                    stdin: pulumi.all([args.credential.value, args.previous.value]).apply(([n, o]) => stdinFields(n, o)),
                    phase: "staged",
                    guardDelete: { generation: config.generation, kind: "value" },
                },
                { parent, dependsOn: args.after },
            );
        });
    }
}
