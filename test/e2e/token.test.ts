// The dev stack's API token (http-token source: the lab's token API) and its
// `command`-source key rotating through bin/rotate and the real engine, on a
// copy of the project holding the dev stack's own entries: bad input refused
// before anything is revoked, the dual-active window seen from inside (the
// revocation held where it reads the admin token), the token API down at the
// revocation and the resume, and the leak scan over the token API's log and
// storage too.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { after, before, test } from "node:test";
import yaml from "js-yaml";
import { assertAuditChain, remember, secretsSeen } from "./checks";
import { hosts, lab, LAB_DIR, labCtl, ROOT, type RunResult, sha256, storeHas, storeValue, Workspace } from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const TOKEN = "app-token";
const KEY = "app-api-key";
const dev = (yaml.load(fs.readFileSync(path.join(ROOT, "stacks/templates/Pulumi.dev.yaml"), "utf8")) as { config: Record<string, any> }).config;
let ws: Workspace;
/** The workspace's copy of the admin token, which the hold below swaps for a FIFO. */
let adminFile: string;

const api = () => lab().tokenapi;
const apiLog = () => fs.readFileSync(api().log, "utf8");
const out = (r: RunResult) => r.stdout + r.stderr;
const fp = (t: string) => sha256(t).slice(0, 16);

async function tokenStatus(token: string): Promise<number> {
    const r = await fetch(api().testUrl, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) }).catch(() => undefined);
    return r?.status ?? 0;
}

/** Every token consumer answers /healthz 200 holding `value`. */
async function tokenConsumersHold(value: string): Promise<void> {
    for (const h of lab().hosts) {
        const [health, held] = await Promise.all(
            ["healthz", "secret-fingerprint"].map((p) =>
                fetch(`${h.apps.token.url}/${p}`).then(async (r) => ({ status: r.status, body: (await r.text()).trim() })),
            ),
        );
        assert.equal(health.status, 200, `token-${h.name} is healthy: ${health.body}`);
        assert.equal(held.body, sha256(value), `token-${h.name} holds the expected token`);
    }
}

/** The rotation config of this stack: the dev stack's hosts and two secrets, at their current generations. */
function configure(change: (secrets: Record<string, any>) => void = () => {}): void {
    let current: Record<string, any> | undefined;
    try {
        current = ws.stackConfig()?.["rotation:secrets"];
    } catch {
        // no stack file yet
    }
    const secrets = structuredClone(current ?? { [TOKEN]: dev["rotation:secrets"][TOKEN], [KEY]: dev["rotation:secrets"][KEY] });
    if (!current) secrets[TOKEN].source.adminTokenFile = adminFile;
    change(secrets);
    ws.setSecrets([], { hosts: dev["rotation:hosts"], secrets });
}

/**
 * Holds the revocation of generation `g - 1` where it reads the admin token:
 * once the grant of `g` created its token at the API (its one read of the
 * admin token is over), the file becomes a FIFO, so the revocation's read
 * waits for `atRevocation` to finish; the gate and the revocation follow each
 * other faster than anything could be watched from outside.
 */
