import * as pulumi from "@pulumi/pulumi";
import { STEP_TYPE, type StepOfOp, type StepOp } from "../../provider/types";
import { packStep } from "../../provider/wire";

export type { AuditSpec, ConsumerCheck, HealthPolicy, RolloutSpec, SshTarget, StepTarget } from "../../provider/types";

/** Filled in when a step leaves them out: one try, no pause, 60 s. */
const DEFAULTS = { attempts: 1, retryDelaySeconds: 0, timeoutSeconds: 60 };
type Defaulted = keyof typeof DEFAULTS;

/**
 * One op's arguments, derived from the provider's declaration of that op
 * (provider/types.ts): each field may be an Output, the defaulted ones may be
 * left out, and `op` is plain (it tells the ops apart); "script" is the op of
 * a step that names none.
 */
type ArgsOf<O extends StepOp, P = StepOfOp<O>> = {
    readonly [K in keyof P as K extends Defaulted | "op" ? never : K]: pulumi.Input<P[K]>;
} & { readonly [K in Defaulted]?: number } & (O extends "script" ? { readonly op?: O } : { readonly op: O });

/** A step's arguments: one type per op, told apart by `op`. */
export type StepArgs = { [O in StepOp]: ArgsOf<O> }[StepOp];

/** The arguments of a step of one op. */
export type StepArgsOf<O extends StepOp> = ArgsOf<O>;

/**
 * One rotation step, run by the step provider (provider/stepProvider.ts). Its
 * lists of consumers are stored with what their entries share written once
 * (provider/wire.ts).
 */
export class Step extends pulumi.CustomResource {
    /** Captured stdout (secret), when `captureStdout` is set. */
    declare readonly stdout: pulumi.Output<string | undefined>;

    constructor(name: string, args: StepArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            STEP_TYPE,
            name,
            packStep({ op: "script", ...DEFAULTS, ...args, stdout: undefined }),
            pulumi.mergeOptions(opts, { additionalSecretOutputs: ["stdin", "stdout"] }),
        );
    }
}
