import * as pulumi from "@pulumi/pulumi";
import { Step } from "./exec/step";
import { LOCAL, TOKEN, auditSpec, triggers, type RotationContext } from "./context";

export interface AuditRecordArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** Everything the record vouches for. */
    readonly after: pulumi.Input<pulumi.Resource>[];
}

/** The closing audit line of a rotation ("completed") or rollback ("rolled-back"). */
export class AuditRecord extends pulumi.ComponentResource {
    constructor(name: string, args: AuditRecordArgs, opts?: pulumi.ComponentResourceOptions) {
        super(`${TOKEN}:AuditRecord`, name, {}, opts);
        const { config } = args.context;
        const phase = config.mode === "rollback" ? "rolled-back" : "completed";
        new Step(name, {
            title: `${config.secret.name}: audit record (${phase}) in ${config.auditLog}`,
            target: LOCAL,
            script: "true",
            triggers: triggers(args.context, true),
            audit: auditSpec(args.context, phase),
        }, { parent: this, dependsOn: args.after });
        this.registerOutputs({});
    }
}
