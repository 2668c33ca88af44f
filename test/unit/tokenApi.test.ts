// The lab's token API (lab/tokenapi/server.js) and the consumer app's `token`
// kind, each run for real on a free loopback port: the API's contract, what
// it keeps across a restart, and that neither its storage nor any log holds
// a token; the consumer's /healthz turning 503 with AUTH_FAILED once its
// token is revoked.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";

const LAB = path.resolve(__dirname, "../../lab");
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const token = () => randomBytes(24).toString("base64url");

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tokenapi-"));
const files = { admin: path.join(dir, "admin.token"), seed: path.join(dir, "seed.token"), log: path.join(dir, "api.log"), data: path.join(dir, "data") };
const admin = token();
const seed = token();
const made: string[] = [];
let api: ChildProcess | undefined;
let base = "";

async function waitFor<T>(what: string, probe: () => T | undefined, ms = 5000): Promise<T> {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
        const v = probe();
        if (v !== undefined) return v;
    }
    throw new Error(`timed out waiting for ${what}`);
}

/** Starts the API on a free port; its log's last "listening" line names the port. */
async function startApi(): Promise<void> {
    const before = fs.existsSync(files.log) ? fs.readFileSync(files.log, "utf8").length : 0;
    api = spawn(
        "node",
        [
            path.join(LAB, "tokenapi/server.js"),
            "--listen",
            "127.0.0.1:0",
            "--dir",
            files.data,
            "--admin-token-file",
            files.admin,
            "--log",
            files.log,
            "--seed-file",
            files.seed,
            "--seed-name",
            "seed-g0",
        ],
        { stdio: "ignore" },
    );
    const port = await waitFor("the API to listen", () => {
        const m = fs.existsSync(files.log) ? /listening on 127\.0\.0\.1:(\d+)/.exec(fs.readFileSync(files.log, "utf8").slice(before)) : null;
        return m ? m[1] : undefined;
    });
    base = `http://127.0.0.1:${port}`;
}

async function stopApi(): Promise<void> {
    if (!api || api.exitCode !== null) return;
    const gone = new Promise((r) => api!.once("exit", r));
    api.kill("SIGTERM");
    await gone;
}

