import type * as pulumi from "@pulumi/pulumi";
import { stdinFields } from "../lib/quote";
import { sourceScripts } from "../sources";
import { SinglePhase, phaseStep, type Credential, type RotationContext } from "./context";

export interface RevocationArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** The credential being retired (the previous generation). */
    readonly previous: Credential;
    /** The gate. */
    readonly after: pulumi.Input<pulumi.Resource>[];
}

/** Revokes the previous credential at its source: the end of the dual-active window. */
export class Revocation extends SinglePhase {
    constructor(name: string, args: RevocationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("Revocation", name, opts, (parent) => {
            const ctx = args.context;
            const { config } = ctx;
            const scripts = sourceScripts(
                config.source,
                { generation: config.generation, secretName: config.secret.name, stack: ctx.stack, auditLog: config.auditLog },
                ctx.sourceHostKey,
            );
            return phaseStep(
                ctx,
                name,
                {
                    title: `${config.secret.name}: revoke g${args.previous.generation} at the ${config.source.kind} source`,
                    target: scripts.target,
                    script: scripts.revoke,
                    stdin: args.previous.grantMaterial.apply((m) => stdinFields(m)),
                    phase: "revoked",
                    timeoutSeconds: 60,
                },
                { parent, dependsOn: args.after },
            );
        });
    }
}
