// The vault store against the lab's real OpenBao (Vault's HTTP API), through
// the real engine: a Redis rotation (token file, random generator) and a
// PostgreSQL rotation (AppRole); a failure after promotion and its resume; a
// rollback before revocation and its refusal after; a write that races a
// change behind its back; a wrong token, an unreachable server and a missing
// mount, each refused before anything changes; and the leak scan over
// OpenBao's audit log and storage.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { assertAudit, assertPreviewPlan, assertRevokeAfterEveryConsumer, assertSucceeded, remember, secretsSeen } from "./checks";
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
    sha256,
    stepTimeline,
    Workspace,
} from "../../lab/driver";
import { scanForLeaks } from "./leaks";
import { COMMITTED_KEY, VaultError, vaultRead, vaultStep, type VaultStore } from "../../adapters/vault";
import { STEP_TYPE } from "../../provider/types";

const REDIS = "app-redis";
const PG = "app-pg";
const REDIS_PATH = "rotation/app-redis";
const PG_PATH = "rotation/app-pg";
const STEP = STEP_TYPE;
let ws: Workspace;
let redisGeneration = 0;

const bao = () => lab().openbao;

/** The store as the stack config names it: the root token from its file, or the lab's AppRole. */
function storeConfig(kvPath: string, auth: "token" | "approle"): Record<string, unknown> {
    const b = bao();
    return {
        kind: "vault",
        address: b.address,
        caFile: b.caFile,
        mount: b.kvMount,
        path: kvPath,
        auth:
            auth === "token" ? { method: "token", tokenFile: b.rootTokenFile } : { method: "approle", roleIdFile: b.roleIdFile, secretIdFile: b.secretIdFile },
    };
}

/** How the tests read and write the KV secret themselves: the root token. */
const rootStore = (kvPath: string): VaultStore => storeConfig(kvPath, "token") as unknown as VaultStore;
const kv = (kvPath: string) => vaultRead(rootStore(kvPath));

/** A KV v2 write by someone else (no check-and-set): the tests' "change behind its back". */
function kvPut(kvPath: string, data: Record<string, string>): Promise<number> {
    const b = bao();
    const url = new URL(`/v1/${b.kvMount}/data/${kvPath}`, b.address);
    const token = fs.readFileSync(b.rootTokenFile, "utf8").trim();
    return new Promise((resolve, reject) => {
        const req = https.request(
            url,
            { method: "POST", ca: fs.readFileSync(b.caFile), headers: { "X-Vault-Token": token, "Content-Type": "application/json" } },
            (res) => {
                res.resume();
                res.on("end", () => (res.statusCode === 200 ? resolve(res.statusCode) : reject(new Error(`kv put ${kvPath}: HTTP ${res.statusCode}`))));
            },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ data }));
    });
}

function redisFlat(generation: number): Record<string, unknown> {
    const base = redisStack(generation);
    return {
        ...base,
        secret: { ...(base.secret as object), generator: { kind: "random", length: 40, special: true } },
        store: storeConfig(REDIS_PATH, "token"),
    };
}

const pgFlat = (generation: number) => ({ ...postgresStack(generation), store: storeConfig(PG_PATH, "approle") });

async function consumersHold(kind: "redis" | "pg", value: string): Promise<void> {
    for (const h of hosts()) {
        const s = await consumerState(h, kind);
        assert.equal(s.fingerprint, sha256(value), `${h.name} holds the expected ${kind} secret`);
        assert.ok(s.healthy, `${h.name} is healthy`);
    }
}

