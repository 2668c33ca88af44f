// The generators a server or a person supplies and the source a person
// changes, each against a stand-in of what it talks to: the
// vault-password-policy generator's pre-flight and its step's HTTP client
// against a fake Vault API; the manual generator's rules, its step reading
// bin/rotate's socket (cli/entry.ts) and the probe the program asks; the
// manual source's steps reading the audit log for their confirmation; and
// which step `bin/rotate confirm` finds waiting.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { generatedStep, generatorOf, generatorProblems, generatorSchema } from "../../generators";
import { enteredProblems } from "../../generators/manual";
import { entryOffered } from "../../adapters/resolve";
import { serveEntered } from "../../cli/entry";
import { waitingStep } from "../../cli/confirm";
import { sourceSchema, sourceScripts } from "../../sources";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "person-policy-"));
const secret = { name: "app-key", type: "api-token" as const };
const run = (script: string, env: Record<string, string | undefined> = {}) =>
    spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, ...env }, input: "" });
/** The same, without blocking this process: the fake server and bin/rotate's socket answer from here. */
function runAsync(script: string, env: Record<string, string | undefined> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        const child = spawn("bash", ["-c", script], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("close", (status) => resolve({ status, stdout, stderr }));
    });
}

/** A fake Vault API: capabilities per token, and a password policy `p1` that draws PASSWORD. */
const PASSWORD = "Drawn-by-the-policy-0123456789";
let server: http.Server;
let address = "";
const capabilities: Record<string, string[]> = { "good-token": ["read"], "weak-token": ["deny"] };
before(async () => {
    server = http.createServer((req, res) => {
        const token = String(req.headers["x-vault-token"] ?? "");
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
            const reply = (status: number, doc: object) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(doc));
            if (!(token in capabilities)) return reply(403, { errors: ["permission denied"] });
            if (req.url === "/v1/sys/capabilities-self") {
                const [p] = JSON.parse(body).paths;
                return reply(200, { capabilities: capabilities[token], [p]: capabilities[token] });
            }
            const m = /^\/v1\/sys\/policies\/password\/([^/]+)\/generate$/.exec(req.url ?? "");
            if (!m || !capabilities[token].includes("read")) return reply(403, { errors: ["permission denied"] });
            return m[1] === "p1" ? reply(200, { data: { password: PASSWORD } }) : reply(404, { errors: ["policy does not exist"] });
        });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
    server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
});

function tokenFile(name: string, token: string, mode = 0o600): string {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, `${token}\n`, { mode });
    fs.chmodSync(f, mode);
    return f;
}

const policy = (over: object) => generatorSchema.parse({ kind: "vault-password-policy", policy: "p1", address, ...over });
const AT = "rotation:secrets.app-key.generator";

test("vault-password-policy: the pre-flight names the secret, field and policy for a token that may not read generate, a missing policy, a bad token", async () => {
    const kind = generatorOf("vault-password-policy");
    const ask = (g: ReturnType<typeof policy>) => kind.ask!(g, secret, AT);
    assert.deepEqual(await ask(policy({ tokenFile: tokenFile("good", "good-token") })), []);
    assert.deepEqual(await ask(policy({ tokenFile: tokenFile("weak", "weak-token") })), [
        `${AT}.tokenFile: app-key: password policy "p1" at ${address}: the token may not read sys/policies/password/p1/generate (its capabilities there: deny); give its policy: path "sys/policies/password/p1/generate" { capabilities = ["read"] }`,
    ]);
    const [missing] = await ask(policy({ policy: "p2", tokenFile: tokenFile("good", "good-token") }));
    assert.equal(
        missing,
        `${AT}.policy: app-key: password policy "p2" at ${address}: no such password policy on the server (HTTP 404: policy does not exist); define it (bao write sys/policies/password/p2 policy=@rules.hcl) or name another`,
    );
    const [bad] = await ask(policy({ tokenFile: tokenFile("bad", "revoked-token") }));
    assert.match(bad, /^rotation:secrets\.app-key\.generator\.tokenFile: app-key: password policy "p1" at \S+: the token is not valid/);
});