function holdRevocation(g: number, atRevocation: () => Promise<void>): { reached: () => boolean; release: () => void } {
    const admin = fs.readFileSync(adminFile, "utf8");
    let state: "waiting" | "held" | "reached" | "done" = "waiting";
    const restore = () => {
        fs.writeFileSync(`${adminFile}.tmp`, admin, { mode: 0o600 });
        fs.renameSync(`${adminFile}.tmp`, adminFile);
    };
    const granted = () => JSON.parse(fs.readFileSync(api().storage, "utf8")).tokens.some((t: { name: string }) => t.name === `${TOKEN}-g${g}`);
    const timer = setInterval(() => {
        if (state !== "waiting" || !granted()) return;
        fs.rmSync(adminFile);
        assert.equal(spawnSync("mkfifo", ["-m", "600", adminFile]).status, 0);
        state = "held";
        void fs.promises.open(adminFile, "w").then(async (fifo) => {
            if (state !== "held") return fifo.close();
            state = "reached";
            try {
                await atRevocation();
            } finally {
                await fifo.writeFile(admin).finally(() => fifo.close());
                restore();
                state = "done";
            }
        });
    }, 50);
    return {
        reached: () => state === "reached" || state === "done",
        release: () => {
            clearInterval(timer);
            if (state === "held") {
                // Nobody came to read: open the other end so the pending open returns, then put the file back.
                state = "done";
                fs.closeSync(fs.openSync(adminFile, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
                restore();
            }
        },
    };
}

before(() => {
    labCtl("up", "--reset");
    ws = new Workspace("token");
    // The dev stack's entries name the lab by relative paths (.lab/...), as the project's own stack does.
    fs.symlinkSync(LAB_DIR, path.join(ws.dir, ".lab"));
    adminFile = path.join(ws.dir, "tokenapi-admin.token");
    fs.copyFileSync(api().adminTokenFile, adminFile);
    fs.chmodSync(adminFile, 0o600);
    remember(storeValue(TOKEN), storeValue(KEY), fs.readFileSync(adminFile, "utf8").trim());
    configure();
});

after(() => labCtl("start-tokenapi"));

test("the lab's token API: admin token 0600; POST 201, DELETE 204 then 404, GET 200 live / 401 otherwise; a wrong admin token 401", async () => {
    assert.equal(fs.statSync(api().adminTokenFile).mode & 0o777, 0o600);
    const admin = fs.readFileSync(api().adminTokenFile, "utf8").trim();
    const t = `probe-${sha256(String(Math.random())).slice(0, 32)}`;
    remember(t);
    const call = (method: string, url: string, bearer: string, body?: object) =>
        fetch(url, { method, headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" }, body: body && JSON.stringify(body) }).then(
            (r) => r.status,
        );
    assert.equal(await call("POST", api().createUrl, "not-the-admin-token", { name: "probe", token: t }), 401);
    assert.equal(await call("POST", api().createUrl, admin, { name: "probe", token: t }), 201);
    assert.equal(await tokenStatus(t), 200);
    assert.equal(await tokenStatus(storeValue(TOKEN)), 200, "generation 0 is live");
    assert.equal(await tokenStatus("never-issued-token-0123456789"), 401);
    const del = api().deleteUrl.replace("{fingerprint}", fp(t));
    assert.equal(await call("DELETE", del, "not-the-admin-token"), 401);
    assert.equal(await call("DELETE", del, admin), 204);
    assert.equal(await call("DELETE", del, admin), 404);
    assert.equal(await tokenStatus(t), 401);
    assert.equal(fs.statSync(api().storage).mode & 0o777, 0o600);
});

test("bad input: a delete URL without {fingerprint}, a wrong admin token, a create URL answering 500: each named, nothing revoked", async (t) => {
    const old = storeValue(TOKEN);
    const logBefore = apiLog().length;
    const good = ws.stackConfig()["rotation:secrets"][TOKEN].source;
    t.after(() => configure((s) => (s[TOKEN].source = good)));

    configure((s) => (s[TOKEN].source.deleteUrl = `${api().url}/tokens/current`));
    const noFp = ws.rotate(["start", "--secret", TOKEN, "--yes"]);
    assert.equal(noFp.code, 2, out(noFp));
    assert.match(out(noFp), /rotation:secrets\.app-token\.source\.deleteUrl: must contain \{fingerprint\}/);

    const wrongFile = path.join(ws.dir, "wrong-admin.token");
    fs.writeFileSync(wrongFile, "definitely-not-the-admin-token\n", { mode: 0o600 });
    configure((s) => (s[TOKEN].source = { ...good, adminTokenFile: wrongFile }));
    const wrong = ws.rotate(["start", "--secret", TOKEN, "--yes"]);
    assert.equal(wrong.code, 3, out(wrong));
    assert.ok(
        out(wrong).includes(
            `app-token source: ${api().deleteUrl} (source.deleteUrl) refuses the admin token in ${wrongFile} (source.adminTokenFile): HTTP 401`,
        ),
        out(wrong),
    );
    assert.equal(ws.stackConfig()["rotation:secrets"][TOKEN].generation, 0, "refused before the generation moved");

    // A real server that answers 500 to everything, on this process's loopback.
    const seen: string[] = [];
    const broken = http.createServer((req, res) => {
        seen.push(`${req.method} ${req.url}`);
        res.writeHead(500).end("boom");
    });
    await new Promise<void>((r) => broken.listen(0, "127.0.0.1", r));
    const createUrl = `http://127.0.0.1:${(broken.address() as { port: number }).port}/tokens`;
    configure((s) => (s[TOKEN].source = { ...good, createUrl }));
    const r500 = await ws.rotateSampled(["start", "--secret", TOKEN, "--yes"]).finally(() => broken.close());
    assert.equal(r500.code, 1, out(r500));
    assert.ok(out(r500).includes(`app-token: grant g1 at the http-token source (dual-active)`), out(r500));
    assert.ok(out(r500).includes(`http-token source of app-token: POST ${createUrl} (source.createUrl) answered 500`), out(r500));
    assert.deepEqual(seen, ["POST /tokens"], "one create request, no retry storm");
    remember(storeValue(TOKEN, "staged"));

    // Nothing was revoked: the old token works at the API and at every consumer.
    assert.equal(await tokenStatus(old), 200);
    await tokenConsumersHold(old);
    assert.doesNotMatch(apiLog().slice(logBefore), / DELETE \/tokens\/[0-9a-f]{16} 204 /, "no DELETE reached the token API");
});

test("bin/rotate start: in the dual-active window old and new token answer 200; after it the old one 401, the new one 200, every consumer healthy", async () => {
    const old = storeValue(TOKEN);
    let inWindow: { old: number; fresh: number } | undefined;
    // The failed g1 above is replaced: this start rotates to g2.
    const hold = holdRevocation(2, async () => {
        const fresh = storeValue(TOKEN, "staged");
        remember(fresh);
        inWindow = { old: await tokenStatus(old), fresh: await tokenStatus(fresh) };
        await tokenConsumersHold(fresh);
    });
    const r = await ws.rotateSampled(["start", "--secret", TOKEN, "--yes"]).finally(hold.release);
    assert.equal(r.code, 0, out(r));
    assert.ok(hold.reached(), "the revocation was held where it reads the admin token");
    assert.deepEqual(inWindow, { old: 200, fresh: 200 }, "both tokens answered 200 while the revocation waited");

    const fresh = storeValue(TOKEN);
    assert.notEqual(fresh, old);
    assert.equal(storeHas(TOKEN, "staged"), false);
    assert.equal(await tokenStatus(old), 401, "the old token is revoked");
    assert.equal(await tokenStatus(fresh), 200);
    await tokenConsumersHold(fresh);
    const log = apiLog();
    assert.match(log, new RegExp(`POST /tokens 201 \\d+ms name=${TOKEN}-g2 fp=${fp(fresh)}`), "the grant created g2's token");
    assert.match(log, new RegExp(`DELETE /tokens/${fp(old)} 204 \\d+ms name=${TOKEN}-g0`), "the revocation deleted g0's token by its fingerprint");
});

test("the token API down at the revocation: the run fails naming it, both tokens stay valid (kept across the API's restart); resume completes", async () => {
    const old = storeValue(TOKEN);
    const hold = holdRevocation(3, async () => {
        remember(storeValue(TOKEN, "staged"));
        labCtl("stop-tokenapi");
    });
    const r = await ws.rotateSampled(["start", "--secret", TOKEN, "--yes"]).finally(hold.release);
    assert.ok(hold.reached(), "the token API was stopped while the revocation waited");
    assert.equal(r.code, 5, out(r));
    assert.match(
        out(r),
        new RegExp(
            `app-token: revoke g2 at the http-token source: exited with code 1: http-token source of app-token: DELETE ${api().url}/tokens/${fp(old)} \\(source\\.deleteUrl\\) answered 000 \\(curl: connection refused\\)`,
        ),
    );

    labCtl("start-tokenapi");
    const fresh = storeValue(TOKEN, "staged");
    assert.equal(await tokenStatus(old), 200, "the old token is still valid");
    assert.equal(await tokenStatus(fresh), 200, "the new one too");
    await tokenConsumersHold(fresh);

    const resumed = ws.rotate(["resume", "--secret", TOKEN, "--yes"]);
    assert.equal(resumed.code, 0, out(resumed));
    assert.equal(storeValue(TOKEN), fresh);
    assert.equal(await tokenStatus(old), 401);
    assert.equal(await tokenStatus(fresh), 200);
    await tokenConsumersHold(fresh);
});

test("command source: the dev stack's key list rotates through the operator's own commands; its test command rejects the old key", () => {
    const src = ws.stackConfig()["rotation:secrets"][KEY].source;
    const accepted = (key: string) => spawnSync("bash", ["-c", src.test], { input: `${key}\0` }).status === 0;
    const old = storeValue(KEY);
    assert.equal(accepted(old), true, "generation 0 is on the list");
    const r = ws.rotate(["start", "--secret", KEY, "--yes"]);
    assert.equal(r.code, 0, out(r));
    const fresh = storeValue(KEY);
    remember(fresh);
    assert.notEqual(fresh, old);
    assert.equal(accepted(old), false, "the old key is rejected");
    assert.equal(accepted(fresh), true, "the new key is accepted");
    assert.deepEqual(fs.readFileSync(lab().apiKeys.file, "utf8").trim().split("\n"), [sha256(fresh)], "the list holds the new key's hash only");
    for (const h of hosts()) assert.equal(fs.readFileSync(path.join(h.etcDir, "api-key"), "utf8"), fresh, `${h.name} holds the new key`);
    assert.ok(ws.auditLines().some((l) => l.secret === KEY && l.phase === "completed" && l.outcome === "ok"));
});

test("the audit log of every run above is one intact hash chain", () => assertAuditChain(ws));

test("no token leaked: output, ps, state, audit log, and the token API's log and storage, the key list and the consumers' logs", () => {
    scanForLeaks(ws);
    const files = [api().log, api().storage, lab().apiKeys.file, ...hosts().map((h) => path.join(h.logDir, "token-app.log"))];
    for (const f of files) {
        const text = fs.readFileSync(f, "utf8");
        assert.ok(text.length > 0, `${f} was read`);
        for (const secret of secretsSeen) assert.ok(!text.includes(secret), `a secret value appears in ${f}`);
    }
});
