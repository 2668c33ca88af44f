// Assertions shared by the end-to-end scenarios: what "the rotation completed"
// and "revoke only after verify" mean, checked against the real engine's event
// stream, the real source, the consumers, the store and the audit log.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import {
    consumerState,
    hosts,
    redisAuthOk,
    rolloutResources,
    ROOT,
    type RunResult,
    sha256,
    stepTimeline,
    storeValue,
    urnName,
    type Workspace,
} from "../../lab/driver";
import { unpackStep } from "../../provider/wire";

/** Every secret value a scenario handled, for the final leak scan. */
export const secretsSeen = new Set<string>();

export function remember(...values: string[]): void {
    for (const v of values) if (v) secretsSeen.add(v);
}

/** A Redis rotation's result at the source: the store's new password accepted, `old` rejected. Returns the new one (remembered for the leak scan). */
export function assertRedisMoved(secret: string, old: string): string {
    const fresh = storeValue(secret);
    remember(fresh);
    assert.equal(redisAuthOk(fresh), true);
    assert.equal(redisAuthOk(old), false);
    return fresh;
}

/** Every lab host's Redis consumer app holds `value` (by its fingerprint) and is healthy with it. */
export async function consumersHold(value: string): Promise<void> {
    for (const h of hosts()) {
        const s = await consumerState(h, "redis");
        assert.equal(s.fingerprint, sha256(value), `${h.name} holds the expected secret`);
        assert.ok(s.healthy, `${h.name} is healthy`);
    }
}

export function assertSucceeded(r: RunResult, what: string): void {
    assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
}

/**
 * From the event stream: each consumer's rollout (its deploy, reload, health
 * and log check run inside that one step) ended before the revocation started.
 */
export function assertRevokeAfterEveryConsumer(r: RunResult, secret: string, consumers: string[]): void {
    const revoke = stepTimeline(r.events, `${secret}-revoke`);
    assert.ok(revoke.start !== undefined, "the revocation ran in this update");
    // The pre-flight came first: its check of every consumer ended before anything was staged.
    const preflight = stepTimeline(r.events, `${secret}-preflight`);
    const stage = stepTimeline(r.events, `${secret}-stage`);
    assert.ok(
        preflight.end !== undefined && stage.start !== undefined && preflight.end < stage.start,
        `the pre-flight ended (seq ${preflight.end}) before staging started (seq ${stage.start})`,
    );
    // A batched consumer's rollout is its batch's step (lib/plan.ts).
    for (const [c, resource] of rolloutResources(secret, consumers)) {
        const t = stepTimeline(r.events, resource);
        assert.ok(t.end !== undefined, `${c}'s rollout (${resource}) finished in this update`);
        assert.ok(t.end! < revoke.start!, `${c}'s rollout (${resource}) finished (seq ${t.end}) before the revocation started (seq ${revoke.start})`);
    }
    const promote = stepTimeline(r.events, `${secret}-promote`);
    assert.ok(promote.start! > stepTimeline(r.events, `${secret}-revoke`).end!, "promotion started after the revocation ended");
}

/** From `pulumi preview --json`: the plan lists every rollout (a batch, every consumer of it), the gate and the revocation. */
export function assertPreviewPlan(previewJson: string, secret: string, consumers: string[], generation: number): void {
    const plan = JSON.parse(previewJson) as { steps: { op: string; urn: string; newState?: { inputs?: { batch?: { consumer: string }[] } } }[] };
    const planned = new Set(plan.steps.filter((s) => s.op !== "same").map((s) => urnName(s.urn)));
    const rollouts = rolloutResources(secret, consumers);
    // A batch's consumers as the preview shows them: each by name in its packed list (provider/wire.ts).
    const inBatches = plan.steps.flatMap((s) => (unpackStep(s.newState?.inputs ?? {}).batch ?? []).map((e) => `${urnName(s.urn)}/${e.consumer}`));
    for (const [c, resource] of rollouts)
        if (resource !== `${secret}-rollout-${c}`) assert.ok(inBatches.includes(`${resource}/${c}`), `preview lists consumer ${c} in ${resource}`);
    const expect = [
        `${secret}-preflight`,
        `${secret}-g${generation}`,
        `${secret}-stage`,
        `${secret}-grant-g${generation}`,
        ...new Set(rollouts.values()),
        `${secret}-gate`,
        `${secret}-revoke`,
        `${secret}-promote`,
        `${secret}-verify-source`,
        `${secret}-verify-consumers`,
        `${secret}-audit`,
    ];
    for (const e of expect) assert.ok(planned.has(e), `preview plans ${e}; planned: ${[...planned].join(", ")}`);
}

/** The audit log holds this generation's phases in order, each "ok", and never a secret. */
export function assertAudit(ws: Workspace, secret: string, generation: number, consumers: number): void {
    const lines = ws.auditLines().filter((l) => l.secret === secret && l.generation === generation && l.mode === "rotate");
    const phases = lines.filter((l) => l.outcome === "ok" && !l.consumer).map((l) => l.phase);
    for (const p of ["generated", "staged", "granted", "rolled-out", "revoked", "promoted", "verified", "completed"]) {
        assert.ok(phases.includes(p), `audit has "${p}" for ${secret} g${generation}; has ${phases.join(",")}`);
    }
    const idx = (p: string) => phases.lastIndexOf(p);
    assert.ok(idx("rolled-out") < idx("revoked") && idx("revoked") < idx("promoted") && idx("promoted") < idx("completed"), "audit phases in order");
    const completed = lines.find((l) => l.phase === "completed")!;
    for (const k of ["time", "stack", "reason", "operator"]) assert.ok(completed[k], `audit record has ${k}`);
    assert.equal(completed.consumersConfigured, consumers);
    // The closing line counts the consumers moved by the run that completed it (a resume moves only those left).
    assert.ok(
        typeof completed.consumers === "number" && completed.consumers >= 0 && completed.consumers <= consumers,
        `completed.consumers ${completed.consumers}`,
    );
}

/** `bin/rotate audit verify` finds the workspace's audit log one intact hash chain, every line counted. */
export function assertAuditChain(ws: Workspace): void {
    const r = spawnSync(path.join(ROOT, "bin", "rotate"), ["audit", "verify", "--log", ws.auditLog], { cwd: ROOT, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${ws.auditLines().length} lines, chain intact`));
}