test("vault-password-policy: resolve takes VAULT_ADDR, makes the token file absolute and refuses one others may read or none at all", () => {
    const kind = generatorOf("vault-password-policy");
    const saved = { VAULT_ADDR: process.env.VAULT_ADDR, VAULT_TOKEN: process.env.VAULT_TOKEN };
    try {
        process.env.VAULT_ADDR = address;
        delete process.env.VAULT_TOKEN;
        const g = generatorSchema.parse({ kind: "vault-password-policy", policy: "p1", tokenFile: "good" }) as ReturnType<typeof policy>;
        tokenFile("good", "good-token");
        assert.deepEqual(kind.resolve!(g, tmp, AT), []);
        assert.equal((g as { address?: string }).address, address);
        assert.equal((g as { tokenFile?: string }).tokenFile, path.join(tmp, "good"));
        tokenFile("open", "good-token", 0o644);
        assert.deepEqual(kind.resolve!(generatorSchema.parse({ kind: "vault-password-policy", policy: "p1", tokenFile: "open" }), tmp, AT), [
            `${AT}.tokenFile: ${path.join(tmp, "open")} may be read by others (mode 644): chmod 600 '${path.join(tmp, "open")}'`,
        ]);
        assert.deepEqual(kind.resolve!(generatorSchema.parse({ kind: "vault-password-policy", policy: "p1" }), tmp, AT), [
            `${AT}.tokenFile: no token: set tokenFile (a 0600 file) or VAULT_TOKEN`,
        ]);
    } finally {
        for (const [k, v] of Object.entries(saved))
            if (v === undefined) delete process.env[k];
            else process.env[k] = v;
    }
});

test("vault-password-policy: the step prints the drawn password and nothing else; the token is in no argument; a refusal names the policy", async () => {
    const good = tokenFile("good", "good-token");
    const { args } = generatedStep(policy({ tokenFile: good }), secret, 3) as { args: { title: string; script: string } };
    assert.equal(args.title, "app-key: generate secret g3 (password policy p1)");
    assert.ok(!args.script.includes("good-token"), "the token is read by the step, never written into it");
    const r = await runAsync(args.script);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, PASSWORD);
    const weak = generatedStep(policy({ tokenFile: tokenFile("weak", "weak-token") }), secret, 3).args as { script: string };
    const refused = await runAsync(weak.script);
    assert.equal(refused.status, 1);
    assert.equal(refused.stdout, "");
    assert.match(
        refused.stderr,
        /^password policy "p1" at http:\/\/127\.0\.0\.1:\d+: HTTP 403 \(permission denied\): the token may not read sys\/policies\/password\/p1\/generate\n$/,
    );
    const env = generatedStep(policy({}), secret, 3).args as { script: string };
    assert.equal((await runAsync(env.script, { VAULT_TOKEN: "good-token" })).stdout, PASSWORD, "without tokenFile: VAULT_TOKEN");
});

const manual = (over: object = {}) => generatorSchema.parse({ kind: "manual", minLength: 20, require: ["upper", "numeric"], ...over });

test("manual generator: a typed value is checked against its rules, never quoted; its config checked across fields", () => {
    const g = manual({ pattern: "^vk_[A-Za-z0-9]+$" }) as Parameters<typeof enteredProblems>[0];
    assert.deepEqual(enteredProblems(g, "vk_Abcdefghij0123456789"), []);
    const short = "vk_abc";
    const problems = enteredProblems(g, short);
    assert.deepEqual(problems, ["minLength: it has 6 characters, fewer than 20", "require: it has no upper character", "require: it has no numeric character"]);
    assert.ok(!problems.join(" ").includes(short));
    assert.deepEqual(enteredProblems(g, "VK_Abcdefghij0123456789"), ["pattern: it does not match ^vk_[A-Za-z0-9]+$"]);
    assert.deepEqual(enteredProblems(g, "vk_Abcdefghij\t0123456789"), [
        "it holds a control character (a tab, a line break, an escape): one line of printable characters",
        "pattern: it does not match ^vk_[A-Za-z0-9]+$",
    ]);
    assert.deepEqual(enteredProblems(g, ""), ["nothing was entered"]);
    assert.deepEqual(generatorProblems(manual({ minLength: 40, maxLength: 30, pattern: "(" }), "ssh-key"), [
        { path: ["kind"], message: 'an ssh-key secret needs generator kind "command" (a key is not typed)' },
        { path: ["minLength"], message: "must not be more than maxLength (30)" },
        { path: ["pattern"], message: "is not a regular expression: Invalid regular expression: /(/u: Unterminated group" },
    ]);
});