/** After a completed rotation to `generation` from `old`: the runbook's layout, and the committed generation in the metadata. */
async function assertPromoted(kvPath: string, generation: number, old: string, previousGeneration = generation - 1): Promise<string> {
    const { data, custom } = await kv(kvPath);
    assert.ok(data, `${kvPath} exists`);
    const fresh = String(data.current);
    remember(fresh);
    assert.notEqual(fresh, old, "current holds a new secret");
    assert.equal(data.previous, old, "previous holds the old secret");
    assert.equal(data.new, undefined, "no staged field is left");
    assert.equal(data.new_generation, undefined);
    assert.equal(data.current_generation, String(generation));
    assert.equal(data.previous_generation, String(previousGeneration));
    assert.equal(custom?.[COMMITTED_KEY], String(generation), "the metadata holds the committed generation");
    return fresh;
}

before(() => {
    labCtl("up", "--reset");
    ws = new Workspace("vault");
    remember(fs.readFileSync(bao().rootTokenFile, "utf8").trim(), fs.readFileSync(bao().secretIdFile, "utf8").trim());
});

after(() => {
    for (const h of hosts()) labCtl("fail-health", h.name, "off");
});

test("vault store: Redis (token, random generator) and PostgreSQL (AppRole) rotate through the real OpenBao", async () => {
    const oldRedis = String((await kv(REDIS_PATH)).data?.current);
    const oldPg = String((await kv(PG_PATH)).data?.current);
    remember(oldRedis, oldPg);
    assert.equal(redisAuthOk(oldRedis), true, "the seeded Redis secret is the one in use");
    redisGeneration = 1;
    ws.setSecrets([redisFlat(1), pgFlat(1)]);
    const redisConsumers = hosts().map((h) => `redis-${h.name}`);
    const pgConsumers = [...hosts().map((h) => `pg-${h.name}`), "pgbouncer-host3"];

    const preview = await ws.pulumi(["preview", "--json"]);
    assertSucceeded(preview, "preview");
    assertPreviewPlan(preview.stdout, REDIS, redisConsumers, 1);
    assertPreviewPlan(preview.stdout, PG, pgConsumers, 1);
    assert.equal((await kv(REDIS_PATH)).version, 1, "preview wrote nothing to the store");

    const up = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assertSucceeded(up, "up");
    console.log(`# vault store: Redis (3 consumers) and PostgreSQL (4 consumers) g1 in one up: ${up.seconds.toFixed(1)}s wall`);
    assertRevokeAfterEveryConsumer(up, REDIS, redisConsumers);
    assertRevokeAfterEveryConsumer(up, PG, pgConsumers);

    const redis = await assertPromoted(REDIS_PATH, 1, oldRedis);
    assert.match(redis, /^[A-Za-z0-9!#%+,\-.:=@^_~]{40}$/, "the random generator's value: 40 characters of the requested classes");
    assert.equal(redisAuthOk(redis), true, "Redis accepts the new password");
    assert.equal(redisAuthOk(oldRedis), false, "Redis rejects the old password");
    await consumersHold("redis", redis);
    assertAudit(ws, REDIS, 1, 3);

    const pg = await assertPromoted(PG_PATH, 1, oldPg);
    assert.equal(pgLoginOk("app_g1", pg), true, "app_g1 logs in with the new password");
    assert.equal(pgLoginOk(lab().postgres.initialLogin, oldPg), false, "the generation-0 login is disabled");
    await consumersHold("pg", pg);
    assertAudit(ws, PG, 1, pgConsumers.length);

    const status = ws.rotate(["status"]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^${REDIS}\\s+1\\s+rotate\\s+1\\s`, "m"), "status reads the committed generation from the Vault metadata");
});

test("vault store: a failure after promotion (a consumer still on the old secret) and its resume keep the right old and new", async () => {
    const old = String((await kv(REDIS_PATH)).data?.current);
    const h1 = hosts()[0];
    // A consumer that keeps using the old secret (its .bak, as a cached connection would):
    // healthy while both are valid, failing once the old one is revoked.
    fs.writeFileSync(path.join(h1.etcDir, "canary.conf"), old, { mode: 0o600 });
    const l = lab();
    const canary = {
        ...(redisStack(0).consumers as Record<string, unknown>[])[0],
        name: "canary-host1",
        configPath: "/etc/rotation-app/canary.conf",
        write: { format: "template", template: "{{secret}}" },
        reload: "true",
        health: {
            command: `REDISCLI_AUTH="$(cat /etc/rotation-app/canary.conf.bak)" redis-cli --no-auth-warning -h ${l.redis.host} -p ${l.redis.port} --user ${l.redis.user} PING | grep -qx PONG`,
        },
        logCheck: undefined,
        retries: 2,
    };
    const consumers = [...(redisFlat(0).consumers as object[]), canary];
    redisGeneration++;
    ws.patchSecret(REDIS, { generation: redisGeneration, consumers });
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(r.code, 0, "the run fails after promotion");
    assert.match(r.stdout + r.stderr, /canary-host1/, "the failure names the consumer");
    assert.ok(stepTimeline(r.events, `${REDIS}-promote`).end !== undefined, "promotion completed before the failure");
    assert.ok(stepTimeline(r.events, `${REDIS}-verify-consumers`).failed !== undefined, "the consumers' verification failed");
    const { data } = await kv(REDIS_PATH);
    const fresh = String(data?.current);
    remember(fresh);
    assert.equal(data?.previous, old, "after promotion, previous is the old secret");
    // A run that lost its state reads the old secret as `previous`, not the new `current`.
    assert.equal(await vaultStep({ action: "read", store: rootStore(REDIS_PATH), generation: redisGeneration }, undefined), old);

    ws.patchSecret(REDIS, { consumers: [...(redisFlat(0).consumers as object[]), { ...canary, health: { command: "true" } }] });
    const again = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(again, "resume");
    assert.ok(!changedSteps(again.events).includes(`${REDIS}-previous-read`), "the previous secret was not read again: it is pinned in the state");
    assert.ok(!changedSteps(again.events).includes(`${REDIS}-promote`), "promotion did not run again");
    assert.equal(await assertPromoted(REDIS_PATH, redisGeneration, old), fresh, "the store still holds the same old and new");
    assert.equal(redisAuthOk(fresh), true);
    assert.equal(redisAuthOk(old), false);
    assertAudit(ws, REDIS, redisGeneration, 4);
    ws.patchSecret(REDIS, { consumers: redisFlat(0).consumers });
    fs.rmSync(path.join(h1.etcDir, "canary.conf"), { force: true });
    fs.rmSync(path.join(h1.etcDir, "canary.conf.bak"), { force: true });
});

test("vault store: rollback before revocation restores consumers and removes the staged field; after revocation it is refused", async () => {
    ws.patchSecret(REDIS, { consumers: redisFlat(0).consumers });
    const settle = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(settle, "the canary consumer leaves the stack");
    const old = String((await kv(REDIS_PATH)).data?.current);
    const failing = hosts()[2];
    labCtl("fail-health", failing.name, "on");
    redisGeneration++;
    ws.patchSecret(REDIS, { generation: redisGeneration });
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"]).finally(() => labCtl("fail-health", failing.name, "off"));
    assert.notEqual(r.code, 0);
    assert.equal(stepTimeline(r.events, `${REDIS}-gate`).start, undefined, "the gate did not open");
    const staged = await kv(REDIS_PATH);
    const stagedValue = String(staged.data?.new);
    remember(stagedValue);
    assert.equal(staged.data?.new_generation, String(redisGeneration), "the new secret is staged beside the current one");
    assert.equal(staged.data?.current, old);
    assert.equal(redisAuthOk(stagedValue), true, "dual-active: the new one works");
    assert.equal(redisAuthOk(old), true, "dual-active: the old one works");

    ws.patchSecret(REDIS, { mode: "rollback" });
    const rb = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(rb, "rollback");
    await consumersHold("redis", old);
    const after = await kv(REDIS_PATH);
    assert.equal(after.data?.new, undefined, "the staged field was removed");
    assert.equal(after.data?.current, old, "current is unchanged");
    assert.equal(redisAuthOk(stagedValue), false, "the new secret was withdrawn at the source");
    assert.equal(redisAuthOk(old), true);
    assert.ok(
        ws.auditLines().some((l) => l.phase === "unstaged" && l.outcome === "ok" && l.generation === redisGeneration),
        "the unstaging has its audit line",
    );

    ws.patchSecret(REDIS, { mode: "rotate" });
    redisGeneration++;
    ws.patchSecret(REDIS, { generation: redisGeneration });
    assertSucceeded(await ws.pulumi(["up", "--yes", "--skip-preview"]), "forward again");
    // The rolled-back generation never became current: the one before it is `previous`.
    const fresh = await assertPromoted(REDIS_PATH, redisGeneration, old, redisGeneration - 2);

    const cli = ws.rotate(["rollback", "--secret", REDIS, "--yes"]);
    assert.equal(cli.code, 3, `bin/rotate refuses: ${cli.stdout}${cli.stderr}`);
    assert.match(cli.stderr, new RegExp(`rollback of ${REDIS} generation ${redisGeneration} refused: its revocation has started`));
    ws.patchSecret(REDIS, { mode: "rollback" });
    const refused = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(refused.code, 0);
    assert.match(
        refused.stdout + refused.stderr,
        new RegExp(`rollback of ${REDIS} generation ${redisGeneration} refused: the revocation of the previous secret has already started`),
    );
    assert.deepEqual(changedSteps(refused.events), [], "the refused rollback changed nothing");
    assert.equal(redisAuthOk(fresh), true);
    ws.patchSecret(REDIS, { mode: "rotate" });
});

// Issue 23, defect 1, as it was seen: the README's own seeding command between stage and gate dropped the staged
// field; the gate opened, the old password was revoked, and promotion found nothing to promote.
test("vault store: a write behind the rotation's back between stage and gate: the gate refuses and stages again, nothing is revoked, resume completes", async () => {
    const old = String((await kv(REDIS_PATH)).data?.current);
    redisGeneration++;
    ws.patchSecret(REDIS, { generation: redisGeneration, rollout: { waves: [1, "100%"] } });
    let put: Promise<number> | undefined;
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"], {
        onEvent: (e) => {
            const m = e.resOutputsEvent?.metadata;
            if (!put && m?.urn.endsWith(`$${STEP}::${REDIS}-stage`)) put = kvPut(REDIS_PATH, { current: old });
        },
    });
    assert.ok(put, "the store was written after staging");
    await put;
    assert.notEqual(r.code, 0, "the gate refused");
    assert.equal(stepTimeline(r.events, `${REDIS}-revoke`).start, undefined, "no revocation started");
    assert.ok(stepTimeline(r.events, `${REDIS}-gate`).failed !== undefined, "the gate ran and refused");
    const out = r.stdout + r.stderr;
    assert.match(
        out,
        new RegExp(
            `${REDIS}: gate, all 3 consumers verified on g${redisGeneration}: vault ${bao().address.replace(/[.]/g, "\\.")} ${bao().kvMount}/${REDIS_PATH}: the staged copy of generation ${redisGeneration} \\(field "new"\\) was missing at version \\d+ \\(written behind this rotation's back after staging, fields current\\); it was staged again \\(version \\d+\\)\\. Find out who wrote the store, then bin/rotate resume --stack e2e --yes\\. Nothing was revoked`,
        ),
        out.slice(-2000),
    );
    const staged = await kv(REDIS_PATH);
    const fresh = String(staged.data?.new);
    remember(fresh);
    assert.notEqual(fresh, old);
    assert.equal(staged.data?.current, old, "current still holds the secret in use");
    assert.equal(redisAuthOk(old), true, "the old password still works");
    assert.equal(redisAuthOk(fresh), true, "dual-active: the new one works");
    await consumersHold("redis", fresh);

    const resume = ws.rotate(["resume", "--yes"]);
    assert.equal(resume.code, 0, `${resume.stdout}${resume.stderr}`);
    // The write dropped current_generation: promotion takes the previous generation as k - 1.
    assert.equal(await assertPromoted(REDIS_PATH, redisGeneration, old), fresh);
    assert.equal(redisAuthOk(old), false, "the old password is revoked now");
    await consumersHold("redis", fresh);
    ws.patchSecret(REDIS, { rollout: redisFlat(0).rollout });
});

// Issue 23, defect 2: a generator that gives the secret in use. Its revocation would have been an outage.
test("vault store: a new secret equal to the one in use is refused before the grant; nothing changes", async () => {
    const before = await kv(REDIS_PATH);
    const old = String(before.data?.current);
    const file = path.join(ws.dir, "in-use.secret");
    fs.writeFileSync(file, old, { mode: 0o600 });
    redisGeneration++;
    ws.patchSecret(REDIS, {
        generation: redisGeneration,
        secret: { ...(redisFlat(0).secret as object), generator: { kind: "command", command: `cat ${file}` } },
    });
    const r = ws.rotate(["resume", "--yes"]);
    assert.equal(r.code, 1, `${r.stdout}${r.stderr}`);
    assert.ok(
        (r.stdout + r.stderr).includes(
            `the new secret of generation ${redisGeneration} is the same as the secret in use: once the old one is revoked, that value would be revoked with it. Nothing was staged or granted.`,
        ),
        r.stdout + r.stderr,
    );
    assert.ok((r.stdout + r.stderr).includes(`bin/rotate rollback --stack e2e --secret ${REDIS} --yes`));
    const after = await kv(REDIS_PATH);
    assert.equal(after.version, before.version, "nothing was written to the store");
    assert.equal(redisAuthOk(old), true);
    await consumersHold("redis", old);
    assert.ok(!ws.auditLines().some((l) => l.secret === REDIS && l.generation === redisGeneration && l.phase === "granted"), "no grant ran");
    // The way forward the message names: take the generation back, then rotate with a working generator.
    const rb = ws.rotate(["rollback", "--secret", REDIS, "--yes"]);
    assert.equal(rb.code, 0, `${rb.stdout}${rb.stderr}`);
    ws.patchSecret(REDIS, { mode: "rotate", secret: redisFlat(0).secret });
    redisGeneration++;
    ws.patchSecret(REDIS, { generation: redisGeneration });
    assertSucceeded(await ws.pulumi(["up", "--yes", "--skip-preview"]), "a new generation with a fresh value");
    const fresh = await assertPromoted(REDIS_PATH, redisGeneration, old, redisGeneration - 2);
    assert.equal(redisAuthOk(fresh), true);
});

test("vault store: a write racing a change made behind its back fails naming the path and writes nothing", async () => {
    const p = "rotation/race-test";
    await kvPut(p, { current: "race-test-old-value-0123456789" });
    const store = rootStore(p);
    const v1 = (await kv(p)).version!;
    const stage = vaultStep({ action: "stage", store, generation: 1 }, "race-test-new-value-0123456789", {
        beforeWrite: () => kvPut(p, { current: "race-test-changed-behind-its-back" }).then(() => undefined),
    });
    await assert.rejects(stage, (e: Error) => {
        assert.ok(e instanceof VaultError);
        assert.match(
            e.message,
            new RegExp(`vault ${bao().address.replace(/[.]/g, "\\.")} secret/rotation/race-test: changed behind this rotation's back: version ${v1} was read`),
        );
        assert.doesNotMatch(e.message, /race-test-(old|new)-value/);
        return true;
    });
    const after = await kv(p);
    assert.equal(after.version, v1 + 1, "only the other writer's version exists");
    assert.deepEqual(after.data, { current: "race-test-changed-behind-its-back" }, "nothing of the staging was written");

    // Promotion checks-and-sets the same way.
    await vaultStep({ action: "stage", store, generation: 1 }, "race-test-new-value-0123456789");
    const promote = vaultStep({ action: "promote", store, generation: 1 }, "race-test-new-value-0123456789", {
        beforeWrite: () => kvPut(p, { current: "race-test-changed-again", new: "race-test-new-value-0123456789" }).then(() => undefined),
    });
    await assert.rejects(promote, /changed behind this rotation's back/);
    assert.equal((await kv(p)).data?.current, "race-test-changed-again");
});

test("vault store: a wrong token, an unreachable server and a missing mount each stop the run before anything changes", async () => {
    const before = await kv(REDIS_PATH);
    const current = String(before.data?.current);
    const wrongToken = path.join(ws.dir, "wrong.token");
    fs.writeFileSync(wrongToken, "s.ThisIsNotAValidToken00000\n", { mode: 0o600 });
    const good = storeConfig(REDIS_PATH, "token");
    const cases: { name: string; store: Record<string, unknown>; expect: RegExp }[] = [
        {
            name: "wrong token",
            store: { ...good, auth: { method: "token", tokenFile: wrongToken } },
            expect: /the token is not valid \(wrong, expired or revoked\): HTTP 403/,
        },
        {
            name: "unreachable server",
            store: { ...good, address: "https://127.0.1.32:8299" },
            expect: /cannot reach https:\/\/127\.0\.1\.32:8299: connection refused/,
        },
        { name: "missing mount", store: { ...good, mount: "nomount" }, expect: /no secrets engine is mounted at "nomount\/" that this token may reach/ },
    ];
    for (const c of cases) {
        ws.patchSecret(REDIS, { generation: redisGeneration + 1, store: c.store });
        const r = await ws.pulumi(["up", "--yes", "--skip-preview"]);
        const out = r.stdout + r.stderr;
        console.log(`# vault store, ${c.name}: refused in ${r.seconds.toFixed(1)}s`);
        assert.notEqual(r.code, 0, `${c.name}: the run fails`);
        assert.match(
            out,
            new RegExp(`rotation:secrets\\.${REDIS}\\.store: vault https://127\\.0\\.1\\.32:82\\d\\d ${c.store.mount}/${REDIS_PATH}`),
            `${c.name}: the message names the store:\n${out.slice(-1500)}`,
        );
        assert.match(out, c.expect, `${c.name}: the message says why`);
        assert.ok(!r.events.some((e) => e.resourcePreEvent?.metadata.type === STEP), `${c.name}: no step ran`);
        assert.equal((await kv(REDIS_PATH)).version, before.version, `${c.name}: the store is unchanged`);
        assert.equal(redisAuthOk(current), true, `${c.name}: the source still accepts the current secret`);
        await consumersHold("redis", current);
    }
    ws.patchSecret(REDIS, { generation: redisGeneration, store: good });
});

test("leak scan: no secret or token in output, events, state, ps, the audit logs, or OpenBao's audit log and storage", () => {
    scanForLeaks(ws);
    const b = bao();
    const auditLog = fs.readFileSync(b.auditLog, "utf8");
    assert.ok(auditLog.length > 0 && auditLog.includes("hmac-sha256:"), "OpenBao's audit device logged the run, values as HMACs");
    assert.ok(auditLog.includes(REDIS_PATH), "the audit log covers the rotation's requests");
    const storage: { file: string; text: string }[] = [];
    const walk = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const f = path.join(d, e.name);
            if (e.isDirectory()) walk(f);
            else storage.push({ file: f, text: fs.readFileSync(f).toString("latin1") });
        }
    };
    walk(b.dataDir);
    assert.ok(storage.length > 0, "OpenBao's storage was read");
    for (const secret of secretsSeen) {
        assert.ok(!auditLog.includes(secret), "no secret or token in OpenBao's audit log");
        for (const s of storage) assert.ok(!s.text.includes(secret), `no secret or token in OpenBao's storage (${s.file})`);
    }
});
