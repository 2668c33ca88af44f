import * as pulumi from "@pulumi/pulumi";
import { phaseOrder, rotationPlan, stepResourceName, type PlanStep } from "../lib/plan";
import { AuditRecord } from "./auditRecord";
import { consumerRollout, rolloutBatch } from "./consumerRollout";
import { TOKEN, phaseStep, type RotationContext } from "./context";
import { preflightStep } from "./preflight";
import { Promotion } from "./promotion";
import { Revocation } from "./revocation";
import { RotationGate } from "./rotationGate";
import { SecretVersion } from "./secretVersion";
import { SourceGrant } from "./sourceGrant";
import { StoreStaging } from "./storeStaging";
import { storeStep } from "./storeStep";
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
    /** The consumers of each wave, when the secret rolls out in waves. */
    waves?: string[][];
    onFailure?: string;
    /** How many step resources carry the rollouts, when consumers are batched (rollout.batch). */
    rolloutBatches?: number;
}

export interface RotationArgs {
    /** The validated, resolved config of this secret and its pinned host keys. */
    readonly context: RotationContext;
    /** Resources (other secrets' rotations, `after`) that must complete before this rotation starts. */
    readonly after?: pulumi.Resource[];
}

/**
 * One secret's rotation for the stack's generation, realizing lib/plan.ts:
 * pre-flight → generate → stage → grant (dual-active) → every consumer's rollout → gate →
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
        // lib/plan.ts is the graph: which phase waits for which. Here is only how each phase is built;
        // every resource gets exactly its plan dependencies (a step without any waits for `after`).
        this.plan = rotationPlan({ mode: config.mode, consumers: config.consumers, waves: config.rollout.waves, batch: config.rollout.batch });
        // Batched rollouts: each batch's consumers, in plan order; one resource per batch, built at its first consumer.
        const batches: string[][] = [];
        for (const s of this.plan) if (s.batch) (batches[s.batch - 1] ??= []).push(s.consumer!);
        const batchBuilt = new Map<number, pulumi.Resource>();
        const child = { parent: this };
        const byName = new Map(config.consumers.map((c) => [c.name, c]));
        // A rollout's resource is named as the console looks it up (its own, or its batch's).
        const rolloutName = (s: PlanStep) => stepResourceName(name, s, config.generation, config.mode);
        let previous!: SecretVersion;
        let secret!: SecretVersion;
        let verify: Verification | undefined;
        const build: Record<PlanStep["phase"], (step: PlanStep, after: pulumi.Resource[]) => pulumi.Resource> = {
            preflight: (_s, after) => preflightStep(`${name}-preflight`, ctx, after, this),
            "read-previous": (_s, after) => (previous = new SecretVersion(`${name}-previous`, { context: ctx, origin: "stored", after }, child)),
            generate: (_s, after) => (secret = new SecretVersion(`${name}-g${config.generation}`, { context: ctx, origin: "generate", after }, child)),
            stage: (_s, after) => new StoreStaging(`${name}-stage`, { context: ctx, credential: secret, previous, after }, child).done,
            // In a rollback the previous generation's grant stays registered (see lib/plan.ts).
            grant: (_s, after) => {
                const credential = config.mode === "rollback" ? previous : secret;
                return new SourceGrant(`${name}-grant-g${credential.generation}`, { context: ctx, credential, after }, child).done;
            },
            rollout: (s, after) => {
                const credential = config.mode === "rollback" ? previous : secret;
                if (s.batch) {
                    // A batch's consumers all wait for the same steps (a batch never spans two waves).
                    const k = s.batch;
                    if (!batchBuilt.has(k)) {
                        const consumers = batches[k - 1].map((n) => byName.get(n)!);
                        const batch = { k, of: batches.length };
                        batchBuilt.set(k, rolloutBatch(rolloutName(s), ctx, consumers, batch, credential, { parent: this, dependsOn: after }));
                    }
                    return batchBuilt.get(k)!;
                }
                return consumerRollout(rolloutName(s), ctx, byName.get(s.consumer!)!, credential, { parent: this, dependsOn: after });
            },
            guard: (_s, after) =>
                phaseStep(
                    ctx,
                    `${name}-rollback-guard`,
                    {
                        title: `${config.secret.name}: rollback of g${config.generation} allowed (revocation not started)`,
                        ...storeStep(ctx, "guard"),
                        perMode: true,
                        phase: "rollback-started",
                    },
                    { parent: this, dependsOn: after },
                ),
            gate: (_s, after) => new RotationGate(`${name}-gate`, { context: ctx, rollouts: after, credential: secret, previous }, child).done,
            revoke: (_s, after) => new Revocation(`${name}-revoke`, { context: ctx, previous, after }, child).done,
            promote: (_s, after) => new Promotion(`${name}-promote`, { context: ctx, credential: secret, after }, child).done,
            // One component holds both checks; each plan step gets its own resource of it.
            verify: (s, after) => {
                verify ??= new Verification(`${name}-verify`, { context: ctx, previous, credential: secret, after }, child);
                return s.id === "verify/source" ? verify.done[0] : verify.done[1];
            },
            audit: (_s, after) => new AuditRecord(`${name}-audit`, { context: ctx, after }, child),
        };
        const built = new Map<string, pulumi.Resource>();
        for (const step of this.plan) {
            // Each resource once: a batch stands for every consumer of it.
            const after = step.dependsOn.length ? [...new Set(step.dependsOn.map((d) => built.get(d)!))] : [...(args.after ?? [])];
            built.set(step.id, build[step.phase](step, after));
        }
        this.finished = built.get("audit")!;
        // The plan numbers a rollout's wave only when there are several.
        const waves: string[][] = [];
        for (const s of this.plan) if (s.wave) (waves[s.wave - 1] ??= []).push(s.consumer!);

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
            ...(waves.length > 1 ? { waves, onFailure: config.rollout.onFailure } : {}),
            ...(batches.length ? { rolloutBatches: batches.length } : {}),
        };
        this.registerOutputs({ summary: this.summary });
    }
}
