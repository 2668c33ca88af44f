// A CI consumer (consumers/giteaActions.ts) against the lab's real Gitea
// 1.26.0: the Redis password rotates to the three hosts' apps and into a
// Gitea repository's Actions secret through the real engine. Gitea cannot
// give a secret back, so what it holds is read from its own database and
// decrypted with its SECRET_KEY (Gitea's AES-CFB scheme, modules/secret);
// its rollout step (PUT answered 201/204, the secret listed, the generation
// variable read back, the workflow dispatched) ends before the revocation
// starts. No runner can be had here: the dispatched run stays queued, and the
// consumer's health is the API's confirmation. Gitea answering 500 to the
// write (a proxy in front), or stopped, fails that consumer, named, with
// nothing revoked, and a resume completes once it is fixed; a rollback puts
// the old value back; the leak scan reads Gitea's database, logs and work dir.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createDecipheriv, createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { assertRevokeAfterEveryConsumer, assertSucceeded, remember } from "./checks";
import { committedGeneration, hosts, lab, labCtl, redisAuthOk, redisStack, type RunResult, storeValue, WORK, Workspace } from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const SECRET = "app-redis";
const CI = "ci";
const PROXY = { host: "127.0.1.51", port: 3000 };
let ws: Workspace;
let proxy: ChildProcess;
/** While this file exists, the proxy answers 500 to every write of an Actions secret. */
let failFlag: string;
const failWrites = (on: boolean) => (on ? fs.writeFileSync(failFlag, "") : fs.rmSync(failFlag, { force: true }));

/**
 * A proxy in front of Gitea, in a process of its own (bin/rotate runs
 * synchronously from the test): the consumer talks to it, so a test can make
 * Gitea's answer a 500; with Gitea down it answers 502.
 */
const PROXY_CODE = `
const http = require("http"), fs = require("fs");
const [target, host, port, flag] = process.argv.slice(1);
const t = new URL(target);
http.createServer((req, res) => {
  if (fs.existsSync(flag) && req.method === "PUT" && (req.url || "").includes("/actions/secrets/")) {
    req.resume();
    res.writeHead(500, { "content-type": "application/json" }).end('{"message":"injected by the test proxy"}');
    return;
  }
  const fwd = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
    res.writeHead(r.statusCode || 502, r.headers);
    r.pipe(res);
  });
  fwd.on("error", () => res.writeHead(502).end());
  req.pipe(fwd);
}).listen(+port, host, () => console.log("listening"));
`;

const g = () => lab().gitea;
const out = (r: RunResult) => r.stdout + r.stderr;
const sshConsumers = () => hosts().map((h) => `redis-${h.name}`);

/** What Gitea's database holds for the repository's secret, decrypted as Gitea does (SHA-256 of SECRET_KEY, AES-CFB, IV first, base64 inside). */
function giteaHolds(): string {
    const db = spawnSync("sqlite3", ["-readonly", g().database, `select data from secret where name = '${g().secret}'`], { encoding: "utf8" });
    assert.equal(db.status, 0, db.stderr);
    const hex = db.stdout.trim();
    assert.match(hex, /^[0-9a-f]+$/, "one encrypted secret in Gitea's database");
    const key = /^SECRET_KEY\s*=\s*(\S+)$/m.exec(fs.readFileSync(g().config, "utf8"))![1];
    const raw = Buffer.from(hex, "hex");
    const d = createDecipheriv("aes-256-cfb", createHash("sha256").update(key).digest(), raw.subarray(0, 16));
    const b64 = Buffer.concat([d.update(raw.subarray(16)), d.final()]).toString("utf8");
    return Buffer.from(b64, "base64").toString("utf8");
}

/** A GET of Gitea's API as the lab's admin (the token in a header, in this process). */
async function giteaGet(p: string): Promise<{ status: number; body: any }> {
    const token = fs.readFileSync(g().tokenFile, "utf8").trim();
    const r = await fetch(`${g().url}/api/v1${p}`, { headers: { authorization: `token ${token}` }, signal: AbortSignal.timeout(5000) });
    return { status: r.status, body: await r.json().catch(() => undefined) };
}

const generationVariable = async () => (await giteaGet(`/repos/${g().repo}/actions/variables/REDIS_GENERATION`)).body?.data;

function ciConsumer() {
    return {
        name: CI,
        kind: "gitea-actions",
        url: `http://${PROXY.host}:${PROXY.port}`,
        repo: g().repo,
        secret: g().secret,
        generationVariable: "REDIS_GENERATION",
        tokenFile: g().tokenFile,
        dispatch: { workflow: g().workflow, ref: "main" },
        timeoutSeconds: 10,
    };
}

const up = () => ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });

before(async () => {
    labCtl("up", "--reset", "--with", "gitea");
    assert.ok(g(), "the lab runs Gitea (bin/setup-toolchain builds it into .tools/gitea)");
    failFlag = path.join(WORK, "gitea-fail-writes");
    failWrites(false);
    proxy = spawn(process.execPath, ["-e", PROXY_CODE, g().url, PROXY.host, String(PROXY.port), failFlag], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
        proxy.stdout!.once("data", () => resolve());
        proxy.once("exit", (code) => reject(new Error(`the test proxy exited (${code})`)));
    });
    ws = new Workspace("gitea");
    remember(storeValue(SECRET));
    ws.setConfig({ ...redisStack(0), consumers: [...(redisStack(0).consumers as object[]), ciConsumer()] });
});

after(() => {
    failWrites(false);
    labCtl("start-gitea");
    for (const h of hosts()) labCtl("fail-health", h.name, "off");
    proxy?.kill();
});

