// The generators a person or a server supplies, and the source only a person
// can change, on the lab's Redis with its three consumers, through the real
// engine: the value drawn from the lab's OpenBao password policy (checked
// against the policy's rules in every consumer's config) and the two
// pre-flight refusals (no such policy, a token that may not generate); the
// manual generator typed through a pseudo-terminal (echo off, typeahead
// thrown away) and piped, refused without a value (plain `pulumi up`, no
// terminal and nothing piped, a value against its rules); and a manual
// source whose grant and revocation stop the run with exit 7 until
// `bin/rotate confirm` records them and resumes. The typed values are then
// looked for in the transcripts, the process lists, the state and the logs.
import assert from "node:assert/strict";
import { spawn, execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { before, test } from "node:test";
import yaml from "js-yaml";
import { assertAudit, assertSucceeded, remember } from "./checks";
import { captured, hosts, lab, labCtl, redisAuthOk, redisStack, ROOT, sha256, storeValue, type RunResult, Workspace } from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const REDIS = "app-redis";
const STEP = "rotation:index:Step";
let ws: Workspace;
let generation = 0;
let tokenFile: string;

const bao = () => lab().openbao;
const out = (r: { stdout: string; stderr: string }) => `${r.stdout}\n${r.stderr}`;

/** The lab's Redis rotation with another generator (and source). */
function flat(g: number, generator: object, source?: object): Record<string, unknown> {
    const base = redisStack(g);
    return { ...base, secret: { ...(base.secret as object), generator }, ...(source ? { source } : {}) };
}

const policyGenerator = (over: object = {}) => ({
    kind: "vault-password-policy",
    policy: bao().passwordPolicy,
    address: bao().address,
    caFile: bao().caFile,
    tokenFile,
    ...over,
});

const manualGenerator = { kind: "manual", minLength: 24, maxLength: 64, require: ["upper", "lower", "numeric"], prompt: "the vendor's new key" };

/** The password each consumer's config holds (redis.yaml, key redis.password). */
function consumerPasswords(): string[] {
    return hosts().map((h) => String((yaml.load(fs.readFileSync(path.join(h.etcDir, "redis.yaml"), "utf8")) as any).redis.password));
}

/** A Redis admin command with the password given by its hash (never a value in argv). */
function redisAdmin(...args: string[]): void {
    const l = lab();
    const r = spawnSync("redis-cli", ["--no-auth-warning", "-h", l.redis.host, "-p", String(l.redis.port), "--user", l.redis.adminUser, ...args], {
        env: { ...process.env, REDISCLI_AUTH: fs.readFileSync(l.redis.adminPasswordFile, "utf8").trim() },
        encoding: "utf8",
    });
    assert.equal(r.stdout.trim(), "OK", `redis-cli ${args.join(" ")}: ${r.stdout} ${r.stderr}`);
}

/** A call of the lab's OpenBao with the root token (the tests' own doing, not the product's). */
function baoApi(method: string, apiPath: string, body?: object): Promise<any> {
    const token = fs.readFileSync(bao().rootTokenFile, "utf8").trim();
    return new Promise((resolve, reject) => {
        const req = https.request(
            new URL(`/v1/${apiPath}`, bao().address),
            { method, ca: fs.readFileSync(bao().caFile), headers: { "X-Vault-Token": token, "Content-Type": "application/json" } },
            (res) => {
                let text = "";
                res.on("data", (d) => (text += d));
                res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${method} ${apiPath}: HTTP ${res.statusCode}`))));
            },
        );
        req.on("error", reject);
        req.end(body ? JSON.stringify(body) : undefined);
    });
}

/** No step ran: the engine's events hold no step operation (the program refused before registering any). */
function assertNothingRan(r: RunResult): void {
    const ops = r.events.filter((e) => e.resourcePreEvent?.metadata?.type === STEP && e.resourcePreEvent.metadata.op !== "same");
    assert.deepEqual(ops, [], "no step ran");
}

/** bin/rotate with `input` piped to it (its stdin a pipe, no terminal). */
function rotatePiped(args: string[], input: string): RunResult {
    const t0 = Date.now();
    const r = spawnSync(path.join(ROOT, "bin", "rotate"), [...args, "--stack", ws.stack], {
        cwd: ws.dir,
        env: { ...ws.env, ROTATION_PROJECT_DIR: ws.dir },
        input,
        encoding: "utf8",
        timeout: 300_000,
    });
    captured.push(
        { label: `${ws.name} bin/rotate ${args[0]} piped stdout`, text: r.stdout ?? "" },
        { label: `${ws.name} bin/rotate ${args[0]} piped stderr`, text: r.stderr ?? "" },
    );
    return { code: r.status ?? 1, stdout: r.stdout ?? "", stderr: r.stderr ?? "", events: [], eventLogText: "", ps: [], seconds: (Date.now() - t0) / 1000 };
}

/**
 * bin/rotate on a pseudo-terminal (fixtures/generators/typeInto.py): `typeahead` typed at once,
 * `value` typed at the prompt; `ps` sampled while it runs. The transcript is its stdout.
 */
async function rotateOnTerminal(args: string[], value: string, typeahead: string): Promise<RunResult> {
    const t0 = Date.now();
    const child = spawn(
        "python3",
        [path.join(__dirname, "fixtures", "generators", "typeInto.py"), path.join(ROOT, "bin", "rotate"), ...args, "--stack", ws.stack],
        {
            cwd: ws.dir,
            env: { ...ws.env, ROTATION_PROJECT_DIR: ws.dir, TYPEAHEAD: typeahead, PROMPT: "then Enter: " },
        },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.end(`${value}\n`);
    const ps: string[] = [];
    const sampler = setInterval(() => execFile("ps", ["-eo", "pid,args", "--no-headers"], (_e, o) => ps.push(o)), 150);
    const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
    const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? 1)));
    clearInterval(sampler);
    clearTimeout(timer);
    captured.push(
        { label: `${ws.name} terminal transcript of bin/rotate ${args[0]}`, text: stdout },
        { label: `${ws.name} typeInto stderr`, text: stderr },
        { label: `${ws.name} bin/rotate ${args[0]} on a terminal ps`, text: ps.join("\n") },
    );
    return { code, stdout, stderr, events: [], eventLogText: "", ps, seconds: (Date.now() - t0) / 1000 };
}

before(() => {
    labCtl("up", "--reset");
    ws = new Workspace("generators");
    // The generate-only token, as an operator keeps it: a 0600 file of their own.
    tokenFile = path.join(ws.dir, "generate.token");
    fs.copyFileSync(bao().generateTokenFile, tokenFile);
    fs.chmodSync(tokenFile, 0o600);
    remember(storeValue(REDIS), fs.readFileSync(tokenFile, "utf8").trim(), fs.readFileSync(bao().rootTokenFile, "utf8").trim());
});

test("vault-password-policy: no such policy, a token that may not generate, a token file others may read: each refused before anything changes", async () => {
    const before = storeValue(REDIS);
    // A token that may generate from any policy (the root token, here) meets a policy that is not there.
    const rootFile = path.join(ws.dir, "root.token");
    fs.copyFileSync(bao().rootTokenFile, rootFile);
    fs.chmodSync(rootFile, 0o600);
    ws.setConfig(flat(1, policyGenerator({ policy: "no-such-policy", tokenFile: rootFile })));
    const missing = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(missing.code, 0);
    assert.match(
        out(missing),
        /rotation:secrets\.app-redis\.generator\.policy: app-redis: password policy "no-such-policy" at https:\/\/\S+: no such password policy on the server \(HTTP 404/,
    );
    assertNothingRan(missing);

    // A token of the default policy only: it may look itself up, not generate.
    const weak = String((await baoApi("POST", "auth/token/create", { policies: ["default"], ttl: "1h" })).auth.client_token);
    remember(weak);
    const weakFile = path.join(ws.dir, "weak.token");
    fs.writeFileSync(weakFile, weak, { mode: 0o600 });
    ws.setConfig(flat(0, policyGenerator({ tokenFile: weakFile })));
    const denied = ws.rotate(["start", "--secret", REDIS, "--yes"]);
    assert.equal(denied.code, 2, out(denied));
    assert.match(
        out(denied),
        /rotation:secrets\.app-redis\.generator\.tokenFile: app-redis: password policy "rotation-lab" at \S+: the token may not read sys\/policies\/password\/rotation-lab\/generate/,
    );
    assert.equal(ws.stackConfig()["rotation:secrets"][REDIS].generation, 0, "the stack file is as it was: generation 0");

    fs.chmodSync(weakFile, 0o644);
    const open = ws.rotate(["start", "--secret", REDIS, "--yes"]);
    assert.equal(open.code, 2, out(open));
    assert.match(out(open), /rotation:secrets\.app-redis\.generator\.tokenFile: \S+weak\.token may be read by others \(mode 644\): chmod 600/);
    assert.equal(storeValue(REDIS), before, "the store is untouched");
    assert.ok(!ws.auditLines().some((l) => l.phase === "generated"), "nothing was generated");
});

test("vault-password-policy: the rotation's value comes from the policy and meets its rules in every consumer's config", async () => {
    const old = storeValue(REDIS);
    generation = 1;
    ws.setConfig(flat(generation, policyGenerator()));
    const up = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assertSucceeded(up, "up");
    const fresh = storeValue(REDIS);
    remember(fresh);
    assert.notEqual(fresh, old);
    assert.deepEqual(consumerPasswords(), [fresh, fresh, fresh], "every consumer's config holds the store's new password");
    // The lab's policy (lab/up.sh): 28 characters; at least 2 lower, 2 upper, 2 digits and 1 of "-_.+="; nothing else.
    assert.match(fresh, /^[a-zA-Z0-9_.+=-]{28}$/, "28 characters of the policy's charsets");
    const count = (re: RegExp) => (fresh.match(re) ?? []).length;
    assert.ok(count(/[a-z]/g) >= 2 && count(/[A-Z]/g) >= 2 && count(/[0-9]/g) >= 2 && count(/[-_.+=]/g) >= 1, "each charset rule's minimum");
    assert.equal(redisAuthOk(fresh), true, "Redis accepts the drawn password");
    assert.equal(redisAuthOk(old), false, "Redis rejects the old one");
    assertAudit(ws, REDIS, generation, 3);
    const token = fs.readFileSync(tokenFile, "utf8").trim();
    assert.ok(!up.ps.join("\n").includes(token), "the token never appears in a command line");
});

test("manual generator: refused without a value (plain pulumi up, no terminal and nothing piped, a value against its rules), nothing changed", async () => {
    const before = storeValue(REDIS);
    ws.setConfig(flat(generation + 1, manualGenerator));
    const plain = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(plain.code, 0);
    assert.match(out(plain), /refused: app-redis generation 2 has generator kind "manual" and no value was entered for it: only bin\/rotate can ask for it/);
    assertNothingRan(plain);

    ws.setConfig(flat(generation, manualGenerator));
    const none = ws.rotate(["start", "--secret", REDIS, "--yes"]);
    assert.equal(none.code, 2, out(none));
    assert.match(out(none), /app-redis: generator kind "manual" needs the new value, and there is no terminal to ask on and nothing on standard input/);

    const short = "Sh0rtButSecretish";
    remember(short);
    const bad = rotatePiped(["start", "--secret", REDIS, "--yes"], `${short}\n`);
    assert.equal(bad.code, 2, out(bad));
    assert.match(out(bad), /rotation:secrets\.app-redis\.generator\.minLength: it has 17 characters, fewer than 24/);
    assert.ok(!out(bad).includes(short), "the refused value is not printed");
    assert.equal(ws.stackConfig()["rotation:secrets"][REDIS].generation, generation, "the stack file is as it was");
    assert.equal(storeValue(REDIS), before, "the store is untouched");
});

test("manual generator: typed on a terminal (echo off, typeahead thrown away), then piped: each value reaches every consumer", async () => {
    const old = storeValue(REDIS);
    const typed = `Typed${sha256(`typed-${Date.now()}`).slice(0, 28)}Q7`;
    remember(typed);
    const typeahead = "JunkTypedTooEarly0123456789";
    const r = await rotateOnTerminal(["start", "--secret", REDIS, "--yes", "--plain"], typed, typeahead);
    assertSucceeded(r, "start on a terminal");
    generation++;
    assert.match(r.stdout, /app-redis generation 2: type the vendor's new key \(not shown\), then Enter: /);
    assert.equal(storeValue(REDIS), typed, "the store holds exactly the typed value (the typeahead was thrown away)");
    assert.deepEqual(consumerPasswords(), [typed, typed, typed]);
    assert.equal(redisAuthOk(typed), true);
    assert.equal(redisAuthOk(old), false);
    assert.ok(!r.stdout.includes(typed), "the typed value is not in the terminal transcript");
    assert.ok(r.ps.length > 3 && !r.ps.join("\n").includes(typed), "nor in any command line while it ran");
    assertAudit(ws, REDIS, generation, 3);

    const piped = `Piped${sha256(`piped-${Date.now()}`).slice(0, 30)}Z9`;
    remember(piped);
    const p = rotatePiped(["start", "--secret", REDIS, "--yes", "--plain"], `${piped}\n`);
    assertSucceeded(p, "start piped");
    generation++;
    assert.equal(storeValue(REDIS), piped);
    assert.deepEqual(consumerPasswords(), [piped, piped, piped]);
    assert.equal(redisAuthOk(typed), false);

    const exported = spawnSync(path.join(ROOT, ".tools/bin/pulumi"), ["stack", "export", "--stack", ws.stack], { cwd: ws.dir, env: ws.env, encoding: "utf8" });
    assert.equal(exported.status, 0, exported.stderr);
    assert.ok(exported.stdout.includes(`${REDIS}-g${generation}`), "the export holds the generate step");
    assert.ok(!exported.stdout.includes(typed) && !exported.stdout.includes(piped), "the state holds neither value in plaintext");
});

test("manual source: the grant and the revocation stop the run (exit 7) until bin/rotate confirm records them and resumes", async () => {
    const l = lab();
    const old = storeValue(REDIS);
    const test = `IFS= read -r -d '' p; REDISCLI_AUTH="$p" redis-cli --no-auth-warning -h ${l.redis.host} -p ${l.redis.port} --user ${l.redis.user} PING | grep -qx PONG`;
    const source = {
        kind: "manual",
        grant: "add the new password to user app in the vendor console",
        revoke: "remove the old password of user app there",
        test,
    };
    ws.setConfig(flat(generation, manualGenerator, source));
    const issued = `Vendor${sha256(`vendor-${Date.now()}`).slice(0, 30)}K5`;
    remember(issued);

    const first = rotatePiped(["start", "--secret", REDIS, "--yes", "--plain"], `${issued}\n`);
    assert.equal(first.code, 7, out(first));
    assert.match(
        first.stdout,
        /awaiting a person: add the new password to user app in the vendor console \(app-redis generation 4\); once it is done: bin\/rotate confirm --stack e2e --secret app-redis --step grant --yes/,
    );
    assert.equal(redisAuthOk(issued), false, "nothing granted it");
    assert.deepEqual(consumerPasswords(), [old, old, old], "no consumer moved before the grant");

    // The person, at the vendor's console.
    redisAdmin("ACL", "SETUSER", l.redis.user, `#${sha256(issued)}`);
    const second = ws.rotate(["confirm", "--secret", REDIS, "--yes", "--plain"]);
    assert.equal(second.code, 7, out(second));
    assert.match(second.stdout, /recorded: the grant of app-redis generation 4 was done, confirmed by /);
    assert.match(
        second.stdout,
        /awaiting a person: remove the old password of user app there \(app-redis generation 3\); once it is done: bin\/rotate confirm --stack e2e --secret app-redis --step revoke --yes/,
    );
    assert.deepEqual(consumerPasswords(), [issued, issued, issued], "every consumer moved once the grant was confirmed");
    assert.equal(redisAuthOk(old), true, "the old password still works: nobody revoked it");

    redisAdmin("ACL", "SETUSER", l.redis.user, `!${sha256(old)}`);
    const third = ws.rotate(["confirm", "--secret", REDIS, "--yes", "--plain", "--note", "vendor ticket 4711"]);
    assert.equal(third.code, 0, out(third));
    generation++;
    assert.equal(storeValue(REDIS), issued, "promoted");
    assert.equal(redisAuthOk(old), false);
    assertAudit(ws, REDIS, generation, 3);
    const confirmed = ws.auditLines().filter((x) => x.phase === "confirmed" && x.secret === REDIS);
    assert.deepEqual(
        confirmed.map((x) => [x.step, x.generation, x.outcome, typeof x.confirmedBy, typeof x.time]),
        [
            ["grant", generation, "ok", "string", "string"],
            ["revoke", generation, "ok", "string", "string"],
        ],
    );
    assert.equal(confirmed[1].note, "vendor ticket 4711");
    const nothing = ws.rotate(["confirm", "--secret", REDIS, "--yes"]);
    assert.equal(nothing.code, 2, out(nothing));
    assert.match(out(nothing), /nothing of app-redis waits for a person/);

    scanForLeaks(ws);
});
