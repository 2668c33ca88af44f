import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import { stdinFields } from "../lib/quote";
import { fileStoreScripts } from "../lib/scripts/store";
import { LOCAL, SinglePhase, phaseStep, type Credential, type RotationContext } from "./context";

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
            const { store } = config;
            if (store.kind === "vault") {
                // The current path outlives any one generation: never delete it.
                return new vault.kv.SecretV2(name, {
                    mount: store.mount,
                    name: store.path,
                    dataJson: pulumi.secret(args.credential.value.apply((value) => JSON.stringify({ value, generation: config.generation }))),
                }, { parent, dependsOn: args.after, retainOnDelete: true });
            }
            return phaseStep(args.context, name, {
                title: `${config.secret.name}: promote g${config.generation} to current in the store`,
                target: LOCAL,
                script: fileStoreScripts(store.dir, config.secret.name, config.generation).promote,
                stdin: args.credential.value.apply((v) => stdinFields(v)),
                phase: "promoted",
            }, { parent, dependsOn: args.after });
        });
    }
}
