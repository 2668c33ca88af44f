// Redis password rotation through the real Pulumi engine against the lab:
// happy path, no-op, failure before revoke and resume, rollback, refused
// rollback, and a kill -9 mid-rollout.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { assertAudit, assertAuditChain, assertPreviewPlan, assertRevokeAfterEveryConsumer, assertSucceeded, consumersHold, remember } from "./checks";
import {
    changedSteps,
    consumerState,
    hosts,
    labCtl,
    redisAuthOk,
    redisStack,
    ROOT,
    stepTimeline,
    storeHas,
    storeValue,
    urnName,
    Workspace,
} from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const SECRET = "app-redis";
const consumers = () => hosts().map((h) => `redis-${h.name}`);
let ws: Workspace;
let generation = 0;

async function rotate(): Promise<{ old: string; fresh: string }> {
    const old = storeValue(SECRET);
    generation++;
    ws.patchConfig({ generation });
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assertSucceeded(r, `rotation to g${generation}`);
    const fresh = storeValue(SECRET);
    remember(old, fresh);
    assert.notEqual(fresh, old);
    return { old, fresh };
}

before(() => {
    labCtl("up", "--reset");
    ws = new Workspace("redis");
    ws.setConfig(redisStack(0));
});

after(() => {
    for (const h of hosts()) labCtl("fail-health", h.name, "off");
});

test("happy path: preview shows the dual-active plan, up revokes only after every consumer is verified", async () => {
    const old = storeValue(SECRET);
    remember(old);
    generation = 1;
    ws.patchConfig({ generation });
    const preview = await ws.pulumi(["preview", "--json"]);
    assertSucceeded(preview, "preview");
    assertPreviewPlan(preview.stdout, SECRET, consumers(), 1);

    const up = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assertSucceeded(up, "up");
    console.log(`# redis rotation g1 across ${consumers().length} consumers: ${up.seconds.toFixed(1)}s wall`);
    assertRevokeAfterEveryConsumer(up, SECRET, consumers());

    const fresh = storeValue(SECRET);
    remember(fresh);
    assert.notEqual(fresh, old);
    assert.equal(storeHas(SECRET, "staged"), false, "no staged copy is left");
    assert.equal(fs.statSync(path.join(ROOT, ".lab/store", SECRET)).mode & 0o777, 0o600);
    assert.equal(redisAuthOk(fresh), true, "the new password is accepted by Redis");
    assert.equal(redisAuthOk(old), false, "the old password is rejected by Redis");
    await consumersHold(fresh);
    assertAudit(ws, SECRET, 1, 3);
    for (const h of hosts()) assert.ok(fs.existsSync(path.join(h.etcDir, "redis.yaml.bak")), `${h.name} has a .bak`);
});

test("no-op: a second up with no generation change touches no consumer", async () => {
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(r, "no-op up");
    assert.deepEqual(changedSteps(r.events), []);
    assert.ok(
        r.events.some((e) => e.resourcePreEvent?.metadata.op === "same"),
        "the event stream saw the steps (as unchanged)",
    );
});

test("failure before revoke: consumer 2 fails its health check; nothing is revoked; fixing it and re-running completes", async () => {
    const old = storeValue(SECRET);
    const failing = hosts()[1];
    labCtl("fail-health", failing.name, "on");
    generation++;
    ws.patchConfig({ generation });
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"]).finally(() => labCtl("fail-health", failing.name, "off"));
    assert.notEqual(r.code, 0, "up fails");
    assert.match(r.stdout + r.stderr, new RegExp(`consumer redis-${failing.name}: health check`), "the failure names the consumer");
    assert.equal(stepTimeline(r.events, `${SECRET}-revoke`).start, undefined, "no revocation started");
    assert.equal(stepTimeline(r.events, `${SECRET}-gate`).start, undefined, "the gate did not open");
    assert.equal(storeValue(SECRET), old, "the store's current value is unchanged");
    assert.equal(redisAuthOk(old), true, "the old password still works at the source");
    const staged = storeValue(SECRET, "staged");
    remember(staged);
    assert.equal(redisAuthOk(staged), true, "the new password works too (dual-active)");
    for (const h of hosts().filter((x) => x.name !== failing.name)) {
        const s = await consumerState(h, "redis");
        assert.ok(s.healthy, `${h.name} stays healthy during the dual-active window`);
    }
    assert.ok(
        ws.auditLines().some((l) => l.phase === "consumer-verified" && l.outcome === "failed" && l.consumer === `redis-${failing.name}`),
        "the audit log records the failure",
    );

    const again = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(again, "resume after the fix");
    assert.equal(storeValue(SECRET), staged, "the staged secret became current");
    assert.equal(redisAuthOk(old), false);
    assert.equal(redisAuthOk(staged), true);
    await consumersHold(staged);
    assertAudit(ws, SECRET, generation, 3);
});

test("unreachable consumer host: the failure names the consumer and the host; nothing is revoked; resume completes", async () => {
    const old = storeValue(SECRET);
    const down = hosts()[0];
    labCtl("stop-host", down.name);
    generation++;
    ws.patchConfig({ generation });
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"]).finally(() => labCtl("start-host", down.name));
    assert.notEqual(r.code, 0);
    // The pre-flight step finds it before anything of the rotation runs.
    assert.match(r.stdout + r.stderr, new RegExp(`${SECRET} consumer redis-${down.name}: cannot run the checks on root@${down.ip.replace(/\./g, "\\.")}:22`));
    assert.equal(stepTimeline(r.events, `${SECRET}-g${generation}`).start, undefined, "nothing was generated");
    assert.equal(storeHas(SECRET, "staged"), false, "nothing was staged");
    assert.equal(redisAuthOk(old), true, "the old password still works");
    const again = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(again, "resume once the host is back");
    remember(storeValue(SECRET));
    assert.equal(redisAuthOk(old), false);
    await consumersHold(storeValue(SECRET));
});

