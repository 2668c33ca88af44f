// Teams on the lab: the state in the lab's PostgreSQL (the pinned CLI's DIY
// postgres:// backend), two operators in two checkouts of one stack, two
// stacks rotating at once, and a stack whose state secrets are encrypted by
// OpenBao's transit engine with no passphrase anywhere.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { stateClient } from "../../cli/backend";
import { vaultToken, type VaultStore } from "../../adapters/vault";
import { assertRedisMoved, remember } from "./checks";
import {
    captured,
    committedGeneration as committed,
    lab,
    labCtl,
    pgLoginOk,
    postgresStack,
    redisAuthOk,
    redisStack,
    storeValue,
    Workspace,
} from "../../lab/driver";
import { scanForLeaks } from "./leaks";
import { STEP_TYPE } from "../../provider/types";

const SECRET = "app-redis";
/** A table of its own per run: the backend's `table` parameter, so runs never see each other's stacks. */
const TABLE = `e2e_teams_${process.pid}`;
const backendUrl = () => `${lab().stateBackend.url}&table=${TABLE}`;
const pgEnv = () => ({ PGPASSFILE: lab().stateBackend.passfile });

/** The backend's table, read as the pulumi_state login (password from the lab's 0600 passfile, as the CLI gets it). */
async function db<T = Record<string, string>>(sql: string, params: unknown[] = []): Promise<T[]> {
    process.env.PGPASSFILE = lab().stateBackend.passfile;
    const c = stateClient(lab().stateBackend.url);
    await c.connect();
    try {
        return (await c.query(sql, params)).rows as T[];
    } finally {
        await c.end();
    }
}
const lockKeys = async () => (await db<{ key: string }>(`SELECT key FROM ${TABLE} WHERE key LIKE '%.pulumi/locks/%'`)).map((r) => r.key);
/** The stack a lock row belongs to: `<db>/.pulumi/locks/<org>/<project>/<stack>/<id>.json`. */
const lockStack = (key: string) => key.split("/").at(-2);
let liveLockKey = "";

