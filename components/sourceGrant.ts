import type * as pulumi from "@pulumi/pulumi";
import { stdinFields } from "../lib/quote";
import { sourceScripts } from "../sources";
import { SinglePhase, phaseStep, type Credential, type RotationContext } from "./context";

export interface SourceGrantArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** The new credential to enable at the source. */
    readonly credential: Credential;
    /** What the grant waits for (staging). */
    readonly after: pulumi.Input<pulumi.Resource>[];
}

/**
 * Enables the new credential at its source while the old one keeps working:
 * the start of the dual-active window. Deleting the grant withdraws the
 * credential, which is how a rollback takes it back.
 */
export class SourceGrant extends SinglePhase {
    constructor(name: string, args: SourceGrantArgs, opts?: pulumi.ComponentResourceOptions) {
        super("SourceGrant", name, opts, (parent) => {
            const ctx = args.context;
            const { config } = ctx;
            const g = args.credential.generation;
            const scripts = sourceScripts(
                config.source,
                { generation: g, secretName: config.secret.name, stack: ctx.stack, auditLog: config.auditLog },
                ctx.sourceHostKey,
            );
            return phaseStep(
                ctx,
                name,
                {
                    title: `${config.secret.name}: grant g${g} at the ${config.source.kind} source (dual-active)`,
                    target: scripts.target,
                    script: scripts.grant,
                    deleteScript: scripts.withdraw,
                    stdin: args.credential.grantMaterial.apply((m) => stdinFields(m)),
                    // Keyed to the credential's own generation: in a rollback the previous
                    // generation's grant is re-registered unchanged instead of replaced
                    // (a replacement would delete, i.e. withdraw, the secret being restored).
                    triggers: [g],
                    phase: "granted",
                    guardDelete: { generation: g, kind: "grant" },
                    timeoutSeconds: 60,
                },
                { parent, dependsOn: args.after },
            );
        });
    }
}
