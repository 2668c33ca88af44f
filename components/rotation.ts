import * as pulumi from "@pulumi/pulumi";
import { phaseOrder, rotationPlan, type PlanStep } from "../lib/plan";
import { fileStoreScripts } from "../lib/scripts/store";
import { AuditRecord } from "./auditRecord";
import { consumerRollout } from "./consumerRollout";
import { LOCAL, TOKEN, auditSpec, triggers, type RotationContext } from "./context";
import { Step } from "./exec/step";
import { Promotion } from "./promotion";
import { Revocation } from "./revocation";
import { RotationGate } from "./rotationGate";
import { SecretVersion } from "./secretVersion";
import { SourceGrant } from "./sourceGrant";
import { StoreStaging } from "./storeStaging";
import { Verification } from "./verification";

export interface RotationSummary {
    secret: string;
    type: string;
    generation: number;
    mode: string;
    source: string;
    store: string;
    consumers: string[];
    phases: string[];
    auditLog: string;
    after?: string[];
}

export interface RotationArgs {
    /** The validated, resolved config of this secret and its pinned host keys. */
    readonly context: RotationContext;
    /** Resources (other secrets' rotations, `after`) that must complete before this rotation starts. */
    readonly after?: pulumi.Resource[];
}

/**
 * One secret's rotation for the stack's generation, realizing lib/plan.ts:
 * generate → stage → grant (dual-active) → every consumer's rollout → gate →
 * revoke previous → promote → verify → audit. In rollback mode: restore every
 * consumer to the previous secret; the previous generation's grant stays
 * registered, while the new generation's grant and staged copy are not, so
 * Pulumi deletes them after the consumers are restored, which withdraws the
 * new secret at the source.
 */
export class Rotation extends pulumi.ComponentResource {
    /** The dependency graph this rotation realizes. */
    readonly plan: PlanStep[];
    /** Non-secret description for stack outputs. */
    readonly summary: RotationSummary;
    /** The last step (the audit record): done means this secret's rotation completed. */
    readonly finished: pulumi.Resource;

    constructor(name: string, args: RotationArgs, opts?: pulumi.ComponentResourceOptions) {
        super(`${TOKEN}:Rotation`, name, {}, opts);
        const ctx = args.context;
        const { config } = ctx;
        if (config.generation === 0) throw new Error("Rotation: generation 0 has nothing to rotate");
        this.plan = rotationPlan({ mode: config.mode, consumers: config.consumers });
        const done = new Map<string, pulumi.Resource[]>();
        // A step without dependencies in the plan waits for the secrets this one comes after.
        const after = (id: string): pulumi.Resource[] => {
            const deps = this.plan.find((s) => s.id === id)!.dependsOn;
            return deps.length ? deps.flatMap((d) => done.get(d) ?? []) : [...(args.after ?? [])];
        };
        const child = { parent: this };

        const previous = new SecretVersion(`${name}-previous`, { context: ctx, origin: "stored", after: after("previous") }, child);
        done.set("previous", [previous]);

        const rollouts = (credential: SecretVersion) =>
            config.consumers.map((c) => {
                const id = `rollout/${c.name}`;
                const r = consumerRollout(`${name}-rollout-${c.name}`, ctx, c, credential, { parent: this, dependsOn: after(id) });
                done.set(id, [r]);
                return r;
            });

        if (config.mode === "rollback") {
            const guard = new Step(`${name}-rollback-guard`, {
                title: `${config.secret.name}: rollback of g${config.generation} allowed (revocation not started)`,
                target: LOCAL,
                script: config.store.kind === "file" ? fileStoreScripts(config.store.dir, config.secret.name, config.generation).rollbackGuard : "true",
                triggers: triggers(ctx, true),
                audit: auditSpec(ctx, "rollback-started"),
            }, { parent: this, dependsOn: after("guard") });
            done.set("guard", [guard]);
            const regrant = new SourceGrant(`${name}-grant-g${config.generation - 1}`, { context: ctx, credential: previous, after: after("grant-previous") }, child);
            done.set("grant-previous", [regrant.done]);
            rollouts(previous);
        } else {
            const secret = new SecretVersion(`${name}-g${config.generation}`, { context: ctx, origin: "generate", after: after("secret") }, child);
            done.set("secret", [secret]);
            const stage = new StoreStaging(`${name}-stage`, { context: ctx, credential: secret, after: after("stage") }, child);
            done.set("stage", [stage.done]);
            const grant = new SourceGrant(`${name}-grant-g${config.generation}`, { context: ctx, credential: secret, after: after("grant") }, child);
            done.set("grant", [grant.done]);
            rollouts(secret);
            const gate = new RotationGate(`${name}-gate`, { context: ctx, rollouts: after("gate") }, child);
            done.set("gate", [gate.done]);
            const revoke = new Revocation(`${name}-revoke`, { context: ctx, previous, after: after("revoke") }, child);
            done.set("revoke", [revoke.done]);
            const promote = new Promotion(`${name}-promote`, { context: ctx, credential: secret, after: after("promote") }, child);
            done.set("promote", [promote.done]);
            const verify = new Verification(`${name}-verify`, { context: ctx, previous, credential: secret, after: after("verify/source") }, child);
            done.set("verify/source", [verify.done[0]]);
            done.set("verify/consumers", [verify.done[1]]);
        }
        this.finished = new AuditRecord(`${name}-audit`, { context: ctx, after: after("audit") }, child);

        this.summary = {
            secret: config.secret.name,
            type: config.secret.type,
            generation: config.generation,
            mode: config.mode,
            source: config.source.kind,
            store: config.store.kind,
            consumers: config.consumers.map((c) => c.name),
            phases: phaseOrder(this.plan),
            auditLog: config.auditLog,
            ...(config.after.length ? { after: config.after } : {}),
        };
        this.registerOutputs({ summary: this.summary });
    }
}
