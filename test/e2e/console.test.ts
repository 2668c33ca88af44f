// The operator's console (bin/rotate on the Automation API) against the real
// engine and lab: the plan picture, live progress in a pseudo-terminal and as
// plain lines, the report of a real run rendered in headless Chromium, the
// dry runs that change nothing, every documented exit code, and Verification 3
// (auth failures counted in the consumers' logs after the revocation).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { REPORT_COLORS } from "../../cli/report";
import { rotationPlan } from "../../lib/plan";
import { analyzePng, chromiumPath, screenshot } from "../browser";
import { assertRedisMoved, remember } from "./checks";
import {
    captured,
    consumerEntry,
    consumerState,
    fleetOf,
    hosts,
    lab,
    labCtl,
    redisAuthOk,
    redisStack,
    ROOT,
    sha256,
    storeValue,
    Workspace,
} from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const REDIS = "app-redis";
const TOKEN = "console-token";
const redisConsumers = () => hosts().map((h) => `redis-${h.name}`);
let ws: Workspace;
/** The command source's state: which token hashes are valid, and whether revocation works. */
let sourceDir: string;

/**
 * A secret with a `command` source whose revocation fails until a marker file
 * exists: the deterministic way to fail a run after its gate opened.
 */
function tokenStack(): Record<string, unknown> {
    const l = lab();
    const hash = `h=$(printf %s "$S" | sha256sum | cut -c1-64)`;
    return {
        generation: 0,
        secret: { name: TOKEN, type: "api-token", generator: { kind: "random", length: 24 }, reason: "scheduled", note: "e2e console", operator: "e2e-tests" },
        store: { kind: "file", dir: l.storeDir },
        source: {
            kind: "command",
            grant: `IFS= read -r -d '' S || true; ${hash}; echo "$h" >> ${sourceDir}/valid`,
            revoke: `[ -e ${sourceDir}/revoke-works ] || { echo "token service unavailable" >&2; exit 7; }; IFS= read -r -d '' S || true; ${hash}; grep -vx "$h" ${sourceDir}/valid > ${sourceDir}/valid.tmp || true; mv ${sourceDir}/valid.tmp ${sourceDir}/valid`,
            withdraw: `IFS= read -r -d '' S || true; ${hash}; grep -vx "$h" ${sourceDir}/valid > ${sourceDir}/valid.tmp || true; mv ${sourceDir}/valid.tmp ${sourceDir}/valid`,
            test: `IFS= read -r -d '' S || true; ${hash}; grep -qx "$h" ${sourceDir}/valid`,
        },
        consumers: hosts().map((h) => ({
            name: `token-${h.name}`,
            host: h.ip,
            user: "root",
            hostKeyFile: `${l.labDir}/hosts/${h.name}/ssh_host_ed25519_key.pub`,
            privateKeyFile: l.operatorKey,
            configPath: "/etc/rotation-app/console.env",
            write: { format: "env-line", key: "TOKEN" },
            reload: "true",
            health: { command: "grep -q '^TOKEN=.' /etc/rotation-app/console.env" },
            retries: 1,
            retryDelaySeconds: 1,
            timeoutSeconds: 10,
        })),
    };
}

/** bin/rotate in a pseudo-terminal (script(1)), as an operator at a terminal runs it. */
function rotateInTty(args: string[]): { code: number; text: string } {
    const typescript = path.join(ws.dir, "tty.out");
    const cmd = [path.join(ROOT, "bin", "rotate"), ...args, "--stack", ws.stack].map((a) => `'${a}'`).join(" ");
    const r = spawnSync("script", ["-qfec", cmd, typescript], {
        cwd: ws.dir,
        env: { ...ws.env, ROTATION_PROJECT_DIR: ws.dir, TERM: "xterm", COLUMNS: "120", LINES: "40" },
        encoding: "utf8",
        timeout: 600_000,
    });
    const text = fs.readFileSync(typescript, "utf8");
    captured.push({ label: `console tty ${args[0]}`, text });
    return { code: r.status ?? 1, text };
}

