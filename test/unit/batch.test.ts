// Rollout batches (rollout.batch): how a fleet is cut into batch resources
// (never across a wave, every consumer in exactly one), that the gate still
// waits for every batch, how the console reads a batch's events back per
// consumer, and the step provider running a real batch on this machine: a
// consumer that fails leaves the others recorded as done, and the next run
// deploys only the one not done.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { HOST_KEY, STEP, config, installRecordingMocks, settle } from "./harness";
import { Rotation } from "../../components/rotation";
import { batchResourceName, rotationPlan, stepResourceName, transitiveDependencies } from "../../lib/plan";
import { batchSizeOf } from "../../lib/waves";
import { RunTracker, batchErrors } from "../../cli/progress";
import { stepProvider } from "../../provider/stepProvider";
import { PartialBatchError } from "../../provider/batch";
import { STEP_TYPE } from "../../provider/types";

const named = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `c${i + 1}` }));

test("batch size: a resource per consumer up to 20, about 16 batches beyond, or as configured", () => {
    assert.deepEqual(
        [1, 20, 21, 50, 200, 1000].map((n) => batchSizeOf(n)),
        [1, 1, 2, 4, 13, 63],
    );
    assert.equal(batchSizeOf(50, 1), 1, "1: a resource per consumer at any size");
    assert.equal(batchSizeOf(5, 8), 8);
});

test("the plan: every consumer in exactly one batch, no batch across two waves, the gate after every one", () => {
    const plan = rotationPlan({ mode: "rotate", consumers: named(50), waves: [1, "100%"], batch: 4 });
    const rollouts = plan.filter((s) => s.phase === "rollout");
    assert.equal(rollouts.length, 50, "the plan still lists every consumer");
    assert.deepEqual(rollouts[0], { id: "rollout/c1", phase: "rollout", consumer: "c1", wave: 1, batch: 1, dependsOn: ["grant"] });
    const members = new Map<number, string[]>();
    for (const s of rollouts) members.set(s.batch!, [...(members.get(s.batch!) ?? []), s.consumer!]);
    assert.equal(members.size, 14, "wave 1: one batch of 1; wave 2: 49 in 13 batches of up to 4");
    for (const [k, cs] of members) {
        const waves = new Set(rollouts.filter((s) => s.batch === k).map((s) => s.wave));
        assert.equal(waves.size, 1, `batch ${k} lies in one wave`);
        assert.ok(cs.length <= 4);
    }
    const revokeWaits = transitiveDependencies(plan, "revoke");
    for (const s of rollouts) assert.ok(revokeWaits.has(s.id), `the revocation waits for ${s.consumer}`);
    assert.equal(stepResourceName("app", rollouts[49], 2, "rotate"), batchResourceName("app", 14));
    assert.equal(
        stepResourceName("app", rotationPlan({ mode: "rotate", consumers: named(3) }).find((s) => s.consumer === "c2")!, 2, "rotate"),
        "app-rollout-c2",
    );
});

test("registered resources: one step per batch holding its consumers, each batch after the grant, the gate after every batch", async () => {
    const registered = await installRecordingMocks();
    const cfg = config({ rollout: { batch: 2 } }, 5);
    new Rotation(cfg.secret.name, {
        context: { stack: "unit", config: cfg, consumerHostKeys: Object.fromEntries(cfg.consumers.map((c) => [c.name, HOST_KEY])) },
    });
    await settle();
    const steps = registered.filter((r) => r.type === STEP);
    const batches = steps.filter((r) => r.name.startsWith("app-redis-rollouts-")).sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(
        batches.map((b) => b.name),
        ["app-redis-rollouts-1", "app-redis-rollouts-2", "app-redis-rollouts-3"],
    );
    assert.equal(steps.filter((r) => r.name.startsWith("app-redis-rollout-")).length, 0, "no resource per consumer");
    assert.deepEqual(
        batches.map((b) => b.inputs.batch.map((e: { consumer: string }) => e.consumer)),
        [["web-1", "web-2"], ["web-3", "web-4"], ["web-5"]],
    );
    assert.equal(batches[0].inputs.op, "rollout-batch");
    for (const b of batches) {
        const used = new Set(b.inputs.batch.map((e: { rollout: { host: string } }) => e.rollout.host));
        assert.deepEqual(Object.keys(b.inputs.hosts).sort(), [...used].sort(), `${b.name} carries each of its hosts once, no other`);
    }
    const grant = steps.find((r) => r.name === "app-redis-grant-g2")!;
    const gate = steps.find((r) => r.name === "app-redis-gate")!;
    for (const b of batches) {
        assert.ok(b.dependencies.includes(grant.urn), `${b.name} waits for the grant`);
        assert.ok(gate.dependencies.includes(b.urn), `the gate waits for ${b.name}`);
    }
    assert.ok(!JSON.stringify(batches.map((b) => b.inputs.batch)).includes("S3cr3t"), "no secret in a batch's consumers");
});

