// Drift on the real lab: `bin/rotate check` says which secret each consumer
// holds without reading it back (an HMAC under a fresh nonce), and the gate
// refuses to revoke while a consumer was reverted behind the rotation's back.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { rewriteConfig } from "../../writers";
import { remember } from "./checks";
import { consumerEntry, fleetOf, hosts, labCtl, redisAuthOk, redisStack, setupFleet, stackConfig, storeValue, urnName, Workspace } from "../../lab/driver";
import { scanForLeaks } from "./leaks";
import { STEP_TYPE } from "../../provider/types";

const SECRET = "app-redis";
const WRITE = { format: "yaml-key" as const, key: "redis.password" };
let ws: Workspace;
const configFile = (i: number) => path.join(hosts()[i].etcDir, "redis.yaml");
/** What an operator restoring a backup or editing by hand does: the file now holds `value`. */
const overwrite = (i: number, value: string) => fs.writeFileSync(configFile(i), rewriteConfig(WRITE, fs.readFileSync(configFile(i), "utf8"), value));

type Report = {
    ok: boolean;
    seconds: number;
    consumers: { consumer: string; holds: string; detail?: string }[];
    sources: { previousAccepted?: boolean; currentAccepted?: boolean }[];
};
const checkJson = async (): Promise<{ code: number; report: Report; stdout: string }> => {
    const r = await ws.rotateSampled(["check", "--json"]);
    return { code: r.code, report: JSON.parse(r.stdout), stdout: r.stdout };
};
const holds = (r: Report) => Object.fromEntries(r.consumers.map((c) => [c.consumer, c.holds]));

before(async () => {
    labCtl("up", "--reset");
    ws = new Workspace("drift");
    ws.setConfig(redisStack(0));
    remember(storeValue(SECRET));
    const r = ws.rotate(["start", "--secret", SECRET, "--yes"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    remember(storeValue(SECRET));
});

after(() => {
    labCtl("start-host", "host3");
});

test("after a rotation every consumer holds current and the source rejects the previous; a reverted config is named previous (exit 1), garbage unknown, a stopped host unreachable", async () => {
    const fresh = storeValue(SECRET);
    const previous = storeValue(SECRET, "previous");
    assert.notEqual(previous, fresh, "the file store keeps the secret the promotion replaced");
    const all = await checkJson();
    assert.equal(all.code, 0, all.stdout);
    assert.deepEqual(holds(all.report), { "redis-host1": "current", "redis-host2": "current", "redis-host3": "current" });
    assert.deepEqual([all.report.sources[0].previousAccepted, all.report.sources[0].currentAccepted], [false, true]);
    console.log(`# check over the lab's ${all.report.consumers.length} consumers: ${all.report.seconds.toFixed(2)}s`);

    overwrite(1, previous);
    overwrite(2, "not-any-secret-we-know");
    const drift = await checkJson();
    assert.equal(drift.code, 1, "drift is exit 1");
    assert.deepEqual(holds(drift.report), { "redis-host1": "current", "redis-host2": "previous", "redis-host3": "unknown" });
    const text = ws.rotate(["check"]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /app-redis redis-host2 +previous/);
    assert.match(text.stdout, /rotate: check: drift: app-redis redis-host2 previous, app-redis redis-host3 unknown/);
    const status = ws.rotate(["status"]);
    assert.match(status.stdout, /last check .*: drift: app-redis redis-host2 previous, app-redis redis-host3 unknown/, "status shows the last check");

    labCtl("stop-host", "host3");
    const down = await checkJson();
    labCtl("start-host", "host3");
    assert.equal(down.code, 1);
    assert.equal(holds(down.report)["redis-host3"], "unreachable");
    assert.match(down.report.consumers.find((c) => c.consumer === "redis-host3")!.detail!, /connect|refused|timed out|No route/i);
    overwrite(1, fresh);
    overwrite(2, fresh);
    assert.equal((await checkJson()).code, 0, "back on the current secret: exit 0");
});

test("the gate refuses to revoke while a consumer was reverted between its rollout and the gate, and names it", async () => {
    const old = storeValue(SECRET);
    ws.setConfig({ ...redisStack(2), rollout: { waves: [1, "100%"] } });
    let reverted = false;
    const up = await ws.pulumi(["up", "--yes", "--skip-preview"], {
        onEvent: (e) => {
            // Consumer 1 (wave 1) is done; while wave 2 rolls out, its config goes back to the old secret.
            const done = e.resOutputsEvent?.metadata;
            if (!reverted && done && done.type === STEP_TYPE && urnName(done.urn) === `${SECRET}-rollout-redis-host1`) {
                overwrite(0, old);
                reverted = true;
            }
        },
    });
    assert.ok(reverted, "the config was reverted during the run");
    assert.notEqual(up.code, 0, "the update fails at the gate");
    assert.match(
        up.stdout + up.stderr,
        /app-redis: gate, all 3 consumers verified on g2: 1 of 3 consumers are not on the new secret, so nothing is revoked: app-redis → consumer redis-host1 holds the previous secret/,
    );
    assert.equal(redisAuthOk(old), true, "the old secret still works: nothing was revoked");
    assert.ok(!ws.auditLines().some((l) => l.generation === 2 && l.phase === "revoked"), "no revocation in the audit log");
    assert.ok(
        ws.auditLines().some((l) => l.generation === 2 && l.phase === "rolled-out" && l.outcome === "failed"),
        "the gate's failure is audited",
    );
    assert.match(
        up.stdout + up.stderr,
        /Deploy the new secret to redis-host1 again and let the gate ask again: bin\/rotate resume --stack e2e --secret app-redis --redeploy redis-host1 --yes/,
        "the way forward is named, with the stack",
    );
    const fresh = fs.readFileSync(path.join(hosts()[1].etcDir, "redis.yaml"), "utf8").match(/password: "([^"]+)"/)![1];
    remember(fresh);

    // The way forward: deploy to the reverted consumer again; the gate asks again and the rotation completes.
    const plain = ws.rotate(["resume", "--secret", SECRET, "--yes"]);
    assert.equal(plain.code, 1, "a resume without --redeploy meets the same refusal");
    const fixed = ws.rotate(["resume", "--secret", SECRET, "--redeploy", "redis-host1", "--yes"]);
    assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr);
    assert.equal(redisAuthOk(old), false, "the old secret is revoked now");
    assert.equal(redisAuthOk(fresh), true);
    assert.equal((await checkJson()).code, 0, "every consumer holds the current secret");
});

test("check over 50 consumers: time", async () => {
    const f = fleetOf(50);
    setupFleet(f);
    const big = new Workspace("drift-50");
    big.setConfig({ ...stackConfig(f, 0), consumers: Array.from({ length: 50 }, (_, i) => consumerEntry(f, i)) });
    const r = await big.rotateSampled(["check", "--json"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assert.equal(report.consumers.length, 50);
    assert.ok(report.consumers.every((c) => c.holds === "current"));
    console.log(`# check over 50 consumers: ${report.seconds.toFixed(2)}s (bin/rotate check wall ${r.seconds.toFixed(1)}s)`);
});

test("drift: no secret leaked (check output, JSON, argv of every process during checks)", () => {
    scanForLeaks(ws);
});