const reportPath = (out: string) => /report: (\S+\.html)/.exec(out)?.[1];
const stackFileText = () => fs.readFileSync(path.join(ws.dir, "stacks", `Pulumi.${ws.stack}.yaml`), "utf8");
const lockDir = () => path.join(ws.stateDir, ".pulumi", "locks", "organization", "secret-rotation", ws.stack);

before(() => {
    labCtl("up", "--reset");
    sourceDir = fs.mkdtempSync(path.join(os.tmpdir(), "console-source-"));
    const seed = "console-token-seed-value-0";
    fs.writeFileSync(path.join(lab().storeDir, TOKEN), seed, { mode: 0o600 });
    fs.writeFileSync(path.join(sourceDir, "valid"), `${spawnSync("sha256sum", { input: seed, encoding: "utf8" }).stdout.slice(0, 64)}\n`);
    for (const h of hosts()) fs.writeFileSync(path.join(h.etcDir, "console.env"), `# console e2e\nTOKEN=${seed}\n`, { mode: 0o600 });
    remember(seed, storeValue(REDIS));
    ws = new Workspace("console");
    ws.setSecrets([redisStack(0), tokenStack()]);
});

after(() => {
    for (const h of hosts()) labCtl("fail-health", h.name, "off");
    fs.rmSync(lockDir(), { recursive: true, force: true });
});