test("a consumer whose host offers another key than the pinned one is refused, with the product's own message; nothing is revoked", async () => {
    const old = storeValue(SECRET);
    const [first, second] = hosts();
    const consumersOf = (cfg: Record<string, unknown>) => cfg.consumers as Record<string, unknown>[];
    const good = consumersOf(redisStack(0));
    const wrong = good.map((c, i) => (i === 0 ? { ...c, hostKeyFile: String(c.hostKeyFile).replace(`/${first.name}/`, `/${second.name}/`) } : c));
    generation++;
    ws.patchConfig({ generation, consumers: wrong });
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    ws.patchConfig({ consumers: good });
    assert.notEqual(r.code, 0);
    const fp = (h: typeof first) =>
        spawnSync("ssh-keygen", ["-lf", path.join(ROOT, ".lab", "hosts", h.name, "ssh_host_ed25519_key.pub")], { encoding: "utf8" }).stdout.split(" ")[1];
    const out = r.stdout + r.stderr;
    assert.ok(
        out.includes(`consumer redis-${first.name}`) &&
            out.includes(`refused: ${first.ip}:22 offered host key ${fp(first)} but ssh-ed25519 ${fp(second)} is pinned`),
        out.slice(-1500),
    );
    assert.doesNotMatch(out, /ssh-keygen -f|remove with/, "no advice to drop the pin");
    assert.equal(stepTimeline(r.events, `${SECRET}-g${generation}`).start, undefined, "the pre-flight found it: nothing was generated");
    assert.equal(redisAuthOk(old), true, "the old password still works");
    const again = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(again, "resume with the right pin");
    remember(storeValue(SECRET));
    await consumersHold(storeValue(SECRET));
});

test("rollback before revoke restores every consumer and withdraws the new secret; after revoke it is refused", async () => {
    const old = storeValue(SECRET);
    const failing = hosts()[2];
    labCtl("fail-health", failing.name, "on");
    generation++;
    ws.patchConfig({ generation });
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"]).finally(() => labCtl("fail-health", failing.name, "off"));
    assert.notEqual(r.code, 0);
    const staged = storeValue(SECRET, "staged");
    remember(staged);

    ws.patchConfig({ mode: "rollback" });
    const rb = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(rb, "rollback");
    await consumersHold(old);
    assert.equal(redisAuthOk(old), true, "the old password works");
    assert.equal(redisAuthOk(staged), false, "the new password was withdrawn at the source");
    assert.equal(storeHas(SECRET, "staged"), false, "the staged copy was removed");
    assert.equal(storeValue(SECRET), old);
    assert.ok(ws.auditLines().some((l) => l.phase === "rolled-back" && l.outcome === "ok" && l.generation === generation));
    assert.ok(
        ws.auditLines().some((l) => l.phase === "withdrawn" && l.outcome === "ok" && l.generation === generation),
        "the withdrawal of the new grant has its own audit line",
    );

    // Forward again, then try to roll that completed rotation back.
    ws.patchConfig({ mode: "rotate" });
    const { fresh } = await rotate();
    ws.patchConfig({ mode: "rollback" });
    const refused = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(refused.code, 0, "rollback after revoke fails");
    assert.match(refused.stdout + refused.stderr, /rollback of app-redis generation \d+ refused: the revocation of the previous secret has already started/);
    assert.deepEqual(changedSteps(refused.events), [], "the refused rollback changed nothing");
    await consumersHold(fresh);
    assert.equal(redisAuthOk(fresh), true);
    ws.patchConfig({ mode: "rotate" });
});

test("killed mid-rollout: kill -9 after a consumer was deployed; unlock and up again completes, every consumer has a .bak", async () => {
    const old = storeValue(SECRET);
    generation++;
    ws.patchConfig({ generation });
    let killedAt: string | undefined;
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"], {
        onEvent: (e, child) => {
            const m = e.resOutputsEvent?.metadata;
            if (!killedAt && m && urnName(m.urn).startsWith(`${SECRET}-rollout-`) && m.op !== "same") {
                killedAt = urnName(m.urn);
                process.kill(-child.pid!, "SIGKILL");
            }
        },
    });
    assert.ok(killedAt, "the engine was killed after a consumer's rollout finished");
    assert.notEqual(r.code, 0);
    const staged = storeValue(SECRET, "staged");
    remember(staged);

    const locked = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(locked.code, 0, "the stale lock blocks the next run");
    assert.match(locked.stdout + locked.stderr, /locked/);
    const unlock = spawnSync(path.join(ROOT, "bin", "rotate"), ["unlock", "--stack", ws.stack], { cwd: ROOT, env: ws.env, encoding: "utf8" });
    assert.equal(unlock.status, 0, unlock.stderr);
    assert.match(unlock.stdout, /removed the stale lock/);

    const again = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(again, "up after the kill");
    const fresh = storeValue(SECRET);
    assert.equal(fresh, staged, "the rotation finished with the secret staged before the kill");
    assert.equal(redisAuthOk(old), false);
    await consumersHold(fresh);
    for (const h of hosts()) assert.ok(fs.existsSync(path.join(h.etcDir, "redis.yaml.bak")), `${h.name} has a .bak`);
});

test("the audit log of every run above is one intact hash chain", () => assertAuditChain(ws));

test("no secret leaked anywhere in this file's runs", () => {
    scanForLeaks(ws);
});
