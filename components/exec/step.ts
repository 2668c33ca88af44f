import * as pulumi from "@pulumi/pulumi";
import type { RandomSpec } from "../../generators/random";
import type { VaultStepSpec } from "../../adapters/vault";
import type { AuditSpec, ConsumerCheck, DriftCheck, PreflightSpec, RolloutSpec, SshTarget, StepOp, StepTarget } from "../../provider/types";

export type { AuditSpec, ConsumerCheck, HealthPolicy, RolloutSpec, SshTarget, StepTarget } from "../../provider/types";

/** Type token of every step, served by this project's plugin `pulumi-resource-rotation` (provider/). */
export const STEP_TYPE = "rotation:index:Step";

export interface StepArgs {
    /** What this step does, in the runbook's words; appears in errors and the audit log. */
    readonly title: pulumi.Input<string>;
    /** Where a script runs: the operator's machine or a host over SSH (a rollout names its own). */
    readonly target?: pulumi.Input<StepTarget>;
    /** "script" (default) runs `script`; "rollout" deploys to one consumer; "health" checks consumers; "random" draws a secret; "vault" is a Vault store phase. */
    readonly op?: StepOp;
    /** Bash script; values from config inside it must pass through shq(). */
    readonly script?: pulumi.Input<string>;
    /** Bash script run when the step is deleted (withdraw, clean up). */
    readonly deleteScript?: pulumi.Input<string>;
    /** Secret payload on stdin, NUL-terminated fields. Never logged. */
    readonly stdin?: pulumi.Input<string>;
    /** A change runs the step again, in place. */
    readonly triggers: pulumi.Input<pulumi.Input<string | number>[]>;
    /** Keep stdout as the secret output `stdout`. */
    readonly captureStdout?: boolean;
    /** Tries before the step fails. */
    readonly attempts?: number;
    /** Pause between tries. */
    readonly retryDelaySeconds?: number;
    /** Budget of one try. */
    readonly timeoutSeconds?: number;
    /** Appends one audit line with the step's outcome. */
    readonly audit?: pulumi.Input<AuditSpec>;
    /** Its delete waits for the secret's rotation past this generation (provider/deleteGuard.ts). */
    readonly guardDelete?: { generation: number; kind: "grant" | "value" };
    /** For op "random": the secret to draw in the step provider (its stdout). */
    readonly random?: pulumi.Input<RandomSpec>;
    /** For op "vault": the store phase to run against a Vault KV v2 secret (a staged one is removed on delete). */
    readonly vault?: pulumi.Input<VaultStepSpec>;
    /** For op "rollout": the consumer and how to deploy to it. */
    readonly rollout?: pulumi.Input<RolloutSpec>;
    /** For op "preflight": what the rotation needs, checked before anything of it runs (its hosts in `hosts`). */
    readonly preflight?: pulumi.Input<PreflightSpec>;
    /** For op "health", a pre-flight, and a gate's drift checks: the consumers' hosts, each once, by key. */
    readonly hosts?: pulumi.Input<Record<string, SshTarget>>;
    /** For op "health": what to check per consumer (its host is a key of `hosts`). */
    readonly checks?: pulumi.Input<ConsumerCheck[]>;
    /** The gate: every consumer whose config must hold the new secret before it commits (stdin: new, then previous). */
    readonly drift?: pulumi.Input<DriftCheck[]>;
    /** With `drift`: the logins a template renders with (postgres-role). */
    readonly users?: pulumi.Input<{ current: string; previous: string }>;
}

/** One rotation step, run by the step provider (provider/stepProvider.ts). */
export class Step extends pulumi.CustomResource {
    /** Captured stdout (secret), when `captureStdout` is set. */
    declare readonly stdout: pulumi.Output<string | undefined>;

    constructor(name: string, args: StepArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            STEP_TYPE,
            name,
            { op: "script", attempts: 1, retryDelaySeconds: 0, timeoutSeconds: 60, ...args, stdout: undefined },
            pulumi.mergeOptions(opts, { additionalSecretOutputs: ["stdin", "stdout"] }),
        );
    }
}