async function until(what: string, ok: () => Promise<boolean>, seconds: number): Promise<void> {
    const end = Date.now() + seconds * 1000;
    while (!(await ok())) {
        if (Date.now() > end) throw new Error(`timed out after ${seconds}s waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

let alice: Workspace;

before(() => {
    labCtl("up", "--reset");
    alice = new Workspace("teams-alice", "team", { backendUrl: backendUrl(), env: pgEnv() });
    alice.setConfig(redisStack(0));
    remember(storeValue(SECRET), storeValue("app-pg"));
});

after(() => labCtl("fail-health", "host2", "off"));

test("teams: the Redis rotation with the state in PostgreSQL, through bin/rotate and plain bin/pulumi", async () => {
    const old = storeValue(SECRET);
    const r = await alice.rotateSampled(["start", "--secret", SECRET, "--yes"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assertRedisMoved(SECRET, old);
    const keys = (await db<{ key: string }>(`SELECT key FROM ${TABLE}`)).map((k) => k.key);
    assert.ok(
        keys.some((k) => /(^|\/)\.pulumi\/stacks\/secret-rotation\/team\.json$/.test(k)),
        `the checkpoint is a row of ${TABLE}: ${keys.join(", ")}`,
    );
    assert.deepEqual(await lockKeys(), [], "no lock left behind");
    assert.equal(fs.existsSync(path.join(alice.stateDir, ".pulumi")), false, "nothing went to a file backend");
    const status = alice.rotate(["status", "--json"]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).secrets.find((s: { secret: string }) => s.secret === SECRET).committed, 1);
    const preview = await alice.pulumi(["preview"]);
    assert.equal(preview.code, 0, preview.stderr);
});

test("teams: while alice rotates, bob's start on the same stack is refused at once naming her run, and his unlock refuses too", async () => {
    const bob = new Workspace("teams-bob", "team", { backendUrl: backendUrl(), env: pgEnv(), init: "none" });
    bob.joinStackOf(alice);
    const bobFile = fs.readFileSync(bob.stackFile, "utf8");
    // host2's health check fails until bob has been refused: alice's run holds the lock meanwhile.
    alice.patchConfig({ generation: 1, consumers: (redisStack(1).consumers as object[]).map((c) => ({ ...c, retries: 30, retryDelaySeconds: 1 })) });
    labCtl("fail-health", "host2", "on");
    const run = alice.rotateSampled(["start", "--secret", SECRET, "--yes", "--plain"]);
    try {
        await until("alice's run to take the stack's lock", async () => (await lockKeys()).length > 0, 60);
        [liveLockKey] = await lockKeys();
        assert.equal(lockStack(liveLockKey), "team");
        const acl = storeValue(SECRET);
        const refused = bob.rotate(["start", "--secret", SECRET, "--yes"]);
        assert.equal(refused.code, 4, refused.stdout + refused.stderr);
        assert.match(refused.stderr, new RegExp(`stack team is being changed by process \\d+ of \\S+ on ${os.hostname()} since \\S+; nothing was changed`));
        assert.doesNotMatch(refused.stdout + refused.stderr, /pre-flight|rotating/, "refused before the pre-flight and before anything ran");
        assert.equal(fs.readFileSync(bob.stackFile, "utf8"), bobFile, "bob's stack file is unchanged");
        assert.deepEqual(bob.auditLines(), [], "bob's run wrote no audit line");
        assert.equal(storeValue(SECRET), acl, "bob's run staged nothing");
        const unlock = bob.rotate(["unlock"]);
        assert.equal(unlock.code, 4, unlock.stdout + unlock.stderr);
        assert.match(unlock.stderr, /is locked by process \d+ .* on this host since \S+; not removing/);
    } finally {
        labCtl("fail-health", "host2", "off");
    }
    const done = await run;
    assert.equal(done.code, 0, done.stdout + done.stderr);
    remember(storeValue(SECRET));
    assert.equal(redisAuthOk(storeValue(SECRET)), true);
    assert.equal(committed(SECRET), 2);
});

test("teams: a dead run's lock in PostgreSQL is named as such, and unlock removes it", async () => {
    const bob = new Workspace("teams-bob2", "team", { backendUrl: backendUrl(), env: pgEnv(), init: "none" });
    bob.joinStackOf(alice);
    assert.ok(liveLockKey, "the test before saw a live lock's key");
    const key = liveLockKey.replace(/[^/]+\.json$/, "00000000-dead-run.json");
    const dead = 2 ** 22 + 12345; // above pid_max's default: no such process
    // As the backend writes an object: {"data": <base64 of its bytes>}.
    const lock = Buffer.from(JSON.stringify({ pid: dead, username: "alice", hostname: os.hostname(), timestamp: "2026-11-26T10:00:00Z" })).toString("base64");
    await db(`INSERT INTO ${TABLE} (key, data) VALUES ($1, $2::json)`, [key, JSON.stringify({ data: lock })]);
    const refused = bob.rotate(["start", "--secret", SECRET, "--yes"]);
    assert.equal(refused.code, 4, refused.stdout + refused.stderr);
    assert.match(
        refused.stderr,
        new RegExp(
            `holds the lock of a run that no longer exists \\(process ${dead} of alice on ${os.hostname()}, since 2026-11-26T10:00:00Z\\); nothing was changed. Run: bin/rotate unlock --stack team, then resume`,
        ),
    );
    const unlock = bob.rotate(["unlock"]);
    assert.equal(unlock.code, 0, unlock.stdout + unlock.stderr);
    assert.match(unlock.stdout, new RegExp(`removed the stale lock of process ${dead} .* from the PostgreSQL backend's table ${TABLE}`));
    assert.deepEqual(await lockKeys(), []);
});

test("teams: two stacks in one backend rotate at the same time, both complete", async () => {
    const pg = new Workspace("teams-pg", "team-pg", { backendUrl: backendUrl(), env: pgEnv() });
    pg.setConfig(postgresStack(committed("app-pg")));
    alice.patchConfig({ generation: committed(SECRET), consumers: redisStack(0).consumers });
    const both = new Set<string>();
    let sampling = true;
    const sampler = (async () => {
        while (sampling) {
            const stacks = new Set((await lockKeys()).map(lockStack));
            if (stacks.size === 2) stacks.forEach((s) => both.add(s!));
            await new Promise((r) => setTimeout(r, 100));
        }
    })();
    const [r1, r2] = await Promise.all([
        alice.rotateSampled(["start", "--secret", SECRET, "--yes", "--plain"]),
        pg.rotateSampled(["start", "--secret", "app-pg", "--yes", "--plain"]),
    ]);
    sampling = false;
    await sampler;
    assert.equal(r1.code, 0, r1.stdout + r1.stderr);
    assert.equal(r2.code, 0, r2.stdout + r2.stderr);
    assert.deepEqual([...both].sort(), ["team", "team-pg"], "both stacks held their locks at the same moment");
    remember(storeValue(SECRET), storeValue("app-pg"));
    assert.equal(redisAuthOk(storeValue(SECRET)), true);
    assert.equal(pgLoginOk(`app_g${committed("app-pg")}`, storeValue("app-pg")), true);
});

// Issue 23, defect 3: each checkout keeps its own audit log (a relative path in the shared stack file). The
// delete guard read the log recorded in the previous grant's state: the other checkout's, where this
// checkout's completions never appear, so every later rotation kept that grant and exited 5 (from the
// second run on: four runs, two per checkout, each reading the other's grant twice, show it).
const RUNS = 4;
test("teams: two checkouts of one stack rotate it four times alternately; every run exits 0 and no grant is kept", async () => {
    const env = { ...pgEnv(), PULUMI_CONFIG_PASSPHRASE: "teams-two-checkouts-passphrase" };
    const a = new Workspace("teams-alt-alice", "team-alt", { backendUrl: backendUrl(), env });
    const b = new Workspace("teams-alt-bob", "team-alt", { backendUrl: backendUrl(), env, init: "none" });
    a.setSecrets([redisStack(committed(SECRET))], { auditLog: ".state/audit/team-alt.log" });
    const start = committed(SECRET);
    const seconds: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
        const [me, other] = i % 2 ? [a, b] : [b, a];
        if (i > 1) me.joinStackOf(other); // the other operator's stack file, as git brings it
        const old = storeValue(SECRET);
        const t0 = Date.now();
        const r = me.rotate(["start", "--secret", SECRET, "--yes"]);
        seconds.push((Date.now() - t0) / 1000);
        assert.equal(r.code, 0, `run ${i} (${me.name}): ${r.stdout}${r.stderr}`);
        assert.doesNotMatch(r.stdout + r.stderr, /kept "/, `run ${i} kept nothing`);
        assertRedisMoved(SECRET, old);
        assert.equal(committed(SECRET), start + i);
    }
    console.log(`# two checkouts, ${RUNS} alternate rotations: ${seconds.map((x) => x.toFixed(1)).join(", ")} s`);
    // Each checkout's completions are in its own log; together they are all of them.
    const completed = (w: Workspace) =>
        fs
            .readFileSync(path.join(w.dir, ".state/audit/team-alt.log"), "utf8")
            .split("\n")
            .filter((l) => l.includes('"phase":"completed"') && l.includes('"outcome":"ok"')).length;
    assert.deepEqual([completed(a), completed(b)], [RUNS / 2, RUNS / 2]);
    const exported = await a.pulumi(["stack", "export"]);
    assert.equal(exported.code, 0, exported.stderr);
    captured.push({ label: "teams: pulumi stack export (team-alt)", text: exported.stdout });
    const resources = JSON.parse(exported.stdout).deployment.resources as { urn: string; delete?: boolean }[];
    const grants = resources.filter((x) => /::app-redis-grant-g\d+$/.test(x.urn) && x.urn.includes(`$${STEP_TYPE}::`)).map((x) => x.urn.split("::").at(-1));
    assert.deepEqual(grants, [`app-redis-grant-g${start + RUNS}`], "only the current generation's grant is in the state");
    assert.deepEqual(
        resources.filter((x) => x.delete).map((x) => x.urn),
        [],
        "nothing waits in the state to be deleted",
    );
});

test("teams: a stack encrypted by OpenBao transit rotates with no passphrase, and its state holds no secret", async () => {
    const l = lab();
    const store: VaultStore = {
        kind: "vault",
        address: l.openbao.address,
        caFile: l.openbao.caFile,
        mount: l.openbao.kvMount,
        path: l.openbao.secrets.redis,
        auth: { method: "approle", mount: l.openbao.approleMount, roleIdFile: l.openbao.roleIdFile, secretIdFile: l.openbao.secretIdFile },
    };
    const token = await vaultToken(store);
    const auditBefore = fs.statSync(l.openbao.auditLog).size;
    const env = {
        ...pgEnv(),
        VAULT_ADDR: l.openbao.address,
        VAULT_CACERT: l.openbao.caFile,
        VAULT_TOKEN: token,
        PULUMI_CONFIG_PASSPHRASE: undefined,
        PULUMI_CONFIG_PASSPHRASE_FILE: undefined,
    };
    // The stack does not exist yet: its file names the provider, and `bin/rotate start --yes` creates it with that.
    const ws = new Workspace("teams-transit", "team-transit", { backendUrl: backendUrl(), env, init: "none" });
    assert.ok(!("PULUMI_CONFIG_PASSPHRASE" in ws.env) && !("PULUMI_CONFIG_PASSPHRASE_FILE" in ws.env), "no passphrase in this run's environment");
    fs.writeFileSync(ws.stackFile, `secretsprovider: hashivault://${l.openbao.transitKey}\n`);
    ws.setConfig(redisStack(committed(SECRET)));
    const r = await ws.rotateSampled(["start", "--secret", SECRET, "--yes"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const doc = fs.readFileSync(ws.stackFile, "utf8");
    assert.match(doc, new RegExp(`^secretsprovider: hashivault://${l.openbao.transitKey}$`, "m"));
    assert.match(doc, /^encryptedkey: \S+$/m, "the stack's data key, wrapped by the transit key");
    assert.doesNotMatch(doc, /encryptionsalt/, "no passphrase salt");
    remember(storeValue(SECRET));
    assert.equal(redisAuthOk(storeValue(SECRET)), true);
    const exported = await ws.pulumi(["stack", "export"]);
    assert.equal(exported.code, 0, exported.stderr);
    const state = JSON.parse(exported.stdout);
    assert.equal(state.deployment.secrets_providers.type, "cloud");
    assert.equal(state.deployment.secrets_providers.state.url, `hashivault://${l.openbao.transitKey}`);
    assert.ok(exported.stdout.includes("ciphertext"), "the state holds secrets, encrypted");
    const audit = fs.readFileSync(l.openbao.auditLog, "utf8").slice(auditBefore);
    assert.match(audit, new RegExp(`"path":"transit/(en|de)crypt/${l.openbao.transitKey}"`), "OpenBao's transit key did the encryption");
    // The leak scan reads the export and every row of the backend's table besides what every run printed.
    captured.push({ label: "teams: pulumi stack export (team-transit)", text: exported.stdout });
    // Each row holds its object as base64: decoded, or a plaintext secret would not show.
    const rows = await db<{ data: { data: string } }>(`SELECT data FROM ${TABLE}`);
    assert.ok(rows.length > 3 && rows.every((x) => typeof x.data.data === "string"), "rows in the backend's {data: base64} form");
    captured.push({ label: `teams: every row of ${TABLE}, decoded`, text: rows.map((x) => Buffer.from(x.data.data, "base64").toString("utf8")).join("\n") });
    scanForLeaks(ws);
});
