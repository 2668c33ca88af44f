/**
 * The rotation as a dependency graph, independent of Pulumi: which step waits
 * for which. The components realize exactly this graph (components/rotation.ts
 * wires each step's dependsOn from it) and the tests check its invariants:
 * the revocation waits for every consumer's health check, nothing is revoked
 * in a rollback, and so on.
 */
import { batchSizeOf, formWaves, type BatchSetting, type WaveEntry } from "./waves";

export type Mode = "rotate" | "rollback";

export interface PlanStep {
    /** Stable id, e.g. "rollout/web-1". */
    id: string;
    /** The runbook phase it belongs to. */
    phase: "preflight" | "generate" | "read-previous" | "stage" | "grant" | "rollout" | "gate" | "revoke" | "promote" | "verify" | "audit" | "guard";
    consumer?: string;
    /** A rollout's wave (1-based), when the secret rolls out in waves. */
    wave?: number;
    /** A rollout's batch (1-based), when consumers share rollout resources (rollout.batch): one resource per batch. */
    batch?: number;
    dependsOn: string[];
}

export interface PlanInput {
    mode: Mode;
    consumers: { name: string }[];
    /** Canary waves (lib/waves.ts); default one wave. A rollback restores every consumer at once. */
    waves?: readonly WaveEntry[];
    /** Consumers per rollout resource (rollout.batch); default "auto" (lib/waves.ts batchSizeOf). */
    batch?: BatchSetting;
}

export function rotationPlan(input: PlanInput): PlanStep[] {
    const steps: PlanStep[] = [];
    const add = (id: string, phase: PlanStep["phase"], dependsOn: string[], consumer?: string, wave?: number, batch?: number) => {
        steps.push({ id, phase, dependsOn, ...(consumer ? { consumer } : {}), ...(wave ? { wave } : {}), ...(batch ? { batch } : {}) });
        return id;
    };
    // One step per consumer: deploy, reload, health and log check run in it, in that order.
    // Each wave starts once every consumer of the wave before it passed all four.
    // Batched, a wave's consumers are cut into batches in order; a batch never spans two waves.
    const size = batchSizeOf(input.consumers.length, input.batch);
    let batches = 0;
    const rollouts = (after: string, waves: readonly WaveEntry[]) => {
        const all: string[] = [];
        let previous = [after];
        const formed = formWaves(input.consumers, waves);
        formed.forEach((wave, i) => {
            const first = batches;
            if (size > 1) batches += Math.ceil(wave.length / size);
            const dependsOn = previous;
            previous = wave.map((c, k) =>
                add(
                    `rollout/${c.name}`,
                    "rollout",
                    dependsOn,
                    c.name,
                    formed.length > 1 ? i + 1 : undefined,
                    size > 1 ? first + Math.floor(k / size) + 1 : undefined,
                ),
            );
            all.push(...previous);
        });
        return all;
    };

    if (input.mode === "rollback") {
        // No pre-flight: a rollback restores every consumer it can reach at once; one that
        // refused to start because a host is down would keep all the others on the new secret.
        add("previous", "read-previous", []);
        const guard = add("guard", "guard", ["previous"]);
        // The previous generation's grant stays registered: were it dropped,
        // Pulumi would delete it and so withdraw the very secret being restored.
        const regrant = add("grant-previous", "grant", [guard]);
        const done = rollouts(regrant, ["100%"]);
        add("audit", "audit", done);
        return steps;
    }
    // The pre-flight is the rotation's only root: nothing is read, generated, staged or
    // granted before every consumer's host, the source and the store were found ready.
    const preflight = add("preflight", "preflight", []);
    add("previous", "read-previous", [preflight]);
    add("secret", "generate", [preflight]);
    // Staging waits for the read of the secret in use too: a store that cannot be read is not written.
    add("stage", "stage", ["secret", "previous"]);
    add("grant", "grant", ["stage", "previous"]);
    const verified = rollouts("grant", input.waves ?? ["100%"]);
    add("gate", "gate", verified);
    add("revoke", "revoke", ["gate"]);
    add("promote", "promote", ["revoke"]);
    // Every consumer's health after revocation is one step: it names each consumer that fails.
    const checks = [add("verify/source", "verify", ["promote"]), add("verify/consumers", "verify", ["promote"])];
    add("audit", "audit", checks);
    return steps;
}

/** Every step `id` waits for, directly or through others. */
export function transitiveDependencies(plan: PlanStep[], id: string): Set<string> {
    const byId = new Map(plan.map((s) => [s.id, s]));
    const seen = new Set<string>();
    const visit = (x: string) => {
        for (const d of byId.get(x)?.dependsOn ?? []) {
            if (!seen.has(d)) {
                seen.add(d);
                visit(d);
            }
        }
    };
    visit(id);
    return seen;
}

/** The plan's phases in the order an operator reads them (for stack outputs and docs). */
export function phaseOrder(plan: PlanStep[]): string[] {
    const out: string[] = [];
    for (const s of plan) if (!out.includes(s.phase)) out.push(s.phase);
    return out;
}

/**
 * Every resource name one secret's rotations register, for generations
 * 0..`upTo` (components/rotation.ts and its parts name them so): the
 * validation refuses two secrets of a stack that would share one.
 */
export function resourceNames(secret: string, consumers: string[], upTo: number): string[] {
    const fixed = [
        "preflight",
        "previous",
        "previous-read",
        "stage",
        "gate",
        "revoke",
        "promote",
        "verify",
        "verify-source",
        "verify-consumers",
        "audit",
        "rollback-guard",
    ];
    const names = [secret, ...fixed.map((f) => `${secret}-${f}`), ...consumers.map((c) => `${secret}-rollout-${c}`)];
    // Batches: at most one per consumer, whatever the batch size.
    for (let k = 1; k <= consumers.length; k++) names.push(batchResourceName(secret, k));
    for (let g = 0; g <= upTo; g++) names.push(`${secret}-g${g}`, `${secret}-g${g}-public-key`, `${secret}-grant-g${g}`);
    return names;
}

/** The step resource that rolls out each consumer of `plan` (its own, or its batch's), by consumer name. */
export function rolloutResourceNames(secret: string, plan: PlanStep[], generation: number, mode: Mode): Map<string, string> {
    return new Map(plan.filter((s) => s.phase === "rollout").map((s) => [s.consumer!, stepResourceName(secret, s, generation, mode)]));
}

/** The resource of a secret's `k`th rollout batch (1-based); "rollouts" keeps it apart from any consumer's `-rollout-<name>`. */
export const batchResourceName = (secret: string, k: number) => `${secret}-rollouts-${k}`;

/**
 * The name of the step resource (provider/types.ts STEP_TYPE) that realizes a plan
 * step of secret `secret` at generation `generation` (components/rotation.ts
 * and its parts name them so); the console maps engine events back to plan
 * steps with it. In a rollback the grant kept is the previous generation's.
 */
export function stepResourceName(secret: string, step: PlanStep, generation: number, mode: Mode): string {
    switch (step.phase) {
        case "preflight":
            return `${secret}-preflight`;
        case "read-previous":
            return `${secret}-previous-read`;
        case "generate":
            return `${secret}-g${generation}`;
        case "grant":
            return `${secret}-grant-g${mode === "rollback" ? generation - 1 : generation}`;
        case "rollout":
            return step.batch ? batchResourceName(secret, step.batch) : `${secret}-rollout-${step.consumer}`;
        case "guard":
            return `${secret}-rollback-guard`;
        case "verify":
            return `${secret}-${step.id.replace("/", "-")}`;
        default:
            return `${secret}-${step.phase}`;
    }
}