test("manual generator: the step takes the value from bin/rotate's socket for its own generation only; without one it says what to do", async () => {
    const { args, nothing } = generatedStep(manual(), secret, 4) as { args: { title: string; script: string }; nothing: string };
    assert.equal(args.title, "app-key: take the entered secret g4 (manual)");
    assert.equal(nothing, "app-key: no value was entered");
    const none = run(args.script, { ROTATION_ENTRY_SOCKET: undefined });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /^app-key generation 4 has generator kind "manual" and no value was entered for it: only bin\/rotate can ask for it/);

    const value = "Typed-Value-0123456789-XYZ";
    const entry = await serveEntered(new Map([["app-key", value]]), [{ secret: "app-key", generation: 4 }]);
    const socket = process.env.ROTATION_ENTRY_SOCKET!;
    try {
        assert.equal(fs.statSync(path.dirname(socket)).mode & 0o777, 0o700, "its directory is private");
        assert.equal(fs.statSync(socket).mode & 0o777, 0o600);
        assert.ok(!args.script.includes(value));
        const r = await runAsync(args.script);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout, value);
        const other = generatedStep(manual(), secret, 5).args as { script: string };
        const wrong = await runAsync(other.script);
        assert.equal(wrong.status, 1);
        assert.equal(wrong.stderr, "bin/rotate holds no value for app-key generation 5 in this run\n");
        assert.equal(await entryOffered(socket, "app-key", 4), true);
        assert.equal(await entryOffered(socket, "app-key", 5), false);
    } finally {
        entry.close();
    }
    assert.equal(process.env.ROTATION_ENTRY_SOCKET, undefined);
    assert.ok(!fs.existsSync(path.dirname(socket)), "the directory is gone with the run");
    assert.equal(await entryOffered(socket, "app-key", 4), false);
});

test("manual source: each step a person does waits (exit 75, what to do) until the audit log holds its confirmation", () => {
    const log = path.join(tmp, "audit.log");
    fs.writeFileSync(log, "");
    const src = sourceSchema.parse({ kind: "manual", grant: "activate the new key in the console", revoke: "delete the old key there", test: "true" });
    const s = sourceScripts(src as never, { generation: 4, secretName: "app-key", stack: "prod", auditLog: log });
    const grant = run(s.grant);
    assert.equal(grant.status, 75);
    assert.equal(
        grant.stderr,
        "awaiting a person: activate the new key in the console (app-key generation 4); once it is done: bin/rotate confirm --stack prod --secret app-key --step grant --yes\n",
    );
    const line = { stack: "prod", secret: "app-key", generation: 4, phase: "confirmed", step: "grant", confirmedBy: "alice@ops", time: "T", outcome: "ok" };
    fs.appendFileSync(log, `${JSON.stringify({ ...line, stack: "dev" })}\n${JSON.stringify({ ...line, generation: 3 })}\n`);
    assert.equal(run(s.grant).status, 75, "another stack's or generation's confirmation does not count");
    fs.appendFileSync(log, `${JSON.stringify(line)}\n`);
    const ok = run(s.grant);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, "grant of app-key g4 confirmed by alice@ops at T\n");
    assert.equal(run(s.revoke).status, 75, "the revocation waits for its own confirmation");
    assert.match(run(s.withdraw).stderr, /^awaiting a person: withdraw the new secret \(undo: activate the new key in the console\) \(app-key generation 4\)/);
    // The engine deletes generation 4's grant once generation 5 revoked it: nobody has anything to do.
    fs.appendFileSync(log, `${JSON.stringify({ stack: "prod", secret: "app-key", generation: 5, phase: "revoked", outcome: "ok" })}\n`);
    const gone = run(s.withdraw);
    assert.equal(gone.status, 0, gone.stderr);
    assert.equal(gone.stdout, "app-key g4 was revoked by generation 5\n");
});

test("bin/rotate confirm: the step waiting is the last refused as waiting and not confirmed or done since", () => {
    const base = { stack: "prod", secret: "app-key" };
    const waiting = (phase: string, generation: number) => ({
        ...base,
        phase,
        generation,
        outcome: "failed",
        detail: "x: exited with code 75: awaiting a person: ...",
    });
    assert.equal(waitingStep([], "prod", "app-key"), undefined);
    assert.deepEqual(waitingStep([waiting("granted", 4)], "prod", "app-key"), { step: "grant", generation: 4 });
    assert.equal(waitingStep([waiting("granted", 4)], "dev", "app-key"), undefined);
    const confirmed = { ...base, phase: "confirmed", step: "grant", generation: 4, outcome: "ok" };
    assert.equal(waitingStep([waiting("granted", 4), confirmed], "prod", "app-key"), undefined);
    assert.deepEqual(
        waitingStep([waiting("granted", 4), confirmed, { ...base, phase: "granted", generation: 4, outcome: "ok" }, waiting("revoked", 4)], "prod", "app-key"),
        {
            step: "revoke",
            generation: 4,
        },
    );
    assert.equal(waitingStep([{ ...base, phase: "granted", generation: 4, outcome: "failed", detail: "connection refused" }], "prod", "app-key"), undefined);
});
