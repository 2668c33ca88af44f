import type * as pulumi from "@pulumi/pulumi";
import { LOCAL, SinglePhase, phaseStep, type RotationContext } from "./context";

export interface AuditRecordArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** Everything the record vouches for. */
    readonly after: pulumi.Input<pulumi.Resource>[];
}

/** The closing audit line of a rotation ("completed") or rollback ("rolled-back"). */
export class AuditRecord extends SinglePhase {
    constructor(name: string, args: AuditRecordArgs, opts?: pulumi.ComponentResourceOptions) {
        super("AuditRecord", name, opts, (parent) => {
            const { config } = args.context;
            const phase = config.mode === "rollback" ? "rolled-back" : "completed";
            return phaseStep(
                args.context,
                name,
                {
                    title: `${config.secret.name}: audit record (${phase}) in ${config.auditLog}`,
                    target: LOCAL,
                    script: "true",
                    phase,
                    perMode: true,
                },
                { parent, dependsOn: args.after },
            );
        });
    }
}
