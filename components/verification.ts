import * as pulumi from "@pulumi/pulumi";
import { stdinFields } from "../lib/quote";
import { healthScript } from "../lib/scripts/consumer";
import { sourceScripts } from "../lib/scripts/source";
import { Step } from "./exec/step";
import { LOCAL, TOKEN, auditSpec, consumerTarget, triggers, type Credential, type RotationContext } from "./context";

export interface VerificationArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** The retired credential, which must now be rejected. */
    readonly previous: Credential;
    /** The new credential, which must be accepted. */
    readonly credential: Credential;
    /** The promotion. */
    readonly after: pulumi.Input<pulumi.Resource>[];
}

/**
 * After revocation and promotion: the old secret is rejected and the new one
 * accepted at the source, and every consumer is still healthy.
 */
export class Verification extends pulumi.ComponentResource {
    /** Every check; the audit record waits for all of them. */
    readonly done: pulumi.Resource[];

    constructor(name: string, args: VerificationArgs, opts?: pulumi.ComponentResourceOptions) {
        super(`${TOKEN}:Verification`, name, {}, opts);
        const ctx = args.context;
        const { config } = ctx;
        const scripts = sourceScripts(config.source, { generation: config.generation, secretName: config.secret.name }, ctx.sourceHostKey);
        const source = new Step(`${name}-source`, {
            title: `${config.secret.name}: verify g${args.previous.generation} rejected and g${config.generation} accepted at the source`,
            target: LOCAL,
            script: scripts.verify,
            stdin: pulumi.all([args.previous.value, args.credential.value]).apply(([o, n]) => stdinFields(o, n)),
            triggers: triggers(ctx),
            attempts: 3,
            retryDelaySeconds: 2,
            audit: auditSpec(ctx, "verified"),
        }, { parent: this, dependsOn: args.after });
        const consumers = config.consumers.map((c) => {
            const health = healthScript(c);
            return new Step(`${name}-${c.name}`, {
                title: `${config.secret.name} → consumer ${c.name}: healthy after revocation`,
                target: health.where === "local" ? LOCAL : consumerTarget(ctx, c),
                script: health.script,
                triggers: triggers(ctx),
                attempts: c.retries + 1,
                retryDelaySeconds: c.retryDelaySeconds,
                timeoutSeconds: c.timeoutSeconds,
            }, { parent: this, dependsOn: args.after });
        });
        this.done = [source, ...consumers];
        this.registerOutputs({});
    }
}
