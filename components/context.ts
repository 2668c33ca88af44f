import * as pulumi from "@pulumi/pulumi";
import type { ConsumerConfig, RotationConfig, SshTarget } from "../lib/config";
import type { AuditSpec, StepTarget } from "./exec/step";
import type { SshTarget as SshStepTarget } from "../provider/types";

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
            operator: config.secret.operator,
            consumers: config.consumers.length,
        },
    };
}

export function consumerTarget(ctx: RotationContext, c: ConsumerConfig): SshStepTarget {
    const t: SshTarget = { host: c.host, port: c.port, user: c.user, hostKey: ctx.consumerHostKeys[c.name], privateKeyFile: c.privateKeyFile };
    return { kind: "ssh", ...t };
}

export const LOCAL: StepTarget = { kind: "local" };