test("the console reads a batch per consumer: the one its error names failed, the others are done", () => {
    const tracker = new RunTracker([{ name: "app", generation: 2, mode: "rotate", consumers: ["web-1", "web-10", "web-2"], after: [], batch: 3 }]);
    const urn = `urn:pulumi:dev::p::rotation:index:Rotation$${STEP_TYPE}::app-rollouts-1`;
    const meta = { urn, op: "update", type: STEP_TYPE };
    tracker.handle({ sequence: 1, timestamp: 0, resourcePreEvent: { metadata: meta } } as never);
    const rollouts = tracker.steps.filter((s) => s.phase === "rollout");
    assert.deepEqual(
        rollouts.map((s) => s.outcome),
        ["running", "running", "running"],
    );
    const message =
        "app: roll out g2, batch 1 of 1 (3 consumers: web-1 .. web-2): 1 of 3 consumers failed; the other 2 hold it and are not deployed again on resume\n" +
        "app → consumer web-1: reload: exited with code 1 on root@10.0.0.1:22: refused";
    tracker.handle({ sequence: 2, timestamp: 0, diagnosticEvent: { message, severity: "error", urn } } as never);
    tracker.handle({ sequence: 3, timestamp: 0, resOpFailedEvent: { metadata: meta } } as never);
    const by = Object.fromEntries(rollouts.map((s) => [s.consumer, s]));
    assert.equal(by["web-1"].outcome, "failed");
    assert.match(by["web-1"].error!, /^app → consumer web-1: reload: exited with code 1/);
    assert.equal(by["web-10"].outcome, "ok", "web-10 is not web-1");
    assert.equal(by["web-2"].outcome, "ok");
    assert.equal(batchErrors("a batch-wide failure with no consumer named", rollouts).size, 0);
});

const asSecret = (value: unknown) => ({ [specialSigKey]: specialSecretSig, value });

/** A batch of three consumers on this machine: config files in `dir`, a reload that logs its consumer, web-2's reload failing while `dir/refuse` exists. */
function batchInputs(dir: string, generation: number): Record<string, unknown> {
    const entry = (name: string) => ({
        consumer: name,
        rollout: {
            host: "h0",
            label: `app → consumer ${name}`,
            health: { command: `grep -q "^PASSWORD=" ${dir}/${name}.env` },
            retries: 0,
            retryDelaySeconds: 0,
            timeoutSeconds: 10,
            generation,
            configPath: `${dir}/${name}.env`,
            write: { format: "env-line", key: "PASSWORD" },
            reload: `echo ${name} >> ${dir}/reloads; [ ${name} != web-2 ] || [ ! -e ${dir}/refuse ]`,
        },
    });
    return {
        op: "rollout-batch",
        title: `app: roll out g${generation}, batch 1 of 1`,
        triggers: [generation, "rotate"],
        attempts: 1,
        retryDelaySeconds: 0,
        timeoutSeconds: 10,
        stdin: asSecret(`Batch-Secret-g${generation}\0`),
        hosts: { h0: { kind: "local" } },
        batch: ["web-1", "web-2", "web-3"].map(entry),
        audit: { path: `${dir}/audit.log`, record: { stack: "unit", secret: "app", generation, mode: "rotate", phase: "consumer-verified" } },
    };
}

test("the step provider runs a batch: one consumer fails, the others are kept as done; the next run deploys only that one", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "batch-"));
    for (const c of ["web-1", "web-2", "web-3"]) fs.writeFileSync(path.join(dir, `${c}.env`), "PASSWORD=old-value\n");
    fs.writeFileSync(path.join(dir, "refuse"), "");
    const urn = `urn:pulumi:unit::p::${STEP_TYPE}::app-rollouts-1`;
    const inputs = batchInputs(dir, 2);
    const err = await stepProvider.create!(urn, inputs).then(
        () => assert.fail("the batch should fail"),
        (e: unknown) => e,
    );
    assert.ok(err instanceof PartialBatchError, String(err));
    assert.match(err.message, /1 of 3 consumers failed; the other 2 hold it/);
    assert.match(err.message, /\napp → consumer web-2: reload: exited with code 1/);
    assert.ok(!err.message.includes("Batch-Secret"), "the error holds no secret");
    assert.deepEqual(err.properties.done, ["web-1", "web-3"]);
    assert.ok(!JSON.stringify(err.properties).includes("Batch-Secret"), "the recorded state holds no secret");
    const reloads = () => fs.readFileSync(path.join(dir, "reloads"), "utf8").trim().split("\n").sort();
    assert.deepEqual(reloads(), ["web-1", "web-2", "web-3"]);
    const audit = fs
        .readFileSync(path.join(dir, "audit.log"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
    assert.deepEqual(audit.map((l) => `${l.consumer} ${l.outcome}`).sort(), ["web-1 ok", "web-2 failed", "web-3 ok"]);

    // The next run at the same generation: the diff sees a consumer not done, the update runs only it.
    fs.rmSync(path.join(dir, "refuse"));
    const olds = err.properties;
    assert.deepEqual(await stepProvider.diff!(err.id, urn, olds, inputs), { changes: true });
    const { outs } = await stepProvider.update!(err.id, urn, olds, inputs);
    assert.deepEqual(outs!.done, ["web-1", "web-2", "web-3"]);
    assert.deepEqual(reloads(), ["web-1", "web-2", "web-2", "web-3"], "only web-2 ran again");
    for (const c of ["web-1", "web-2", "web-3"]) assert.equal(fs.readFileSync(path.join(dir, `${c}.env`), "utf8"), "PASSWORD=Batch-Secret-g2\n");
    assert.deepEqual(await stepProvider.diff!(err.id, urn, outs!, inputs), { changes: false }, "all done: nothing to run");

    // A new generation runs every consumer again.
    const g3 = batchInputs(dir, 3);
    assert.deepEqual(await stepProvider.diff!(err.id, urn, outs!, g3), { changes: true });
    await stepProvider.update!(err.id, urn, outs!, g3);
    assert.equal(reloads().length, 7);
    fs.rmSync(dir, { recursive: true });
});
