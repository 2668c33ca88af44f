// The lab's Redis password kept in an env-file store (stores/envFile.ts)
// beside two other secrets, comments, a CR LF line and an unterminated last
// line, rotated through the real Pulumi engine: the other lines stay byte for
// byte; a staged line changed behind the rotation's back stops the gate,
// naming the file and the key, nothing revoked; `bin/rotate check` reads the
// store; the PostgreSQL password kept in the same file rotates in the same
// update as the Redis one, both kept; no value reaches the audit log, the
// outputs or any printed text.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { assertAudit, assertAuditChain, assertRevokeAfterEveryConsumer, assertSucceeded, consumersHold, remember } from "./checks";
import { hosts, lab, labCtl, pgLoginOk, postgresStack, redisAuthOk, redisStack, stepTimeline, storeValue, Workspace } from "../../lab/driver";
import { scanForLeaks } from "./leaks";
import { envFileStore } from "../../stores/envFile";

const SECRET = "app-redis";
const KEY = "REDIS_PASSWORD";
/** Relative: resolved against the project directory by the program and by bin/rotate alike. */
const REL = "secrets/app.env";
let ws: Workspace;
let file: string;
let others: string[];
const PG = "app-pg";
const PG_KEY = "PG_PASSWORD";
const values = (key = KEY) => envFileStore.values({ kind: "env-file", path: file, key }, SECRET);

/** The lines of the file that are not these secrets', each with its ending. */
const otherLines = (keys = [KEY]) =>
    (fs.readFileSync(file, "utf8").match(/[^\n]*(\n|$)/g) ?? []).filter(
        (l) => l !== "" && !keys.some((k) => new RegExp(`^${k}(_NEW|_PREVIOUS|_COMMITTED)?=`).test(l)),
    );

before(() => {
    labCtl("up", "--reset");
    ws = new Workspace("envfile");
    file = path.join(ws.dir, REL);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const db = `db-${randomBytes(12).toString("hex")}`;
    const token = `tok ${randomBytes(12).toString("hex")} "quoted"`;
    const last = `last-${randomBytes(12).toString("hex")}`;
    remember(db, token, last);
    const pg = storeValue(PG);
    others = [
        "# the app's credentials (EnvironmentFile=)\n",
        `DB_PASSWORD=${db}\n`,
        "\n",
        "; a systemd comment, CR LF\r\n",
        `${PG_KEY}=${pg}\n`,
        `API_TOKEN='${token}'\n`,
        `LAST_SECRET=${last}`,
    ];
    const current = storeValue(SECRET);
    remember(current, pg);
    fs.writeFileSync(file, [...others.slice(0, 3), `${KEY}=${current}\n`, ...others.slice(3)].join(""), { mode: 0o640 });
    ws.setConfig({ ...redisStack(0), store: { kind: "env-file", path: REL, key: KEY } });
});

after(() => {
    for (const h of hosts()) labCtl("fail-health", h.name, "off");
});

test("the Redis password rotates in the env file; the other lines are byte-identical", async () => {
    const old = (await values()).current!;
    ws.patchConfig({ generation: 1 });
    const up = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assertSucceeded(up, "up");
    assertRevokeAfterEveryConsumer(
        up,
        SECRET,
        hosts().map((h) => `redis-${h.name}`),
    );
    const v = await values();
    remember(v.current!);
    assert.notEqual(v.current, old);
    assert.equal(v.previous, old, "the replaced secret is kept as REDIS_PASSWORD_PREVIOUS");
    assert.equal(v.staged, undefined, "no staged line is left");
    assert.match(fs.readFileSync(file, "utf8"), new RegExp(`^${KEY}_COMMITTED=1\\n`, "m"));
    assert.deepEqual(otherLines(), others, "every other line, its order and its ending unchanged");
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(redisAuthOk(v.current!), true, "the new password is accepted by Redis");
    assert.equal(redisAuthOk(old), false, "the old password is rejected");
    await consumersHold(v.current!);
    assertAudit(ws, SECRET, 1, hosts().length);
});

