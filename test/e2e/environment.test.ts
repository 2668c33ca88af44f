// One stack, one environment: the Redis password and the PostgreSQL login
// rotate in the same `up`; a failing Redis consumer stops Redis before its
// revocation while PostgreSQL completes in the same run; resume per secret
// through bin/rotate; `--due` picks exactly the due secrets.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { assertAudit, assertRevokeAfterEveryConsumer, assertSucceeded, remember } from "./checks";
import {
    changedSteps,
    consumerState,
    hosts,
    lab,
    labCtl,
    pgLoginOk,
    postgresStack,
    redisAuthOk,
    redisStack,
    ROOT,
    sha256,
    sshKeyStack,
    stepTimeline,
    storeHas,
    storeValue,
    Workspace,
} from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const REDIS = "app-redis";
const PG = "app-pg";
const KEY = "app-deploy-key";
let ws: Workspace;
const redisConsumers = () => hosts().map((h) => `redis-${h.name}`);
const pgConsumers = () => [...hosts().map((h) => `pg-${h.name}`), "pgbouncer-host3"];

before(() => {
    labCtl("up", "--reset");
    ws = new Workspace("environment");
    // Redis uses the random generator, drawn in the step provider (no @pulumi/random plugin).
    const redisSecret = { ...(redisStack(0).secret as object), schedule: "90d", generator: { kind: "random", length: 40, special: true } };
    ws.setSecrets([
        { ...redisStack(0), secret: redisSecret },
        { ...postgresStack(0), secret: { ...(postgresStack(0).secret as object), schedule: "90d" } },
    ]);
});

after(() => {
    for (const h of hosts()) labCtl("fail-health", h.name, "off");
});