test("plan: the SVG has a node per step and every consumer's rollout has an edge into the gate; 50 consumers measured", () => {
    const r = ws.rotate(["plan", "--secret", REDIS, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    const svg = fs.readFileSync(doc.svg, "utf8").replace(/&#45;/g, "-").replace(/&gt;/g, ">");
    const nodes = [...svg.matchAll(/<g id="([^"]+)" class="node"/g)].map((m) => m[1]).sort();
    const plan = rotationPlan({ mode: "rotate", consumers: redisConsumers().map((name) => ({ name })) });
    assert.deepEqual(nodes, plan.map((s) => `${REDIS}/${s.id}`).sort(), "one node per plan step");
    const edges = new Set([...svg.matchAll(/<g id="[^"]*" class="edge">\s*<title>([^<]+)<\/title>/g)].map((m) => m[1]));
    for (const c of redisConsumers()) assert.ok(edges.has(`${REDIS}/rollout/${c}->${REDIS}/gate`), `edge ${c} -> gate`);
    assert.ok(edges.has(`${REDIS}/gate->${REDIS}/revoke`));
    assert.equal(JSON.stringify(ws.stackConfig()).includes('"generation":1'), false, "plan changed no generation");

    // 50 consumers: how long `plan` takes and how big the picture is (the closing note's figures).
    const big = new Workspace("console-plan50");
    const f = fleetOf(50);
    big.setConfig({ ...redisStack(0), consumers: Array.from({ length: 50 }, (_, i) => consumerEntry(f, i)) });
    const t0 = Date.now();
    const p = big.rotate(["plan", "--json"]);
    const ms = Date.now() - t0;
    assert.equal(p.code, 0, p.stderr);
    const svg50 = fs.readFileSync(JSON.parse(p.stdout).svg, "utf8");
    assert.equal(
        (svg50.match(/class="node"/g) ?? []).length,
        rotationPlan({ mode: "rotate", consumers: Array.from({ length: 50 }, (_, i) => ({ name: `c${i}` })) }).length,
    );
    console.log(`# plan for 50 consumers: ${(ms / 1000).toFixed(1)}s wall (bin/rotate plan --json), SVG ${svg50.length} bytes`);
});

test("a mistyped stack or option is exit 2 and creates nothing; start without --yes changes nothing", () => {
    const before = stackFileText();
    for (const cmd of ["status", "plan", "due", "preview"]) {
        const typo = spawnSync(path.join(ROOT, "bin", "rotate"), [cmd, "--stack", "console-typo"], {
            cwd: ws.dir,
            env: { ...ws.env, ROTATION_PROJECT_DIR: ws.dir },
            encoding: "utf8",
        });
        assert.equal(typo.status, 2, `${cmd}: ${typo.stderr}`);
        assert.match(typo.stderr, /no stack "console-typo"/);
    }
    assert.ok(
        !fs.readdirSync(path.join(ws.stateDir, ".pulumi", "stacks"), { recursive: true }).some((f) => String(f).includes("console-typo")),
        "no stack was created",
    );
    const unknown = ws.rotate(["start", "--secret", REDIS, "--yse"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown option '--yse'/);
    const dry = ws.rotate(["start", "--secret", REDIS]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would rotate app-redis 0 -> 1; nothing was changed/);
    assert.match(dry.stdout, /rollout .*3 consumers/, "the plan table is shown");
    const due = ws.rotate(["due"]);
    assert.equal(due.code, 1, "due: nothing is due (no secret has a schedule) is exit 1");
    assert.match(due.stdout, /app-redis: last completed never, schedule none: no schedule/);
    const json = ws.rotate(["start", "--secret", REDIS, "--json"]);
    assert.equal(JSON.parse(json.stdout).outcome, "not-confirmed");
    assert.equal(stackFileText(), before, "the stack file is unchanged");
});

test("a config error is exit 2 before anything changes, naming the field", () => {
    const before = stackFileText();
    const source = redisStack(0).source as Record<string, unknown>;
    ws.patchSecret(REDIS, { source: { ...source, adminPasswordFile: "/nonexistent/admin.pass" } });
    const mid = stackFileText();
    const r = ws.rotate(["start", "--secret", REDIS, "--yes"]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /rotation:secrets\.app-redis\.source\.adminPasswordFile: file not found: \/nonexistent\/admin\.pass/);
    assert.equal(stackFileText(), mid, "no generation was bumped");
    ws.patchSecret(REDIS, { source });
    assert.equal(stackFileText(), before);
});

test("start in a terminal: one line per consumer, redrawn in place, ending in its outcome; the report renders in Chromium", () => {
    const old = storeValue(REDIS);
    const r = rotateInTty(["start", "--secret", REDIS, "--yes"]);
    assert.equal(r.code, 0, r.text.slice(-3000));
    assert.match(r.text, /\u001b\[\d+A/, "the view is redrawn in place (cursor up)");
    const frames = r.text.split(/\u001b\[\d+A\r?\u001b\[0J/);
    assert.ok(frames.length >= 3, `several frames were drawn (${frames.length})`);
    const last = frames[frames.length - 1];
    for (const c of redisConsumers()) assert.match(last, new RegExp(`^  ${c} +ok \\d+\\.\\ds`, "m"), `${c} ends ok in the last frame`);
    assert.match(last, /\+rollout 3\/3 \+gate \+revoke \+promote \+verify \+audit/, "the header has every phase done");
    assert.ok(
        frames.some((f) => /redis-host\d +(deploy, reload, health, log check|waiting)/.test(f)),
        "an earlier frame showed consumers in progress",
    );
    assertRedisMoved(REDIS, old);

    const report = reportPath(r.text);
    assert.ok(report && fs.existsSync(report), `the run wrote a report (${report})`);
    assert.equal(fs.statSync(report).mode & 0o777, 0o600);
    const html = fs.readFileSync(report, "utf8");
    for (const c of redisConsumers()) assert.ok(html.includes(c), `the report names ${c}`);
    for (const c of redisConsumers())
        assert.match(html, new RegExp(`<td>${c}</td><td>0</td><td>the revocation`), `the report shows ${c}'s auth failures after the revocation: 0`);
    if (!chromiumPath()) throw new Error("chromium is not installed: bin/test installs it (apt-get install chromium)");
    const width = Number(/data-width="(\d+)"/.exec(html)?.[1] ?? 1300);
    const height = Number(/data-height="(\d+)"/.exec(html)?.[1] ?? 1800);
    const png = path.join(ws.dir, "report.png");
    screenshot(report, png, { width, height });
    const seen = analyzePng(png, { rollout: REPORT_COLORS.rollout, shading: REPORT_COLORS.shading });
    console.log(`# report screenshot ${seen.width}x${seen.height}: ${seen.rolloutBands} consumer rows, ${seen.shadingPixels} pixels of dual-active shading`);
    assert.equal(seen.rolloutBands, 3, "one timeline row per consumer");
    assert.ok(seen.shadingPixels > 1000, "the dual-active window is shaded");
});

test("a failed consumer: exit 1, plain timestamped lines name it at once, nothing revoked; rollback without --yes changes nothing; resume completes", async () => {
    const old = storeValue(REDIS);
    labCtl("fail-health", "host2", "on");
    const r = await ws.rotateSampled(["start", "--secret", REDIS, "--yes", "--json"]);
    labCtl("fail-health", "host2", "off");
    assert.equal(r.code, 1, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.outcome, "failed");
    assert.equal(doc.exitCode, 1);
    const failedStep = doc.steps.find((s: { outcome: string }) => s.outcome === "failed");
    assert.equal(failedStep.consumer, "redis-host2");
    assert.match(failedStep.error, /app-redis → consumer redis-host2: health check/);
    assert.ok(doc.next.some((n: string) => /bin\/rotate resume --stack e2e --yes/.test(n)));
    assert.ok(doc.next.some((n: string) => /bin\/rotate rollback --stack e2e --secret app-redis --yes/.test(n)));
    // Plain lines (stderr with --json): ISO time, secret, consumer, what happened.
    const iso = "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z";
    for (const c of ["redis-host1", "redis-host3"]) {
        assert.match(r.stderr, new RegExp(`^${iso} app-redis consumer ${c} started$`, "m"));
        assert.match(r.stderr, new RegExp(`^${iso} app-redis consumer ${c} ok in \\d+\\.\\ds$`, "m"));
    }
    assert.match(r.stderr, new RegExp(`^${iso} app-redis consumer redis-host2 FAILED: app-redis → consumer redis-host2: health check`, "m"));
    assert.doesNotMatch(r.stderr, /\u001b\[/, "no terminal escapes when output is not a terminal");
    assert.equal(redisAuthOk(old), true, "the old secret still works");
    const report = fs.readFileSync(doc.report, "utf8");
    assert.match(report, /What to do next/);

    const before = stackFileText();
    const dry = ws.rotate(["rollback", "--secret", REDIS]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would roll back app-redis generation 2/);
    assert.equal(stackFileText(), before, "rollback without --yes leaves rotation:secrets.app-redis.mode alone");
    assert.doesNotMatch(stackFileText(), /mode: rollback/);

    const resumed = ws.rotate(["resume", "--secret", REDIS, "--yes"]);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    const fresh = storeValue(REDIS);
    remember(fresh);
    assert.equal(redisAuthOk(old), false, "after the resume the old secret is revoked");
});

test("exit 3: a rollback after the revocation is refused and changes nothing", () => {
    const before = stackFileText();
    const r = ws.rotate(["rollback", "--secret", REDIS, "--yes"]);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /rollback of app-redis generation 2 refused: its revocation has started/);
    assert.equal(stackFileText(), before);
});

test("preview is the engine's own, and --engine-output shows Pulumi's output instead of the console's lines", () => {
    const preview = ws.rotate(["preview"]);
    assert.equal(preview.code, 0, preview.stderr);
    assert.match(preview.stdout, /Previewing update \(e2e\)/);
    assert.match(preview.stdout, /Resources:/);
    const engine = ws.rotate(["resume", "--yes", "--engine-output"]);
    assert.equal(engine.code, 0, engine.stdout + engine.stderr);
    assert.match(engine.stdout, /Updating \(e2e\)/, "Pulumi's own update output");
    assert.doesNotMatch(engine.stdout, /^\d{4}-\d\d-\d\dT\S+ app-redis /m, "not the console's plain lines");
});

test("exit 4: a lock held by a live process, or left by a killed run, refuses start and resume before anything changes", () => {
    const before = stackFileText();
    fs.mkdirSync(lockDir(), { recursive: true });
    const lock = path.join(lockDir(), "e2e-lock.json");
    fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, hostname: os.hostname(), timestamp: "2026-11-26T10:00:00Z" }));
    const live = ws.rotate(["start", "--secret", REDIS, "--yes"]);
    assert.equal(live.code, 4, live.stdout + live.stderr);
    assert.match(live.stderr, new RegExp(`being changed by process ${process.pid} on ${os.hostname()} since 2026-11-26T10:00:00Z`));
    const dead = spawnSync("true").pid!;
    fs.writeFileSync(lock, JSON.stringify({ pid: dead, hostname: os.hostname(), timestamp: "2026-11-26T10:00:00Z" }));
    const stale = ws.rotate(["resume", "--yes"]);
    assert.equal(stale.code, 4, stale.stdout + stale.stderr);
    assert.match(stale.stderr, /a run that no longer exists .*Run: bin\/rotate unlock --stack e2e, then resume/);
    assert.equal(stackFileText(), before, "nothing was changed");
    const unlock = ws.rotate(["unlock"]);
    assert.equal(unlock.code, 0, unlock.stderr);
    assert.equal(fs.existsSync(lock), false);
});

// Issue 23, defect 4: the early checks passed, start bumped the generation, then the engine's own lock
// refused the update (another checkout's run took the stack in between). The lock is planted the moment
// the stack file changes, in the backend's own format, so the engine itself refuses.
test("exit 4: a lock the engine finds after start wrote the stack file: the file is put back byte for byte", async () => {
    const before = fs.readFileSync(path.join(ws.dir, "stacks", `Pulumi.${ws.stack}.yaml`));
    const lock = path.join(lockDir(), "e2e-engine-lock.json");
    let planted = false;
    const watch = setInterval(() => {
        if (planted || fs.readFileSync(path.join(ws.dir, "stacks", `Pulumi.${ws.stack}.yaml`)).equals(before)) return;
        fs.mkdirSync(lockDir(), { recursive: true });
        fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, username: "bob", hostname: os.hostname(), timestamp: "2026-12-05T10:00:00Z" }));
        planted = true;
    }, 10);
    const r = await ws.rotateSampled(["start", "--secret", REDIS, "--yes", "--plain"]).finally(() => clearInterval(watch));
    try {
        assert.ok(planted, "the lock appeared after the stack file was written");
        assert.equal(r.code, 4, r.stdout + r.stderr);
        assert.match(r.stdout, new RegExp(`rotate: rotating ${REDIS} `), "both early lock checks had passed");
        assert.match(
            r.stderr,
            new RegExp(
                `stack ${ws.stack} is locked by process ${process.pid} on ${os.hostname()} since 2026-12-05T10:00:00Z; nothing was changed \\(stacks/Pulumi\\.${ws.stack}\\.yaml is as it was before this start\\)`,
            ),
        );
        assert.ok(fs.readFileSync(path.join(ws.dir, "stacks", `Pulumi.${ws.stack}.yaml`)).equals(before), "the stack file is byte for byte as before");
    } finally {
        fs.rmSync(lock, { force: true });
    }
});

test("exit 5: a failure after the gate opened says roll forward; resume completes", () => {
    const old = storeValue(TOKEN);
    const r = ws.rotate(["start", "--secret", TOKEN, "--yes"]);
    assert.equal(r.code, 5, r.stdout + r.stderr);
    assert.match(r.stderr, /console-token revoke: .*token service unavailable/);
    assert.match(r.stderr, /its revocation has started, so roll forward: .*bin\/rotate resume --stack e2e --yes/);
    assert.doesNotMatch(r.stderr, /rollback --stack/, "no rollback is offered past the gate");
    fs.writeFileSync(path.join(sourceDir, "revoke-works"), "");
    const resumed = ws.rotate(["resume", "--yes"]);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    const fresh = storeValue(TOKEN);
    remember(fresh);
    assert.notEqual(fresh, old);
    const valid = fs.readFileSync(path.join(sourceDir, "valid"), "utf8").trim().split("\n");
    assert.equal(valid.length, 1, "only the new token is valid at the source");
    const status = ws.rotate(["status", "--json"]);
    const rows = JSON.parse(status.stdout).secrets as { secret: string; generation: number; committed: number; lastOutcome: string }[];
    assert.deepEqual(rows.map((x) => [x.secret, x.generation, x.committed]).sort(), [
        [REDIS, 2, 2],
        [TOKEN, 1, 1],
    ]);
    assert.ok(
        rows.every((x) => x.lastOutcome.startsWith("completed ok")),
        JSON.stringify(rows),
    );
});

/**
 * A stray client on a consumer's host that still uses a stale copy of the
 * Redis password: it pings Redis every 0.2 s and, when refused, appends an
 * AUTH_FAILED line to that consumer's log. Only paths reach its command line.
 */
function strayClient(host: string, password: string): { stop: () => void } {
    const l = lab();
    const h = hosts().find((x) => x.name === host)!;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stray-client-"));
    fs.writeFileSync(path.join(dir, "pass"), password, { mode: 0o600 });
    const loop = `while :; do
  REDISCLI_AUTH="$(cat "$1")" redis-cli --no-auth-warning -h ${l.redis.host} -p ${l.redis.port} --user ${l.redis.user} PING 2>/dev/null | grep -qx PONG ||
    echo "$(date -Is) AUTH_FAILED stray client with a stale copy of the password" >> "$2"
  sleep 0.2
done`;
    const child = spawn("bash", ["-c", loop, "stray", path.join(dir, "pass"), path.join(h.logDir, "redis-app.log")], { detached: true, stdio: "ignore" });
    return {
        stop: () => {
            process.kill(-child.pid!, "SIGKILL");
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
}

test("exit 5: a stray client on the old password after the revocation fails the verification, naming the consumer and its count; nothing is undone; resume completes", async () => {
    const old = storeValue(REDIS);
    const stray = strayClient("host2", old);
    let r: Awaited<ReturnType<typeof ws.rotateSampled>>;
    try {
        r = await ws.rotateSampled(["start", "--secret", REDIS, "--yes", "--json"]);
    } finally {
        stray.stop();
    }
    assert.equal(r.code, 5, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout);
    const verify = doc.steps.find((s: { step: string }) => s.step === "verify/consumers");
    assert.equal(verify.outcome, "failed");
    const count = /app-redis → consumer redis-host2: (\d+) auth failure\(s\) in \/var\/log\/rotation-app\/redis-app\.log since the revocation/.exec(
        verify.error,
    );
    assert.ok(count && Number(count[1]) > 0, verify.error);
    assert.match(verify.error, /1 of 3 consumers logged auth failures after the revocation/, "only redis-host2 is named");
    assert.ok(
        doc.next.some((n: string) => /its revocation has started, so roll forward: fix the cause above, then bin\/rotate resume --stack e2e --yes/.test(n)),
        doc.next.join("\n"),
    );
    assert.ok(!doc.next.some((n: string) => /rollback/.test(n)), "no rollback is offered past the revocation");
    const line = doc.audit.find((l: Record<string, unknown>) => l.phase === "consumers-verified");
    assert.equal(line.outcome, "failed");
    assert.equal(line.authFailures, `redis-host1=0 redis-host2=${count![1]} redis-host3=0`, "the audit line carries every consumer's count");
    const report = fs.readFileSync(doc.report, "utf8");
    assert.match(report, new RegExp(`<td>redis-host2</td><td><span class="bad">${count![1]}</span></td><td>the revocation`));
    assert.match(report, /<td>redis-host1<\/td><td>0<\/td>/);

    // Nothing was undone: the new secret is current in the store and accepted, the old one rejected, every consumer on the new one.
    const fresh = assertRedisMoved(REDIS, old);
    for (const h of hosts()) {
        const s = await consumerState(h, "redis");
        assert.deepEqual([s.fingerprint, s.healthy], [sha256(fresh), true], `${h.name} stays on the new secret`);
    }

    // The stray client is stopped: resume runs the verification again, counting what its own window sees (the gate ran in the earlier run).
    const resumed = ws.rotate(["resume", "--yes", "--json"]);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    const again = JSON.parse(resumed.stdout).audit.find((l: Record<string, unknown>) => l.phase === "consumers-verified");
    assert.deepEqual(
        [again.outcome, again.authFailures, again.authFailuresFromCheck],
        ["ok", "redis-host1=0 redis-host2=0 redis-host3=0", "redis-host1 redis-host2 redis-host3"],
    );
    assert.equal(storeValue(REDIS), fresh);
});

test("console: no secret leaked (output, terminal, reports, plans, state)", () => {
    scanForLeaks(ws);
});
