import * as pulumi from "@pulumi/pulumi";
import type { ConsumerConfig } from "../lib/config";
import { rolloutSteps } from "../lib/plan";
import { stdinFields } from "../lib/quote";
import { healthScript, logCheckScript } from "../lib/scripts/consumer";
import { Step } from "./exec/step";
import { LOCAL, TOKEN, auditSpec, consumerTarget, triggers, type Credential, type RotationContext } from "./context";

export interface ConsumerRolloutArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** The consumer from the stack's inventory. */
    readonly consumer: ConsumerConfig;
    /** The credential to deploy (the new one, or the previous one on rollback). */
    readonly credential: Credential;
    /** What the rollout waits for (the grant, or the rollback guard). */
    readonly after: pulumi.Input<pulumi.Resource>[];
}

/**
 * Deploys a credential to one consumer: back up its config to `.bak` and
 * write the new value atomically (mode 0600), reload the service, check its
 * health with retries, then optionally watch its log for auth failures.
 * Every step re-runs when the generation (or mode) changes.
 */
export class ConsumerRollout extends pulumi.ComponentResource {
    /** The last step; it succeeds only if every step before it did. */
    readonly done: pulumi.Resource;

    constructor(name: string, args: ConsumerRolloutArgs, opts?: pulumi.ComponentResourceOptions) {
        super(`${TOKEN}:ConsumerRollout`, name, {}, opts);
        const { context: ctx, consumer: c, credential } = args;
        const host = consumerTarget(ctx, c);
        const label = `${ctx.config.secret.name} → consumer ${c.name}`;
        const health = healthScript(c);
        const common = { triggers: triggers(ctx, true), timeoutSeconds: c.timeoutSeconds };

        let after: pulumi.Input<pulumi.Resource>[] = args.after;
        let last: pulumi.Resource | undefined;
        for (const step of rolloutSteps(c)) {
            const stepOpts = { parent: this, dependsOn: after };
            switch (step) {
                case "deploy":
                    last = new Step(`${name}-deploy`, {
                        ...common,
                        title: `${label}: write g${credential.generation} into ${c.configPath} (backup in .bak)`,
                        target: host,
                        op: "write-config",
                        configPath: c.configPath,
                        write: c.write,
                        stdin: credential.value.apply((v) => (credential.user === undefined ? stdinFields(v) : stdinFields(v, credential.user))),
                    }, stepOpts);
                    break;
                case "reload":
                    last = new Step(`${name}-reload`, { ...common, title: `${label}: reload`, target: host, script: c.reload }, stepOpts);
                    break;
                case "health":
                    last = new Step(`${name}-health`, {
                        ...common,
                        title: `${label}: health check`,
                        target: health.where === "local" ? LOCAL : host,
                        script: health.script,
                        attempts: c.retries + 1,
                        retryDelaySeconds: c.retryDelaySeconds,
                        audit: auditSpec(ctx, ctx.config.mode === "rollback" ? "consumer-restored" : "consumer-verified", c.name),
                    }, stepOpts);
                    break;
                case "logcheck":
                    last = new Step(`${name}-logcheck`, {
                        ...common,
                        title: `${label}: no auth failures in ${c.logCheck!.path}`,
                        target: host,
                        script: logCheckScript(c)!,
                        timeoutSeconds: c.logCheck!.windowSeconds + c.timeoutSeconds,
                    }, stepOpts);
                    break;
            }
            after = [last];
        }
        this.done = last!;
        this.registerOutputs({});
    }
}
