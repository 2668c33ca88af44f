import * as pulumi from "@pulumi/pulumi";
import { stdinFields } from "../lib/quote";
import { isHostConsumer } from "../consumers";
import { sourceScripts } from "../sources";
import { healthPolicy } from "./consumerRollout";
import { LOCAL, TOKEN, consumerHosts, phaseStep, type Credential, type RotationContext } from "./context";

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
 * accepted at the source, and every consumer is still healthy with no auth
 * failures in its log since the revocation (one step for all consumers,
 * checked in parallel; its error names each one that failed, and its audit
 * line `consumers-verified` carries each consumer's count).
 */
export class Verification extends pulumi.ComponentResource {
    /** Both checks; the audit record waits for them. */
    readonly done: pulumi.Resource[];

    constructor(name: string, args: VerificationArgs, opts?: pulumi.ComponentResourceOptions) {
        super(`${TOKEN}:Verification`, name, {}, opts);
        const ctx = args.context;
        const { config } = ctx;
        const scripts = sourceScripts(config.source, { generation: config.generation, secretName: config.secret.name }, ctx.sourceHostKey);
        const source = phaseStep(
            ctx,
            `${name}-source`,
            {
                title: `${config.secret.name}: verify g${args.previous.generation} rejected and g${config.generation} accepted at the source`,
                target: LOCAL,
                script: scripts.verify,
                stdin: pulumi.all([args.previous.value, args.credential.value]).apply(([o, n]) => stdinFields(o, n)),
                attempts: 3,
                retryDelaySeconds: 2,
                phase: "verified",
            },
            { parent: this, dependsOn: args.after },
        );
        const { hosts, hostOf } = consumerHosts(ctx);
        // A consumer with a logCheck has its auth failures since the revocation counted too (provider/authFailures.ts).
        // A consumer behind an API has no health of its own to ask here: its rollout's confirmation is its check (consumers/kind.ts).
        const onHosts = config.consumers.filter(isHostConsumer);
        const checks = onHosts.map((c) => ({
            ...healthPolicy(ctx, c),
            host: hostOf(c),
            ...(c.logCheck ? { consumer: c.name, logCheck: c.logCheck } : {}),
        }));
        const consumers = phaseStep(
            ctx,
            `${name}-consumers`,
            {
                title: `${config.secret.name}: all ${onHosts.length} consumers healthy after revocation`,
                op: "health",
                hosts,
                checks,
                phase: "consumers-verified",
            },
            { parent: this, dependsOn: args.after },
        );
        this.done = [source, consumers];
        this.registerOutputs({});
    }
}
