import * as pulumi from "@pulumi/pulumi";
import * as vault from "@pulumi/vault";
import { stdinFields } from "../lib/quote";
import { fileStoreScripts } from "../lib/scripts/store";
import { LOCAL, SinglePhase, phaseStep, type Credential, type RotationContext } from "./context";

export interface StoreStagingArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** The new credential to stage beside the current one. */
    readonly credential: Credential;
    /** What staging waits for. */
    readonly after: pulumi.Input<pulumi.Resource>[];
}

/**
 * Stages the new secret in the credential store beside the current one:
 * `<name>.new` in a file store, `<path>-staged` in Vault. Deleting it (after
 * promotion, or on rollback) removes the staged copy.
 */
export class StoreStaging extends SinglePhase {
    constructor(name: string, args: StoreStagingArgs, opts?: pulumi.ComponentResourceOptions) {
        super("StoreStaging", name, opts, (parent) => {
            const { config } = args.context;
            const { store, secret } = config;
            if (store.kind === "vault") {
                return new vault.kv.SecretV2(name, {
                    mount: store.mount,
                    name: `${store.path}-staged`,
                    dataJson: pulumi.secret(args.credential.value.apply((value) => JSON.stringify({ value, generation: config.generation }))),
                }, { parent, dependsOn: args.after });
            }
            const scripts = fileStoreScripts(store.dir, secret.name, config.generation);
            return phaseStep(args.context, name, {
                title: `${secret.name}: stage g${config.generation} in the store`,
                target: LOCAL,
                script: scripts.stage,
                deleteScript: scripts.unstage,
                stdin: args.credential.value.apply((v) => stdinFields(v)),
                phase: "staged",
                guardDelete: { generation: config.generation, kind: "value" },
            }, { parent, dependsOn: args.after });
        });
    }
}
