import * as pulumi from "@pulumi/pulumi";
import { stdinFields } from "../lib/quote";
import { sourceScripts } from "../lib/scripts/source";
import { Step } from "./exec/step";
import { TOKEN, auditSpec, triggers, type Credential, type RotationContext } from "./context";

export interface RevocationArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** The credential being retired (the previous generation). */
    readonly previous: Credential;
    /** The gate. */
    readonly after: pulumi.Input<pulumi.Resource>[];
}

/** Revokes the previous credential at its source: the end of the dual-active window. */
export class Revocation extends pulumi.ComponentResource {
    /** The resource promotion waits for. */
    readonly done: pulumi.Resource;

    constructor(name: string, args: RevocationArgs, opts?: pulumi.ComponentResourceOptions) {
        super(`${TOKEN}:Revocation`, name, {}, opts);
        const { config, sourceHostKey } = args.context;
        const scripts = sourceScripts(config.source, { generation: config.generation, secretName: config.secret.name }, sourceHostKey);
        this.done = new Step(name, {
            title: `${config.secret.name}: revoke g${args.previous.generation} at the ${config.source.kind} source`,
            target: scripts.target,
            script: scripts.revoke,
            stdin: args.previous.grantMaterial.apply((m) => stdinFields(m)),
            triggers: triggers(args.context),
            audit: auditSpec(args.context, "revoked"),
            timeoutSeconds: 60,
        }, { parent: this, dependsOn: args.after });
        this.registerOutputs({});
    }
}
