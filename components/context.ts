import * as pulumi from "@pulumi/pulumi";
import type { RotationConfig } from "../lib/config";
import { consumerHosts, consumerTarget } from "../adapters/resolve";
import { Step, type AuditSpec, type StepArgs, type StepArgsOf, type StepTarget } from "./exec/step";

/** Type-token package of every component here: `rotation:index:<Component>`. */
export const TOKEN = "rotation:index";

/**
 * What every component of one rotation shares. Built once from the validated
 * and resolved config (local paths absolute, host keys read).
 */
export interface RotationContext {
    readonly stack: string;
    readonly config: RotationConfig;
    /** The pinned SSH host key of the ssh-authorized-key source, if any. */
    readonly sourceHostKey?: string;
    /** Each consumer's pinned host key by consumer name. */
    readonly consumerHostKeys: Readonly<Record<string, string>>;
}

/** A credential flowing between phases; `value` and `grantMaterial` are secret. */
export interface Credential {
    readonly generation: number;
    /** The secret itself. */
    readonly value: pulumi.Output<string>;
    /** What the source is given: the value, or an SSH public key for ssh-key secrets. */
    readonly grantMaterial: pulumi.Output<string>;
    /** For postgres-role: the login of this generation; consumers receive it with the password. */
    readonly user?: string;
}

/** The triggers of a step that re-runs once per generation (and per mode, for rollouts). */
export function triggers(ctx: RotationContext, perMode = false): (string | number)[] {
    return perMode ? [ctx.config.generation, ctx.config.mode] : [ctx.config.generation];
}

/** The audit line a step appends with its outcome: who, what, which generation, never the value. */
export function auditSpec(ctx: RotationContext, phase: string, consumer?: string): AuditSpec {
    const { config } = ctx;
    return {
        path: config.auditLog,
        record: {
            stack: ctx.stack,
            secret: config.secret.name,
            generation: config.generation,
            mode: config.mode,
            phase,
            ...(consumer ? { consumer } : {}),
            reason: config.secret.reason,
            ...(config.secret.note ? { note: config.secret.note } : {}),
            // The team that owns the secret (its config's `operator`); who ran the step is added as it is written (provider/outcome.ts).
            team: config.secret.operator,
            consumersConfigured: config.consumers.length,
            // Leave to rotate this generation outside its window: why, and who gave it (lib/gates.ts).
            ...(config.windowOverride ? { outsideWindow: config.windowOverride.why, outsideWindowBy: config.windowOverride.by } : {}),
            // The two-person ceremony's witnesses, from verified signatures only (lib/gates.ts).
            ...(config.approval ? { ceremony: config.approval.request, requestedBy: config.approval.requester, approvedBy: config.approval.approver } : {}),
        },
    };
}

export { consumerHosts, consumerTarget };

export const LOCAL: StepTarget = { kind: "local" };

/** What a phase step adds to a plain step of each op: the audit phase, and whether a mode change runs it again. */
export type PhaseStepArgs = StepArgs extends infer A ? (A extends StepArgs ? Omit<A, "triggers" | "audit"> & PhaseFields : never) : never;

interface PhaseFields {
    /** The audit phase its outcome is recorded under (none: no audit line). */
    readonly phase?: string;
    /** The consumer the audit line names. */
    readonly consumer?: string;
    /** Runs again when the mode changes too (rollouts, the rollback guard, the audit record). */
    readonly perMode?: boolean;
    /** Other triggers than the generation (a grant is keyed to its credential's generation). */
    readonly triggers?: (string | number)[];
}

/** What a store phase's step runs (components/storeStep.ts): a script, or a call of the Vault or Kubernetes API. */
export type StoreStepArgs =
    | Pick<StepArgsOf<"script">, "op" | "target" | "script" | "deleteScript">
    | Pick<StepArgsOf<"vault">, "op" | "vault">
    | Pick<StepArgsOf<"kubernetes">, "op" | "kubernetes">;

/**
 * One step of this secret's rotation: it runs again when the generation
 * changes (and the mode, `perMode`), and appends its outcome to the audit log
 * under `phase`. Every phase builds its steps through here.
 */
export function phaseStep(ctx: RotationContext, name: string, args: PhaseStepArgs, opts: pulumi.CustomResourceOptions): Step {
    const { phase, consumer, perMode, triggers: own, ...step } = args;
    return new Step(
        name,
        {
            ...step,
            triggers: own ?? triggers(ctx, perMode),
            ...(phase ? { audit: auditSpec(ctx, phase, consumer) } : {}),
        },
        opts,
    );
}

/**
 * A phase whose work is one resource (a step, or a Vault secret): a component
 * with that resource as its only child, and `done` what later phases wait for.
 */
export abstract class SinglePhase extends pulumi.ComponentResource {
    readonly done: pulumi.Resource;

    protected constructor(type: string, name: string, opts: pulumi.ComponentResourceOptions | undefined, build: (parent: pulumi.Resource) => pulumi.Resource) {
        super(`${TOKEN}:${type}`, name, {}, opts);
        this.done = build(this);
        this.registerOutputs({});
    }
}
