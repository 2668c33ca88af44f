import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import { stdinFields } from "../lib/quote";
import { fileStoreScripts } from "../lib/scripts/store";
import { Step } from "./exec/step";
import { LOCAL, TOKEN, auditSpec, triggers, type Credential, type RotationContext } from "./context";

export interface PromotionArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** The new credential. */
    readonly credential: Credential;
    /** The revocation. */
    readonly after: pulumi.Input<pulumi.Resource>[];
}

/** Promotes the staged secret to current in the credential store. */
export class Promotion extends pulumi.ComponentResource {
    /** The resource verification waits for. */
    readonly done: pulumi.Resource;

    constructor(name: string, args: PromotionArgs, opts?: pulumi.ComponentResourceOptions) {
        super(`${TOKEN}:Promotion`, name, {}, opts);
        const { config } = args.context;
        const { store } = config;
        if (store.kind === "vault") {
            // The current path outlives any one generation: never delete it.
            this.done = new vault.kv.SecretV2(name, {
                mount: store.mount,
                name: store.path,
                dataJson: pulumi.secret(args.credential.value.apply((value) => JSON.stringify({ value, generation: config.generation }))),
            }, { parent: this, dependsOn: args.after, retainOnDelete: true });
        } else {
            this.done = new Step(name, {
                title: `${config.secret.name}: promote g${config.generation} to current in the store`,
                target: LOCAL,
                script: fileStoreScripts(store.dir, config.secret.name, config.generation).promote,
                stdin: args.credential.value.apply((v) => stdinFields(v)),
                triggers: triggers(args.context),
                audit: auditSpec(args.context, "promoted"),
            }, { parent: this, dependsOn: args.after });
        }
        this.registerOutputs({});
    }
}