test("bin/rotate check reads the env file: every consumer holds the current secret, the previous is rejected", () => {
    const r = ws.rotate(["check"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /every consumer holds the current secret/);
    assert.match(r.stdout, /previous rejected, current accepted/);
});

test("a staged line changed behind the rotation's back stops the gate, naming the file and the key; nothing is revoked; put back, the rotation completes", async () => {
    const old = (await values()).current!;
    const failing = hosts()[1];
    labCtl("fail-health", failing.name, "on");
    ws.patchConfig({ generation: 2 });
    const failed = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true }).finally(() => labCtl("fail-health", failing.name, "off"));
    assert.notEqual(failed.code, 0, "up fails at the failing consumer");
    const staged = fs.readFileSync(file, "utf8");
    const fresh = (await values()).staged!;
    remember(fresh);
    assert.ok(fresh && fresh !== old, "the new secret is staged");
    assert.deepEqual(otherLines(), others);

    fs.writeFileSync(file, staged.replace(new RegExp(`^${KEY}_NEW=.*$`, "m"), `${KEY}_NEW=written-by-someone-else`));
    const refused = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assert.notEqual(refused.code, 0);
    const out = refused.stdout + refused.stderr;
    assert.ok(out.includes(`${KEY}_NEW in ${file} holds another secret than generation 2`), out.slice(-2000));
    assert.ok(out.includes("bin/rotate resume --stack e2e --yes") && out.includes("Nothing was revoked"), out.slice(-2000));
    assert.ok(!out.includes("written-by-someone-else"), "the value found is not printed");
    assert.equal(stepTimeline(refused.events, `${SECRET}-revoke`).start, undefined, "no revocation started");
    assert.equal(redisAuthOk(old), true, "the old password still works");

    fs.writeFileSync(file, staged);
    const again = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assertSucceeded(again, "resume once the staged line is put back");
    const v = await values();
    assert.equal(v.current, fresh);
    assert.equal(v.previous, old);
    assert.equal(redisAuthOk(old), false);
    assert.equal(redisAuthOk(fresh), true);
    await consumersHold(fresh);
    assert.deepEqual(otherLines(), others, "the other lines still byte-identical");
    assertAudit(ws, SECRET, 2, hosts().length);
});

test("two secrets of the stack in the same env file rotate in one update: both updates are kept, the other lines byte-identical", async () => {
    const old = (await values()).current!;
    const pgOld = (await values(PG_KEY)).current!;
    const redis = { ...redisStack(3), store: { kind: "env-file", path: REL, key: KEY } };
    const pg = { ...postgresStack(1), store: { kind: "env-file", path: REL, key: PG_KEY } };
    ws.setSecrets([redis, pg]);
    const up = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assertSucceeded(up, "both rotations");
    const overlap = (step: string) => {
        const [a, b] = [stepTimeline(up.events, `${SECRET}-${step}`), stepTimeline(up.events, `${PG}-${step}`)];
        return a.start! < b.end! && b.start! < a.end!;
    };
    console.log(`# the two secrets' store phases ran at the same time: stage ${overlap("stage")}, gate ${overlap("gate")}, promote ${overlap("promote")}`);
    const [v, p] = [await values(), await values(PG_KEY)];
    remember(v.current!, p.current!);
    assert.equal(v.previous, old);
    assert.equal(p.previous, pgOld);
    assert.ok(v.current !== old && p.current !== pgOld && v.staged === undefined && p.staged === undefined, "both promoted");
    const text = fs.readFileSync(file, "utf8");
    assert.match(text, new RegExp(`^${KEY}_COMMITTED=3$`, "m"));
    assert.match(text, new RegExp(`^${PG_KEY}_COMMITTED=1$`, "m"));
    assert.equal(redisAuthOk(v.current!), true);
    assert.equal(pgLoginOk("app_g1", p.current!), true, "app_g1 logs in with the new password");
    assert.equal(pgLoginOk(lab().postgres.initialLogin, pgOld), false, "the previous login is disabled");
    assert.deepEqual(
        otherLines([KEY, PG_KEY]),
        others.filter((l) => !l.startsWith(`${PG_KEY}=`)),
    );
    await consumersHold(v.current!);
    assertAudit(ws, PG, 1, hosts().length + 1);
});

test("no secret value (rotated or the file's other secrets) in the audit log, the outputs, the state or anything printed", () => {
    assertAuditChain(ws);
    scanForLeaks(ws);
});
