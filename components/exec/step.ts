import * as pulumi from "@pulumi/pulumi";
import type { WriteSpec } from "../../lib/configFormats";
import { stepProvider, type AuditSpec, type StepTarget } from "./provider";

export type { StepTarget, AuditSpec } from "./provider";

/** Type token of every step: `pulumi-nodejs:dynamic/rotation:Step`. */
export const STEP_TYPE = "pulumi-nodejs:dynamic/rotation:Step";

export interface StepArgs {
    /** What this step does, in the runbook's words; appears in errors and the audit log. */
    readonly title: pulumi.Input<string>;
    /** Where the script runs: the operator's machine or a host over SSH. */
    readonly target: pulumi.Input<StepTarget>;
    /** "script" (default) runs `script`; "write-config" rewrites `configPath`. */
    readonly op?: "script" | "write-config";
    /** Bash script; values from config inside it must pass through shq(). */
    readonly script?: pulumi.Input<string>;
    /** Bash script run when the step is deleted (withdraw, clean up). */
    readonly deleteScript?: pulumi.Input<string>;
    /** Secret payload on stdin, NUL-terminated fields. Never logged. */
    readonly stdin?: pulumi.Input<string>;
    /** A change re-runs the step. */
    readonly triggers: pulumi.Input<pulumi.Input<string | number>[]>;
    /** Keep stdout as the secret output `stdout`. */
    readonly captureStdout?: boolean;
    /** Tries before the step fails (health checks retry; writes do not). */
    readonly attempts?: number;
    /** Pause between tries. */
    readonly retryDelaySeconds?: number;
    /** Budget of one try. */
    readonly timeoutSeconds?: number;
    /** Appends one audit line with the step's outcome. */
    readonly audit?: pulumi.Input<AuditSpec>;
    /** For op "write-config": the consumer's config file. */
    readonly configPath?: pulumi.Input<string>;
    /** For op "write-config": how the secret goes into the file. */
    readonly write?: pulumi.Input<WriteSpec>;
}

/** One rotation step, run by the step provider (components/exec/provider.ts). */
export class Step extends pulumi.dynamic.Resource {
    /** Captured stdout (secret), when `captureStdout` is set. */
    declare readonly stdout: pulumi.Output<string | undefined>;

    constructor(name: string, args: StepArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            stepProvider,
            name,
            { op: "script", attempts: 1, retryDelaySeconds: 0, timeoutSeconds: 60, ...args, stdout: undefined },
            pulumi.mergeOptions(opts, { additionalSecretOutputs: ["stdin", "stdout"] }),
            "rotation",
            "Step",
        );
    }
}