test("the Redis password rotates to the hosts and into Gitea's Actions secret before the revocation; check says write-only", async () => {
    const old = storeValue(SECRET);
    assert.equal(giteaHolds(), old, "Gitea holds generation 0 before the rotation");
    const runsBefore = (await giteaGet(`/repos/${g().repo}/actions/runs`)).body?.total_count ?? 0;
    ws.patchConfig({ generation: 1 });
    const r = await up();
    assertSucceeded(r, "up");
    // Gitea's rollout step (its PUT confirmed, listed, the variable read back) ended before the revocation started.
    assertRevokeAfterEveryConsumer(r, SECRET, [...sshConsumers(), CI]);
    const fresh = storeValue(SECRET);
    remember(fresh);
    assert.notEqual(fresh, old);
    assert.equal(giteaHolds(), fresh, "Gitea's database holds the new secret");
    assert.equal(await generationVariable(), "1", "the generation variable reads back 1");
    const runs = (await giteaGet(`/repos/${g().repo}/actions/runs`)).body;
    assert.equal(runs?.total_count, runsBefore + 1, "the workflow was dispatched once");
    assert.equal(runs.workflow_runs[0].event, "workflow_dispatch");
    assert.equal(redisAuthOk(old), false, "the old password is revoked");

    const check = ws.rotate(["check"]);
    assert.equal(check.code, 0, out(check));
    assert.match(check.stdout, /app-redis ci\s+write-only: Gitea cannot give an Actions secret back; variable REDIS_GENERATION says generation 1/);
    assert.doesNotMatch(check.stdout, /app-redis ci\s+current/);
});

test("Gitea answering 500 to the write fails consumer ci, named, nothing revoked; resumed once fixed, the rotation completes", async () => {
    const old = storeValue(SECRET);
    failWrites(true);
    ws.patchConfig({ generation: 2 });
    const failed = await up();
    assert.notEqual(failed.code, 0, "the update fails");
    assert.match(
        out(failed),
        /app-redis → consumer ci: Gitea Actions secret REDIS_PASSWORD of lab-admin\/app: PUT g2 answered HTTP 500: injected by the test proxy/,
    );
    assert.equal(redisAuthOk(old), true, "nothing is revoked: the old password still works");
    assert.equal(committedGeneration(SECRET), 1, "the gate never opened");
    assert.equal(giteaHolds(), old, "Gitea still holds generation 1");
    remember(storeValue(SECRET, "staged"));

    failWrites(false);
    const resumed = await up();
    assertSucceeded(resumed, "resume");
    const fresh = storeValue(SECRET);
    remember(fresh);
    assert.equal(giteaHolds(), fresh, "after the resume Gitea holds generation 2");
    assert.equal(redisAuthOk(old), false);
});

test("Gitea stopped: the pre-flight names consumer ci and nothing of the rotation runs; started again, the resume completes", async () => {
    const old = storeValue(SECRET);
    labCtl("stop-gitea");
    ws.patchConfig({ generation: 3 });
    const failed = await up();
    assert.notEqual(failed.code, 0);
    assert.match(out(failed), /app-redis consumer ci: Gitea http:\/\/127\.0\.1\.51:3000: cannot reach Gitea|app-redis consumer ci: .*HTTP 502/);
    assert.equal(redisAuthOk(old), true, "nothing is revoked");
    assert.equal(storeValue(SECRET), old, "nothing was staged or promoted");
    labCtl("start-gitea");
    const resumed = await up();
    assertSucceeded(resumed, "resume");
    const fresh = storeValue(SECRET);
    remember(fresh);
    assert.equal(giteaHolds(), fresh);
    assert.equal(await generationVariable(), "3");
});

test("a rollback before the revocation puts the old value back into Gitea", async () => {
    const old = storeValue(SECRET);
    const failing = hosts()[0];
    labCtl("fail-health", failing.name, "on");
    ws.patchConfig({ generation: 4 });
    const failed = await up();
    assert.notEqual(failed.code, 0);
    const staged = storeValue(SECRET, "staged");
    remember(staged);
    assert.equal(giteaHolds(), staged, "Gitea got generation 4 before the host's failure stopped the rotation");
    assert.equal(await generationVariable(), "4");
    labCtl("fail-health", failing.name, "off");
    ws.patchConfig({ mode: "rollback" });
    const back = await up();
    assertSucceeded(back, "rollback");
    assert.equal(giteaHolds(), old, "Gitea holds generation 3 again");
    assert.equal(await generationVariable(), "3", "the generation variable says 3 again");
    assert.equal(redisAuthOk(old), true);
});

test("no secret value in Gitea's database, logs or work dir, nor anywhere the engine and the tool wrote", () => {
    const files: { label: string; text: string }[] = [];
    const walk = (dir: string) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
            const p = path.join(dir, e.name);
            if (e.isDirectory()) walk(p);
            else if (e.isFile() && fs.statSync(p).size < 64 * 1024 * 1024)
                files.push({ label: `gitea ${path.relative(g().workDir, p)}`, text: fs.readFileSync(p, "latin1") });
        }
    };
    walk(g().workDir);
    files.push({ label: "gitea's output", text: fs.readFileSync(g().out, "latin1") });
    assert.ok(
        files.some((f) => f.label.endsWith("gitea.db")),
        "Gitea's database is scanned",
    );
    assert.ok(
        files.some((f) => /log\/.*\.log$/.test(f.label)),
        "Gitea's logs are scanned",
    );
    scanForLeaks(ws, files);
});