async function call(method: string, p: string, bearer?: string, body?: unknown): Promise<{ status: number; json: any }> {
    const headers: Record<string, string> = bearer ? { authorization: `Bearer ${bearer}` } : {};
    if (body !== undefined) headers["content-type"] = "application/json";
    const r = await fetch(`${base}${p}`, { method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : undefined };
}

const create = (t: string, name: string, bearer = admin) => call("POST", "/tokens", bearer, { name, token: t });
const whoami = async (t: string) => (await call("GET", "/whoami", t)).status;

before(async () => {
    fs.writeFileSync(files.admin, `${admin}\n`, { mode: 0o600 });
    fs.writeFileSync(files.seed, seed, { mode: 0o600 });
    await startApi();
});

after(async () => {
    await stopApi();
    fs.rmSync(dir, { recursive: true, force: true });
});

test("the seed token (generation 0) is live from the first start; GET /whoami answers 200 for it and 401 otherwise", async () => {
    assert.equal(await whoami(seed), 200);
    assert.deepEqual((await call("GET", "/whoami", seed)).json, { name: "seed-g0" });
    assert.equal(await whoami(token()), 401, "an unknown token");
    assert.equal(await whoami(admin), 401, "the admin token is no API token");
    assert.equal((await call("GET", "/whoami")).status, 401, "no Authorization header");
});

test("POST creates (201, again 200), DELETE by fingerprint revokes (204, then 404); admin calls need the admin token", async () => {
    const t = token();
    made.push(t);
    const c = await create(t, "app-g1");
    assert.equal(c.status, 201);
    assert.deepEqual(c.json, { name: "app-g1", fingerprint: sha256(t).slice(0, 16) });
    assert.equal((await create(t, "app-g1")).status, 200, "a grant run again finds its token live");
    assert.equal(await whoami(t), 200);

    const wrong = token();
    assert.equal((await create(token(), "x", wrong)).status, 401, "POST with a wrong admin token");
    assert.equal((await call("DELETE", `/tokens/${sha256(t).slice(0, 16)}`, wrong)).status, 401, "DELETE with a wrong admin token");
    assert.equal((await call("DELETE", `/tokens/${sha256(t).slice(0, 16)}`)).status, 401, "DELETE without one");
    assert.equal(await whoami(t), 200, "refused calls revoked nothing");

    assert.equal((await call("POST", "/tokens", admin, "{not json")).status, 400);
    assert.equal((await create("short", "x")).status, 400, "a token under 16 characters");
    assert.equal((await create(token(), "bad name")).status, 400);
    assert.equal((await call("DELETE", "/tokens/xyz", admin)).status, 400, "a fingerprint that is not 16 hex digits");

    assert.equal((await call("DELETE", `/tokens/${sha256(t).slice(0, 16)}`, admin)).status, 204);
    assert.equal(await whoami(t), 401, "a revoked token");
    assert.equal((await call("DELETE", `/tokens/${sha256(t).slice(0, 16)}`, admin)).status, 404, "an unknown fingerprint");
    assert.equal(await whoami(seed), 200, "the other token is untouched");
});

test("tokens survive a restart (the admin token is read once: its file may be gone); the storage is 0600 and holds hashes only", async () => {
    const t = token();
    made.push(t);
    assert.equal((await create(t, "app-g2")).status, 201);
    await stopApi();
    await startApi();
    fs.renameSync(files.admin, `${files.admin}.away`);
    try {
        assert.equal(await whoami(t), 200, "created before the restart, live after it");
        assert.equal(await whoami(made[0]), 401, "revoked before the restart, still revoked");
        assert.deepEqual(
            (await call("GET", "/tokens", admin)).json.tokens.map((x: { name: string }) => x.name),
            ["seed-g0", "app-g2"],
        );
    } finally {
        fs.renameSync(`${files.admin}.away`, files.admin);
    }
    const store = path.join(files.data, "tokens.json");
    assert.equal(fs.statSync(store).mode & 0o777, 0o600);
    const stored = fs.readFileSync(store, "utf8");
    assert.ok(stored.includes(sha256(t)), "the token's hash is stored");
    for (const s of [seed, admin, ...made]) assert.ok(!stored.includes(s), "no token in the storage");
});

test("the request log has one line per request with method, path and status, and no token or admin token", () => {
    const log = fs.readFileSync(files.log, "utf8");
    assert.equal(fs.statSync(files.log).mode & 0o777, 0o600);
    assert.match(log, /POST \/tokens 201 \d+ms name=app-g1 fp=[0-9a-f]{16}/);
    assert.match(log, new RegExp(`DELETE /tokens/${sha256(made[0]).slice(0, 16)} 204 \\d+ms name=app-g1`));
    assert.match(log, /GET \/whoami 401/);
    assert.match(log, /POST \/tokens 401 \d+ms admin=refused/);
    for (const s of [seed, admin, ...made]) assert.ok(!log.includes(s), "no token in the log");
});

test("consumer app, kind token: /healthz 200 with a live token; once revoked, 503 and AUTH_FAILED in its log, never the token", async () => {
    const t = token();
    assert.equal((await create(t, "consumer-g1")).status, 201);
    const config = path.join(dir, "token.env");
    fs.writeFileSync(config, `TOKEN_API_URL=${base}/whoami\nAPI_TOKEN=${t}\n`, { mode: 0o600 });
    const appLog = path.join(dir, "token-app.log");
    const probe = await new Promise<number>((resolve) => {
        const s = require("node:net")
            .createServer()
            .listen(0, "127.0.0.1", () => {
                const p = s.address().port;
                s.close(() => resolve(p));
            });
    });
    const app = spawn("node", [path.join(LAB, "consumer/app.js"), "--kind", "token", "--config", config, "--listen", `127.0.0.1:${probe}`, "--log", appLog], {
        stdio: "ignore",
    });
    try {
        const health = async () => {
            const r = await fetch(`http://127.0.0.1:${probe}/healthz`).catch(() => undefined);
            return r ? { status: r.status, body: (await r.text()).trim() } : undefined;
        };
        let first: { status: number; body: string } | undefined;
        for (let i = 0; i < 100 && !first; i++, await new Promise((r) => setTimeout(r, 50))) first = await health();
        assert.deepEqual(first, { status: 200, body: `ok token accepted by ${base}/whoami` });
        assert.equal((await (await fetch(`http://127.0.0.1:${probe}/secret-fingerprint`)).text()).trim(), sha256(t));

        assert.equal((await call("DELETE", `/tokens/${sha256(t).slice(0, 16)}`, admin)).status, 204);
        assert.deepEqual(await health(), { status: 503, body: "token API answered 401" });
        const log = fs.readFileSync(appLog, "utf8");
        assert.match(log, /AUTH_FAILED token API answered 401/);
        assert.ok(!log.includes(t), "the consumer's log never holds its token");
    } finally {
        app.kill("SIGTERM");
    }
});