test("one up rotates the Redis and the PostgreSQL secret together, each revoked only after its own consumers", async () => {
    const oldRedis = storeValue(REDIS);
    const oldPg = storeValue(PG);
    remember(oldRedis, oldPg);
    const idle = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(idle, "up at generation 0");
    assert.deepEqual(changedSteps(idle.events), [], "generation 0 registers nothing that runs");

    ws.patchSecret(REDIS, { generation: 1 });
    ws.patchSecret(PG, { generation: 1 });
    const up = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assertSucceeded(up, "both rotations");
    console.log(`# redis (3 consumers) + postgres (4 consumers) in one up: ${up.seconds.toFixed(1)}s wall`);
    assertRevokeAfterEveryConsumer(up, REDIS, redisConsumers());
    assertRevokeAfterEveryConsumer(up, PG, pgConsumers());
    const [newRedis, newPg] = [storeValue(REDIS), storeValue(PG)];
    remember(newRedis, newPg);
    assert.match(newRedis, /^[A-Za-z0-9!#%+,\-.:=@^_~]{40}$/, "the random generator's value: 40 characters of the requested classes");
    assert.match(newRedis, /[!#%+,\-.:=@^_~]/, "with a special character, as requested");
    assert.equal(redisAuthOk(oldRedis), false);
    assert.equal(redisAuthOk(newRedis), true);
    assert.equal(pgLoginOk(lab().postgres.initialLogin, oldPg), false, "the old login is rejected");
    assert.equal(pgLoginOk("app_g1", newPg), true, "the new login is accepted");
    assertAudit(ws, REDIS, 1, 3);
    assertAudit(ws, PG, 1, 4);
});

test("a failing Redis consumer stops Redis before its revocation; PostgreSQL completes in the same run; resume --secret finishes Redis", async () => {
    const oldRedis = storeValue(REDIS);
    const oldPg = storeValue(PG);
    const redis = redisStack(0) as { consumers: Record<string, unknown>[] };
    const broken = redis.consumers.map((c, i) =>
        i === 1 ? { ...c, health: { command: "echo 'simulated: the service did not come back' >&2; exit 1" }, retries: 1 } : c,
    );
    ws.patchSecret(REDIS, { generation: 2, consumers: broken });
    ws.patchSecret(PG, { generation: 2 });
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assert.notEqual(r.code, 0, "the run ends non-zero");
    const failing = `redis-${hosts()[1].name}`;
    assert.match(r.stdout + r.stderr, new RegExp(`${REDIS} → consumer ${failing}: health check`), "the failure names the secret and the consumer");

    // PostgreSQL: completed in the same run.
    assertRevokeAfterEveryConsumer(r, PG, pgConsumers());
    const newPg = storeValue(PG);
    remember(newPg);
    assert.notEqual(newPg, oldPg);
    assert.equal(pgLoginOk("app_g1", oldPg), false, "PostgreSQL: the old login is rejected");
    assert.equal(pgLoginOk("app_g2", newPg), true, "PostgreSQL: the new login is accepted");
    assertAudit(ws, PG, 2, 4);

    // Redis: stopped before its gate; old and new both work; the store is unchanged; its old generation's grant kept.
    assert.equal(stepTimeline(r.events, `${REDIS}-gate`).start, undefined, "Redis: the gate did not open");
    assert.equal(stepTimeline(r.events, `${REDIS}-revoke`).start, undefined, "Redis: nothing revoked");
    assert.equal(storeValue(REDIS), oldRedis, "Redis: the store's current value is unchanged");
    const staged = storeValue(REDIS, "staged");
    remember(staged);
    assert.equal(redisAuthOk(oldRedis), true, "Redis: the old password still works");
    assert.equal(redisAuthOk(staged), true, "Redis: the new one works too (dual-active)");
    assert.ok(
        !ws.auditLines().some((l) => l.secret === REDIS && l.generation === 1 && l.phase === "withdrawn"),
        "Redis: generation 1's grant was not taken back",
    );
    for (const h of hosts()) assert.ok((await consumerState(h, "redis")).healthy, `${h.name}'s Redis consumer stays healthy`);

    // Fix the consumer, resume through the CLI for that secret.
    ws.patchSecret(REDIS, { consumers: redis.consumers });
    const dry = ws.rotate(["resume", "--secret", REDIS]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /nothing was changed/);
    const resumed = ws.rotate(["resume", "--secret", REDIS, "--yes"]);
    assert.equal(resumed.code, 0, `resume failed:\n${resumed.stdout.slice(-3000)}\n${resumed.stderr}`);
    assert.equal(storeValue(REDIS), staged, "Redis: the staged secret became current");
    assert.equal(redisAuthOk(oldRedis), false);
    assert.equal(redisAuthOk(staged), true);
    for (const h of hosts()) assert.equal((await consumerState(h, "redis")).fingerprint, sha256(staged));
    assertAudit(ws, REDIS, 2, 3);
    assert.ok(
        ws.auditLines().some((l) => l.secret === REDIS && l.generation === 1 && l.phase === "withdrawn" && l.outcome === "ok"),
        "Redis: once completed, generation 1's grant was taken back",
    );
    assert.equal(storeHas(REDIS, "staged"), false);
});

test("a secret that fails before its grant keeps its previous generation live: nothing of it is taken back at the end of the run", async () => {
    // The generator fails, so nothing of app-pg g3 runs; the engine (continue-on-error) still
    // deletes what the program no longer registers, app-pg's g2 grant among it: the step
    // provider refuses, because no rotation of app-pg past g2 has completed.
    const current = storeValue(PG);
    const pg = postgresStack(0) as { secret: Record<string, unknown> };
    ws.patchSecret(PG, {
        generation: 3,
        secret: { ...pg.secret, schedule: "90d", generator: { kind: "command", command: "echo 'simulated: generator broken' >&2; exit 1" } },
    });
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /generator broken/);
    assert.match(r.stdout + r.stderr, /kept "app-pg: grant g2 at the postgres-role source \(dual-active\)": generation 2 of app-pg may still be in use/);
    assert.equal(pgLoginOk("app_g2", current), true, "the live login app_g2 still logs in");
    for (const h of hosts()) assert.ok((await consumerState(h, "pg")).healthy, `${h.name}'s PostgreSQL consumer stays healthy`);
    assert.ok(!ws.auditLines().some((l) => l.secret === PG && l.phase === "withdrawn" && l.generation === 2), "no withdrawal of g2 was even attempted");

    ws.patchSecret(PG, { secret: { ...pg.secret, schedule: "90d" } });
    const again = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(again, "resume with the generator fixed");
    const fresh = storeValue(PG);
    remember(fresh);
    assert.equal(pgLoginOk("app_g3", fresh), true);
    assert.equal(pgLoginOk("app_g2", current), false, "once g3 completed, g2 is revoked");
    assertAudit(ws, PG, 3, 4);
});

test("start --due rotates exactly the secrets that are due, says which, and a no-op up afterwards changes nothing", async () => {
    // The deploy key joins the stack, never rotated: due. Redis and PostgreSQL just completed: not due.
    ws.setSecrets([
        { ...redisStack(0), generation: 2, secret: { ...(redisStack(0).secret as object), schedule: "90d" } },
        { ...postgresStack(0), generation: 3, secret: { ...(postgresStack(0).secret as object), schedule: "90d" } },
        { ...sshKeyStack(0), secret: { ...(sshKeyStack(0).secret as object), schedule: "180d" } },
    ]);
    const oldKey = storeValue(KEY);
    remember(oldKey);
    const due = ws.rotate(["due"]);
    assert.equal(due.code, 0, due.stderr);
    assert.match(due.stdout, new RegExp(`${KEY}: last completed never.*: DUE`));
    assert.match(due.stdout, new RegExp(`${REDIS}: last completed .*: not due`));

    const started = ws.rotate(["start", "--due", "--yes"]);
    assert.equal(started.code, 0, `start --due failed:\n${started.stdout.slice(-3000)}\n${started.stderr}`);
    assert.match(started.stdout, new RegExp(`due: ${KEY}\\n`));
    const notDue = /not due: (.*)\n/.exec(started.stdout)?.[1].split(", ").sort();
    assert.deepEqual(notDue, [PG, REDIS], "it says which secrets are not due");
    const cfg = ws.stackConfig()["rotation:secrets"];
    assert.equal(Number(cfg[KEY].generation), 1);
    assert.equal(Number(cfg[REDIS].generation), 2, "Redis was not bumped");
    assert.equal(Number(cfg[PG].generation), 3, "PostgreSQL was not bumped");
    const newKey = storeValue(KEY);
    remember(newKey);
    assert.notEqual(newKey, oldKey);
    assertAudit(ws, KEY, 1, 3);
    assert.equal(
        ws.auditLines().filter((l) => (l.secret === REDIS || l.secret === PG) && l.generation === (l.secret === REDIS ? 3 : 4)).length,
        0,
        "nothing ran for the others",
    );

    const status = ws.rotate(["status"]);
    assert.equal(status.code, 0, status.stderr);
    console.log(
        status.stdout
            .split("\n")
            .map((l) => `# ${l}`)
            .join("\n"),
    );
    for (const [n, g] of [
        [REDIS, 2],
        [PG, 3],
        [KEY, 1],
    ] as const)
        assert.match(status.stdout, new RegExp(`^${n} +${g} +rotate .*completed ok`, "m"));

    // Without --yes nothing changes; a rollback after the revocation is refused; a typo creates no stack.
    const before = JSON.stringify(ws.stackConfig());
    const dryStart = ws.rotate(["start", "--secret", PG]);
    assert.equal(dryStart.code, 0, dryStart.stderr);
    assert.match(dryStart.stdout, new RegExp(`would rotate ${PG} 3 -> 4; nothing was changed`));
    const dryRollback = ws.rotate(["rollback", "--secret", REDIS]);
    assert.equal(dryRollback.code, 3, "a rollback after the revocation is refused");
    assert.match(dryRollback.stderr, new RegExp(`rollback of ${REDIS} generation 2 refused: its revocation has started`));
    assert.equal(JSON.stringify(ws.stackConfig()), before, "the stack config is unchanged");
    const unknown = ws.rotate(["start", "--secret", "app-redsi", "--yes"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /stack e2e has no secret "app-redsi" \(it has: /);
    const typo = spawnSync(path.join(ROOT, "bin", "rotate"), ["status", "--stack", "e2e-typo"], {
        cwd: ws.dir,
        env: { ...ws.env, ROTATION_PROJECT_DIR: ws.dir },
        encoding: "utf8",
    });
    assert.equal(typo.status, 2);
    assert.match(typo.stderr, /no stack "e2e-typo"/);
    assert.ok(
        !fs.readdirSync(path.join(ws.stateDir, ".pulumi", "stacks"), { recursive: true }).some((f) => String(f).includes("e2e-typo")),
        "status created no stack",
    );

    const noop = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(noop, "no-op up");
    assert.deepEqual(changedSteps(noop.events), [], "a no-op up after the rotations changes zero steps");
});

test("environment: no secret leaked", () => {
    scanForLeaks(ws);
});
