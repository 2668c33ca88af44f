// The fault matrix: one row per fault, each injected into a real rotation of
// the lab's Redis password (three consumer hosts) through the real engine.
// Its rows run in two files (faults.test.ts, faults2.test.ts), each on a lab
// and a stack of its own, so that they run side by side in bin/test's lanes.
// Every row proves the same four things:
//   (a) no consumer lost its working secret at any moment: a sampler (its own
//       thread, so it keeps polling while bin/rotate runs) asks every
//       consumer's /healthz every 200 ms for the whole row; only a consumer
//       that the fault itself breaks is left out, and the row names it;
//   (b) nothing was revoked while a consumer was unverified: from the event
//       log when the revocation ran, else the old password still works;
//   (c) no config was lost: each consumer's redis.yaml is the lab's file,
//       whole, with the old or the new password, its .bak the same file with
//       the password before, and no temporary file is left beside them;
//   (d) the documented way forward (fix the cause, resume) completes.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { Worker } from "node:worker_threads";
import { STEP_TYPE } from "../../provider/types";
import { yamlQuote } from "../../writers/yamlKey";
import { assertAudit, assertAuditChain, assertSucceeded, remember } from "./checks";
import {
    changedSteps,
    committedGeneration,
    consumerState,
    type EngineEvent,
    fillConfigDir,
    hosts,
    inHost,
    lab,
    LAB_DIR,
    type LabHost,
    labCtl,
    redisAuthOk,
    redisStack,
    redisWorld,
    type RunResult,
    sha256,
    stepTimeline,
    storeHas,
    storePath,
    storeValue,
    tmpfsOn,
    unmountTmpfs,
    urnName,
    Workspace,
} from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const SECRET = "app-redis";
const consumerOf = (h: LabHost) => `redis-${h.name}`;
const rollouts = () => hosts().map((h) => `${SECRET}-rollout-${consumerOf(h)}`);
const UP = ["up", "--yes", "--skip-preview"];

let ws: Workspace;
let base: { consumers: Record<string, unknown>[]; source: Record<string, unknown> };
let generation = 0;
/** Every password of the rotation, by generation: history[0] is the lab's. */
const history: string[] = [];
/** Each host's redis.yaml as the lab wrote it, the password's value replaced by PASSWORD. */
const shapes = new Map<string, string>();

// ------------------------------------------------------------------ the sampler (a)

/** Polls each URL every `everyMs` in a worker thread; on a message, answers with the counts and stops. */
const SAMPLER = `
const { parentPort, workerData } = require("node:worker_threads");
const stats = Object.fromEntries(workerData.urls.map((u) => [u, { polls: 0, failures: 0, first: [] }]));
const busy = new Set();
const tick = () => {
    for (const url of workerData.urls) {
        if (busy.has(url)) continue;
        busy.add(url);
        const at = new Date().toISOString();
        fetch(url, { signal: AbortSignal.timeout(5000) })
            .then(async (r) => ({ status: r.status, body: (await r.text()).trim() }))
            .catch((e) => ({ status: 0, body: String(e) }))
            .then(({ status, body }) => {
                const s = stats[url];
                s.polls++;
                if (status !== 200) {
                    s.failures++;
                    if (s.first.length < 3) s.first.push(at + " " + status + " " + body);
                }
                busy.delete(url);
            });
    }
};
const timer = setInterval(tick, workerData.everyMs);
tick();
parentPort.once("message", () => {
    clearInterval(timer);
    const done = () => (busy.size ? setTimeout(done, 20) : parentPort.postMessage(stats));
    done();
});
`;

interface Polls {
    polls: number;
    failures: number;
    first: string[];
}

class HealthSampler {
    private readonly worker: Worker;
    private readonly urls: Map<string, string>;

    constructor(everyMs = 200) {
        this.urls = new Map(hosts().map((h) => [`${lab().hosts.find((x: any) => x.name === h.name).apps.redis.url}/healthz`, h.name]));
        this.worker = new Worker(SAMPLER, { eval: true, workerData: { urls: [...this.urls.keys()], everyMs } });
    }

    /** Stops polling: per host, how many polls and failures. */
    async stop(): Promise<Map<string, Polls>> {
        const stats = await new Promise<Record<string, Polls>>((resolve) => {
            this.worker.once("message", resolve);
            this.worker.postMessage("stop");
        });
        await this.worker.terminate();
        return new Map(Object.entries(stats).map(([url, s]) => [this.urls.get(url)!, s]));
    }
}

// ------------------------------------------------------------------ the consumers' files (c)

/** A lab host's own view of its files: its mount namespace, as its namespace holder sees it (also while its sshd is stopped). */
function appEtc(h: LabHost): string {
    const holder = fs.readFileSync(path.join(LAB_DIR, "run", `${h.name}.pid`), "utf8").trim();
    return `/proc/${holder}/root/etc/rotation-app`;
}

const shaped = (h: LabHost, password: string) => shapes.get(h.name)!.replace("PASSWORD", yamlQuote(password));

/**
 * Every consumer's config is the lab's file with `old` or `fresh` in full
 * (0600); its .bak, if any, is the file with the password before that one;
 * no temporary file of a write is left. Returns which password each holds.
 */
function assertConfigs(old: string, fresh: string): Map<string, "old" | "new"> {
    const held = new Map<string, "old" | "new">();
    for (const h of hosts()) {
        const dir = appEtc(h);
        const config = fs.readFileSync(path.join(dir, "redis.yaml"), "utf8");
        const holds = config === shaped(h, old) ? old : config === shaped(h, fresh) ? fresh : undefined;
        assert.ok(holds !== undefined, `${h.name}: redis.yaml is the lab's file, whole, with the old or the new password`);
        assert.equal(fs.statSync(path.join(dir, "redis.yaml")).mode & 0o777, 0o600, `${h.name}: redis.yaml stays 0600`);
        const before = holds === old ? history[history.indexOf(old) - 1] : old;
        const bak = path.join(dir, "redis.yaml.bak");
        if (before === undefined) assert.equal(fs.existsSync(bak), false, `${h.name}: no .bak before the first rotation`);
        else assert.equal(fs.readFileSync(bak, "utf8"), shaped(h, before), `${h.name}: redis.yaml.bak is the file with the password before`);
        const strays = fs.readdirSync(dir).filter((f) => f.startsWith(".rotation-write.") || f.endsWith(".rotation-tmp"));
        assert.deepEqual(strays, [], `${h.name}: no temporary file of a write is left`);
        held.set(h.name, holds === fresh ? "new" : "old");
    }
    return held;
}

// ------------------------------------------------------------------ what a run proves (b)

/** In this run, the revocation (if it started) started after every rollout that ran in it had ended, and none failed. */
function assertRevokeWaited(r: RunResult): void {
    const revoke = stepTimeline(r.events, `${SECRET}-revoke`);
    if (revoke.start === undefined) return;
    for (const name of rollouts()) {
        const t = stepTimeline(r.events, name);
        assert.equal(t.failed, undefined, `${name} did not fail in a run that revoked`);
        if (t.start !== undefined)
            assert.ok(t.end !== undefined && t.end < revoke.start, `${name} ended (seq ${t.end}) before the revocation started (seq ${revoke.start})`);
    }
}

/** Across runs: every consumer's rollout of this generation was verified before the first revocation attempt was recorded. */
function assertAuditOrder(gen: number): void {
    const lines = ws.auditLines().filter((l) => l.secret === SECRET && l.generation === gen && l.mode === "rotate");
    const revoked = lines.findIndex((l) => l.phase === "revoked");
    if (revoked < 0) return;
    for (const h of hosts()) {
        const ok = lines.findIndex((l) => l.phase === "consumer-verified" && l.outcome === "ok" && l.consumer === consumerOf(h));
        assert.ok(ok >= 0 && ok < revoked, `audit: ${consumerOf(h)} verified on g${gen} before the revocation`);
    }
}

/** The rotation of this generation completed: old rejected, new accepted and current, every consumer healthy on it. */
async function assertCompleted(old: string, fresh: string): Promise<void> {
    assert.equal(storeValue(SECRET), fresh, "the staged password became current");
    assert.equal(storeHas(SECRET, "staged"), false, "no staged copy is left");
    assert.equal(redisAuthOk(old), false, "the old password is rejected");
    assert.equal(redisAuthOk(fresh), true, "the new password is accepted");
    for (const h of hosts()) {
        const s = await consumerState(h, "redis");
        assert.equal(s.fingerprint, sha256(fresh), `${h.name} runs on the new password`);
        assert.ok(s.healthy, `${h.name} is healthy`);
    }
    const held = assertConfigs(old, fresh);
    for (const h of hosts()) assert.equal(held.get(h.name), "new", `${h.name}'s config holds the new password`);
    assertAuditOrder(generation);
    assertAudit(ws, SECRET, generation, hosts().length);
}

// ------------------------------------------------------------------ the rows

/** Where the faulty run stopped the rotation. */
type Stop = "preflight" | "rollout" | "gate" | "revoke" | "promote" | "killed" | "none";

interface Row {
    fault: string;
    /** The host whose consumer the fault hits (index into the lab's hosts). */
    host?: number;
    /** That consumer's /healthz fails because of the fault itself: left out of the sampler's verdict. */
    breaksHealth?: boolean;
    stops: Stop;
    /** For a consumer fault: what that consumer's app runs on after the failed run, and what its config holds. */
    appOn?: "old" | "new";
    configOn?: "old" | "new";
    /** Injects the fault (config patches included) before the run. */
    inject?(c: Ctx): void;
    /** The faulty run; by default one `pulumi up`. */
    run?(c: Ctx): Promise<RunResult>;
    /** What the faulty run must say. */
    says(c: Ctx): RegExp[];
    /** Row-specific checks after the faulty run. */
    check?(c: Ctx, r: RunResult): void | Promise<void>;
    /** Removes the cause; runs in a finally too, so it must be idempotent. */
    fix?(c: Ctx): void;
    /** The way forward: `pulumi up`, or `bin/rotate resume --yes` (with unlock first after a kill). */
    resume: "up" | "rotate";
}

interface Ctx {
    gen: number;
    old: string;
    host: LabHost;
    consumer: string;
    /** Set by rows that act during the run. */
    note: Record<string, unknown>;
}

/** The base consumers with one of them changed. */
function consumersWith(i: number, patch: Record<string, unknown>): Record<string, unknown>[] {
    return base.consumers.map((c, j) => (j === i ? { ...c, ...patch } : c));
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
const ipRe = (h: LabHost) => esc(h.ip);
const adminFile = () => lab().redis.adminPasswordFile as string;
const heldAdmin = () => `${adminFile()}.held-by-test`;
const storeDir = () => lab().storeDir as string;
const mounted = (dir: string) => spawnSync("mountpoint", ["-q", dir]).status === 0;

/** Puts the Redis admin password back if a row moved it away (a FIFO may sit in its place). */
function restoreAdmin(): void {
    if (fs.existsSync(heldAdmin())) fs.renameSync(heldAdmin(), adminFile());
}

function unmountStore(): void {
    if (mounted(storeDir())) {
        const r = spawnSync("umount", [storeDir()], { encoding: "utf8" });
        assert.equal(r.status, 0, `umount ${storeDir()}: ${r.stderr}`);
    }
}

/** The file a held reload waits for (row 10); the lab's hosts see the workspace at the same path. */
const releaseFile = () => path.join(ws.dir, "held-reloads.release");

/** `reload`, once the release file exists (at most 50 s: then it fails, and so does the row). */
const heldReload = (reload: string) => `timeout 50 sh -c 'until [ -e "$1" ]; do sleep 0.05; done' held-reload '${releaseFile()}' && ${reload}`;

/** Lets held reloads go on, and waits until none runs any more (a killed engine leaves them on their hosts). */
function releaseHeldReloads(): void {
    fs.writeFileSync(releaseFile(), "");
    const r = spawnSync("bash", ["-c", 'for _ in $(seq 300); do pgrep -f -- "$HELD" >/dev/null || exit 0; sleep 0.1; done; exit 1'], {
        env: { ...process.env, HELD: `held-reload ${releaseFile()}` },
    });
    assert.equal(r.status, 0, "the held reloads ended within 30 s of their release");
}

const lockFiles = () => {
    const dir = path.join(ws.stateDir, ".pulumi", "locks");
    return fs.existsSync(dir) ? (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith(".json")) : [];
};

/** The storage library's metadata files in the state (`<object>.attrs`): bin/pulumi's metadata=skip writes none. */
const metadataFiles = () => (fs.readdirSync(ws.stateDir, { recursive: true }) as string[]).filter((f) => f.endsWith(".attrs"));

const ROWS: Row[] = [
    {
        fault: "a consumer's health check fails after its reload",
        host: 1,
        breaksHealth: true,
        stops: "rollout",
        appOn: "new",
        inject: (c) => {
            ws.patchConfig({ generation: c.gen, consumers: consumersWith(1, { retries: 1, retryDelaySeconds: 0.5 }) });
            labCtl("fail-health", c.host.name, "on");
        },
        says: (c) => [
            new RegExp(
                `${SECRET} → consumer ${c.consumer}: health check: http://${ipRe(c.host)}:8081/healthz answered 503, expected 200 \\(after 2 attempts\\)`,
            ),
        ],
        fix: (c) => {
            labCtl("fail-health", c.host.name, "off");
            ws.patchConfig({ consumers: base.consumers });
        },
        resume: "rotate",
    },
    {
        fault: "a consumer's reload command fails",
        host: 2,
        stops: "rollout",
        // The new file was written before the reload: the app keeps running on the old password.
        appOn: "old",
        configOn: "new",
        inject: (c) => ws.patchConfig({ generation: c.gen, consumers: consumersWith(2, { reload: "echo reload broken >&2; exit 3" }) }),
        says: (c) => [new RegExp(`${SECRET} → consumer ${c.consumer}: reload: exited with code 3 on root@${ipRe(c.host)}:22: reload broken`)],
        fix: () => ws.patchConfig({ consumers: base.consumers }),
        resume: "up",
    },
    {
        // A plain `pulumi up` (no console) after `pulumi config set --path` of the next generation.
        fault: "a consumer's host is unreachable (sshd stopped): the pre-flight finds it before anything is generated",
        host: 1,
        stops: "preflight",
        appOn: "old",
        inject: (c) => labCtl("stop-host", c.host.name),
        run: async (c) => {
            const set = await ws.pulumi(["config", "set", "--path", `rotation:secrets.${SECRET}.generation`, String(c.gen)]);
            assert.equal(set.code, 0, set.stdout + set.stderr);
            return ws.pulumi(UP, { sampleProcesses: true });
        },
        says: (c) => [
            new RegExp(`${SECRET}: pre-flight of g${c.gen} \\(3 consumers, the source, the store\\): 1 problem\\(s\\); nothing of the rotation ran:`),
            new RegExp(`${SECRET} consumer ${c.consumer}: cannot run the checks on root@${ipRe(c.host)}:22: .*Connection refused`),
            // The engine's end-of-update delete of the grant in use is refused (its generated secret stays with it).
            new RegExp(
                `kept "${SECRET}: grant g${c.gen - 1} at the redis-acl source \\(dual-active\\)": generation ${c.gen - 1} of ${SECRET} may still be in use`,
            ),
        ],
        fix: (c) => labCtl("start-host", c.host.name),
        resume: "up",
    },
    {
        fault: "SSH authentication refused (a key no host authorizes)",
        host: 1,
        stops: "preflight",
        appOn: "old",
        inject: (c) => {
            const key = path.join(ws.dir, "unauthorized_ed25519");
            fs.rmSync(key, { force: true });
            fs.rmSync(`${key}.pub`, { force: true });
            const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "not-authorized", "-f", key], { encoding: "utf8" });
            assert.equal(r.status, 0, r.stderr);
            ws.patchConfig({ generation: c.gen, consumers: consumersWith(1, { privateKeyFile: key }) });
        },
        says: (c) => [new RegExp(`${SECRET} consumer ${c.consumer}: cannot run the checks on root@${ipRe(c.host)}:22: .*Permission denied \\(publickey\\)`)],
        fix: () => ws.patchConfig({ consumers: base.consumers }),
        resume: "up",
    },
    {
        fault: "a consumer's host offers another host key than the pinned one",
        host: 0,
        stops: "preflight",
        appOn: "old",
        inject: (c) => {
            const other = hosts()[1];
            ws.patchConfig({
                generation: c.gen,
                consumers: consumersWith(0, { hostKeyFile: path.join(LAB_DIR, "hosts", other.name, "ssh_host_ed25519_key.pub") }),
            });
        },
        says: (c) => {
            const fp = (h: LabHost) =>
                spawnSync("ssh-keygen", ["-lf", path.join(LAB_DIR, "hosts", h.name, "ssh_host_ed25519_key.pub")], { encoding: "utf8" }).stdout.split(" ")[1];
            return [
                new RegExp(
                    `${SECRET} consumer ${c.consumer}: cannot run the checks on root@${ipRe(c.host)}:22: refused: ${ipRe(c.host)}:22 offered host key ${esc(fp(c.host))} but ssh-ed25519 ${esc(fp(hosts()[1]))} is pinned\\. Nothing was sent to that host`,
                ),
            ];
        },
        check: (_c, r) => assert.doesNotMatch(r.stdout + r.stderr, /ssh-keygen -R|remove with/, "no advice to drop the pin"),
        fix: () => ws.patchConfig({ consumers: base.consumers }),
        resume: "up",
    },
    {
        fault: "the source is unreachable (closed port)",
        stops: "preflight",
        inject: (c) => ws.patchConfig({ generation: c.gen, source: { ...base.source, port: 6390 } }),
        says: (c) => [
            new RegExp(`${SECRET} source: redis 127\\.0\\.1\\.30:6390 does not accept the admin credential of \\S+: .*Connection refused`),
            new RegExp(
                `kept "${SECRET}: grant g${c.gen - 1} at the redis-acl source \\(dual-active\\)": generation ${c.gen - 1} of ${SECRET} may still be in use`,
            ),
        ],
        fix: () => ws.patchConfig({ source: base.source }),
        resume: "up",
    },
    {
        // Issue 23: a store written between stage and gate once revoked the old secret and lost the new one.
        fault: "the store is written behind the rotation's back between stage and gate (its staged copy removed)",
        stops: "gate",
        inject: (c) => ws.patchConfig({ generation: c.gen }),
        run: (c) =>
            ws.pulumi(UP, {
                sampleProcesses: true,
                onEvent: (e) => {
                    if (!c.note.removed && ended(e, `${SECRET}-stage`)) {
                        fs.rmSync(storePath(SECRET, "staged"));
                        c.note.removed = true;
                    }
                },
            }),
        says: (c) => [
            new RegExp(
                `${SECRET}: gate, all 3 consumers verified on g${c.gen}: exited with code 1: store: the staged copy of generation ${c.gen} was missing \\(${esc(storePath(SECRET, "staged"))}: removed behind this rotation's back after staging\\); it was staged again\\. Find out who wrote the store, then bin/rotate resume --stack e2e --yes\\. Nothing was revoked; the old secret still works everywhere\\.`,
            ),
        ],
        check: (c, r) => {
            assert.ok(c.note.removed, "the staged copy was removed after staging");
            assert.ok(stepTimeline(r.events, `${SECRET}-gate`).failed !== undefined, "the gate ran and refused");
            assert.equal(stepTimeline(r.events, `${SECRET}-revoke`).start, undefined, "no revocation started");
            assert.equal(committedGeneration(SECRET), c.gen - 1, "the revocation was not marked as started");
        },
        resume: "rotate",
    },
    {
        fault: "the source is unreachable at the revocation, every consumer already moved (admin password unreadable)",
        stops: "revoke",
        inject: (c) => ws.patchConfig({ generation: c.gen }),
        // The gate, the revocation and the promotion follow each other within ~30 ms, faster than the
        // event log can be watched: the admin password goes away once the grant (its last user before
        // the revocation) has ended, while the rollouts run.
        run: (c) =>
            ws
                .pulumi(UP, {
                    sampleProcesses: true,
                    onEvent: (e) => {
                        if (!c.note.moved && ended(e, `${SECRET}-grant-g${c.gen}`)) {
                            fs.renameSync(adminFile(), heldAdmin());
                            c.note.moved = true;
                        }
                    },
                })
                .finally(restoreAdmin),
        says: (c) => [
            new RegExp(
                `${SECRET}: revoke g${c.gen - 1} at the redis-acl source: exited with code 1: cat: ${esc(adminFile())}: No such file or directory \\| redis 127\\.0\\.1\\.30:6379: ACL SETUSER app failed`,
            ),
        ],
        check: (c, r) => {
            assert.ok(c.note.moved, "the admin password was moved away after the grant");
            assert.ok(stepTimeline(r.events, `${SECRET}-revoke`).failed !== undefined, "the revocation ran and failed");
            assert.equal(stepTimeline(r.events, `${SECRET}-promote`).start, undefined, "nothing was promoted");
            const rollback = ws.rotate(["rollback", "--secret", SECRET]);
            assert.equal(rollback.code, 3, "past the gate, rollback is refused");
            assert.match(rollback.stderr, new RegExp(`rollback of ${SECRET} generation ${c.gen} refused: its revocation has started`));
        },
        fix: restoreAdmin,
        resume: "rotate",
    },
    {
        fault: "the store is read-only at the promotion (after the revocation)",
        stops: "promote",
        inject: (c) => ws.patchConfig({ generation: c.gen }),
        // The revocation is held where it reads the admin password (a FIFO in its place, from the end of
        // the grant), so the store can be made read-only after the gate wrote to it and before the promotion.
        run: (c) =>
            ws
                .pulumi(UP, {
                    sampleProcesses: true,
                    onEvent: (e) => {
                        if (!c.note.held && ended(e, `${SECRET}-grant-g${c.gen}`)) {
                            fs.renameSync(adminFile(), heldAdmin());
                            const r = spawnSync("mkfifo", ["-m", "600", adminFile()], { encoding: "utf8" });
                            assert.equal(r.status, 0, r.stderr);
                            c.note.held = true;
                        }
                        if (c.note.held && !c.note.readOnly && started(e, `${SECRET}-revoke`)) {
                            const r = spawnSync("mount", ["--bind", "-o", "ro", storeDir(), storeDir()], { encoding: "utf8" });
                            assert.equal(r.status, 0, `mount: ${r.stderr}`);
                            c.note.readOnly = true;
                            // Let the revocation read the admin password, then put the file back.
                            spawn(
                                "bash",
                                ["-c", 'timeout 30 bash -c \'cat -- "$1" > "$2"\' bash "$1" "$2" && mv -f -- "$1" "$2"', "bash", heldAdmin(), adminFile()],
                                { stdio: "ignore" },
                            );
                        }
                    },
                })
                .finally(() => {
                    restoreAdmin();
                    unmountStore();
                }),
        says: (c) => [
            new RegExp(
                `${SECRET}: promote g${c.gen} to current in the store: exited with code 1: chmod: changing permissions of '${esc(storePath(SECRET, "staged"))}': Read-only file system`,
            ),
        ],
        check: (c, r) => {
            assert.ok(c.note.readOnly, "the store was read-only when the revocation started");
            assert.ok(stepTimeline(r.events, `${SECRET}-revoke`).end !== undefined, "the revocation completed");
            assert.ok(stepTimeline(r.events, `${SECRET}-promote`).failed !== undefined, "the promotion ran and failed");
        },
        fix: () => {
            restoreAdmin();
            unmountStore();
        },
        resume: "up",
    },
    {
        fault: "the engine is killed (kill -9) after the first consumer's rollout ended",
        stops: "killed",
        // The other consumers' reloads wait for a file the test makes only after the kill, so the gate
        // cannot open before it however slow the machine (a race once, under load).
        inject: (c) => {
            fs.rmSync(releaseFile(), { force: true });
            ws.patchConfig({
                generation: c.gen,
                consumers: base.consumers.map((b, j) => (j === 0 ? b : { ...b, reload: heldReload(b.reload as string), timeoutSeconds: 60 })),
            });
        },
        run: (c) =>
            ws
                .pulumi(UP, {
                    sampleProcesses: true,
                    onEvent: (e, child) => {
                        const m = e.resOutputsEvent?.metadata;
                        if (!c.note.killedAt && m && urnName(m.urn).startsWith(`${SECRET}-rollout-`) && m.op !== "same") {
                            c.note.killedAt = urnName(m.urn);
                            process.kill(-child.pid!, "SIGKILL");
                        }
                    },
                })
                .finally(releaseHeldReloads),
        says: () => [],
        check: async (c, r) => {
            assert.equal(c.note.killedAt, rollouts()[0], "the engine was killed after the first consumer's rollout (the others held) ended");
            assert.equal(r.code, 137);
            const killed = hosts().find((h) => `${SECRET}-rollout-${consumerOf(h)}` === c.note.killedAt)!;
            assert.equal((await consumerState(killed, "redis")).fingerprint, sha256(storeValue(SECRET, "staged")), `${killed.name} was moved before the kill`);
            // Before metadata=skip, a kill while the engine wrote its checkpoint could leave the checkpoint's
            // metadata file empty, and the next run failed with "failed to load checkpoint: EOF" (CI, once).
            assert.deepEqual(metadataFiles(), [], "no metadata file was written that a kill could leave torn");
            const locked = await ws.pulumi(UP);
            assert.notEqual(locked.code, 0, "the killed run's lock blocks the next run");
            assert.match(locked.stdout + locked.stderr, /the stack is currently locked by 1 lock\(s\)/);
            assert.deepEqual(changedSteps(locked.events), [], "the blocked run changed nothing");
            const unlock = ws.rotate(["unlock"]);
            assert.equal(unlock.code, 0, unlock.stderr);
            assert.match(unlock.stdout, /removed the stale lock of process \d+/);
            assert.deepEqual(lockFiles(), []);
        },
        fix: () => {
            releaseHeldReloads();
            ws.patchConfig({ consumers: base.consumers });
        },
        resume: "rotate",
    },
    {
        fault: "two operators start the same stack at once",
        stops: "none",
        inject: (c) => ws.patchConfig({ generation: c.gen }),
        run: async (c) => {
            for (let tries = 1; ; tries++) {
                const both = await Promise.all([ws.pulumi(UP, { sampleProcesses: true }), ws.pulumi(UP)]);
                const refused = both.filter((r) => r.code !== 0);
                for (const r of refused) {
                    assert.match(
                        r.stdout + r.stderr,
                        /the stack is currently locked by 1 lock\(s\)\. Either wait for the other process\(es\) to end/,
                        "a refused operator is told the stack is locked",
                    );
                    assert.equal(r.events.filter((e) => e.resourcePreEvent).length, 0, "a refused run touched no resource");
                }
                assert.deepEqual(lockFiles(), [], "no lock is left behind");
                const winner = both.find((r) => r.code === 0);
                if (winner) {
                    assert.equal(refused.length, 1, "exactly one of them was refused");
                    c.note.tries = tries;
                    return winner;
                }
                // A tie: the file backend's lock (check, write, check again) refuses both when they lock
                // in the same instant. Nothing ran; the way forward is to run again.
                assert.ok(tries < 3, "a third tie in a row");
                console.log(`# two operators: both refused (a tie of the engine's lock), nothing changed; again`);
            }
        },
        says: () => [],
        check: () => {
            const lines = ws.auditLines().filter((l) => l.secret === SECRET && l.generation === generation);
            for (const phase of ["generated", "staged", "granted", "revoked", "promoted", "completed"]) {
                assert.equal(lines.filter((l) => l.phase === phase).length, 1, `${phase} was recorded once: only one operator's run did anything`);
            }
        },
        resume: "up",
    },
    {
        fault: "a consumer's disk is full (a 1 MiB tmpfs over its config directory)",
        host: 2,
        // The pre-flight asks for room for the new file and its .bak: found before anything is generated.
        stops: "preflight",
        appOn: "old",
        inject: (c) => {
            ws.patchConfig({ generation: c.gen });
            fillConfigDir(c.host);
        },
        says: (c) => [
            new RegExp(
                `${SECRET} consumer ${c.consumer}: only \\d+ bytes free in /etc/rotation-app; the new /etc/rotation-app/redis\\.yaml and its \\.bak need \\d+`,
            ),
        ],
        // Freeing the space is the fix; the tmpfs itself goes after the resume (its files copied back).
        fix: (c) => {
            if (tmpfsOn(c.host)) inHost(c.host, "rm -f /etc/rotation-app/.filler");
        },
        resume: "up",
    },
];

/**
 * A run its pre-flight stopped: from the event log, the pre-flight step failed
 * before any other step of the rotation ran (read, generate, stage, grant: none
 * at all), and nothing but refused deletes followed; and the source's ACL, the
 * store and every consumer's config and .bak are byte for byte as before.
 */
function assertRefusedByPreflight(r: RunResult, world: string): void {
    const preflight = stepTimeline(r.events, `${SECRET}-preflight`);
    assert.ok(preflight.start !== undefined && preflight.failed !== undefined, "the pre-flight ran and failed");
    const others = r.events.filter((e) => {
        const m = e.resourcePreEvent?.metadata ?? e.resOutputsEvent?.metadata;
        return m && m.type === STEP_TYPE && m.op !== "same" && urnName(m.urn) !== `${SECRET}-preflight`;
    });
    for (const e of others) {
        const m = (e.resourcePreEvent ?? e.resOutputsEvent)!.metadata;
        assert.ok(
            e.sequence > preflight.failed!,
            `${urnName(m.urn)} (${m.op}, seq ${e.sequence}) came after the pre-flight's failure (seq ${preflight.failed})`,
        );
        assert.ok(m.op === "delete" && e.resourcePreEvent, `only deletes followed, each refused: ${urnName(m.urn)} ${m.op}`);
        assert.ok(stepTimeline(r.events, urnName(m.urn)).failed !== undefined, `the delete of ${urnName(m.urn)} was refused`);
    }
    assert.equal(redisWorld(SECRET, appEtc), world, "ACL LIST, the store's files, every consumer's redis.yaml and .bak: byte for byte as before");
}

/** The step `name` (not its component, which has the same name) ended in this event. */
function ended(e: EngineEvent, name: string): boolean {
    const m = e.resOutputsEvent?.metadata;
    return !!m && m.type === STEP_TYPE && urnName(m.urn) === name && m.op !== "same";
}

/** The step `name` started in this event. */
function started(e: EngineEvent, name: string): boolean {
    const m = e.resourcePreEvent?.metadata;
    return !!m && m.type === STEP_TYPE && urnName(m.urn) === name && m.op !== "same";
}

/** Everything that may still be in place after a row, whatever failed. */
function cleanUp(): void {
    restoreAdmin();
    unmountStore();
    for (const h of hosts()) {
        labCtl("start-host", h.name);
        labCtl("fail-health", h.name, "off");
        unmountTmpfs(h);
    }
    ws.patchConfig({ consumers: base.consumers, source: base.source });
}

async function runRow(row: Row): Promise<void> {
    const t0 = Date.now();
    const old = storeValue(SECRET);
    remember(old);
    assert.equal(old, history[generation], "the row starts from the last completed generation");
    generation++;
    const host = hosts()[row.host ?? 0];
    const c: Ctx = { gen: generation, old, host, consumer: consumerOf(host), note: {} };
    // A row the pre-flight stops changes nothing outside the state: the source, the store, every config.
    const world = row.stops === "preflight" ? redisWorld(SECRET, appEtc) : undefined;
    const sampler = new HealthSampler();
    let polls: Map<string, Polls> | undefined;
    let failed: unknown;
    try {
        row.inject?.(c);
        const r = row.run ? await row.run(c) : await ws.pulumi(UP, { sampleProcesses: true });
        const out = r.stdout + r.stderr;
        let fresh = storeHas(SECRET, "staged") ? storeValue(SECRET, "staged") : storeValue(SECRET);
        remember(old, fresh);
        if (world === undefined) assert.notEqual(fresh, old, "a new password was staged");
        history[generation] = fresh;
        for (const re of row.says(c)) assert.match(out, re, `the faulty run says what failed:\n${out.slice(-2500)}`);
        if (world !== undefined) assertRefusedByPreflight(r, world);

        // (b) nothing revoked before every consumer was verified
        assertRevokeWaited(r);
        assertAuditOrder(generation);
        const revoke = stepTimeline(r.events, `${SECRET}-revoke`);
        const gate = stepTimeline(r.events, `${SECRET}-gate`);
        if (row.stops === "none") {
            assertSucceeded(r, "the run that got the lock");
            assert.ok(revoke.end !== undefined, "it revoked");
        } else {
            assert.notEqual(r.code, 0, "the faulty run fails");
            const revoked = row.stops === "promote";
            assert.equal(storeValue(SECRET), old, "the store's current value is unchanged");
            if (world === undefined) assert.equal(storeValue(SECRET, "staged"), fresh, "the staged password is kept");
            assert.equal(
                redisAuthOk(old),
                !revoked,
                revoked ? "the old password was revoked (after every consumer)" : "the old password still works at the source",
            );
            if (world === undefined) assert.equal(redisAuthOk(fresh), true, "the new password works (dual-active)");
            if (["preflight", "rollout", "killed"].includes(row.stops)) {
                assert.equal(gate.start, undefined, "the gate did not open");
                assert.equal(revoke.start, undefined, "no revocation started");
            }
            if (row.stops === "rollout") {
                assert.ok(stepTimeline(r.events, `${SECRET}-rollout-${c.consumer}`).failed !== undefined, `${c.consumer}'s rollout failed`);
                assert.ok(
                    ws
                        .auditLines()
                        .some((l) => l.generation === generation && l.phase === "consumer-verified" && l.outcome === "failed" && l.consumer === c.consumer),
                    "the audit log records the failure at that consumer",
                );
            }
        }

        // (c) no config lost; who runs on what
        const held = assertConfigs(old, fresh);
        for (const h of hosts()) {
            const s = await consumerState(h, "redis");
            const faulty = row.stops === "rollout" && h.name === host.name;
            const expect =
                row.stops === "preflight" ? "old" : faulty ? row.appOn! : row.stops === "killed" ? (s.fingerprint === sha256(fresh) ? "new" : "old") : "new";
            assert.equal(s.fingerprint, sha256(expect === "new" ? fresh : old), `${h.name} runs on the ${expect} password`);
            if (!(faulty && row.breaksHealth)) assert.ok(s.healthy, `${h.name} is healthy`);
            const config = faulty ? (row.configOn ?? row.appOn!) : expect;
            if (row.stops !== "killed" && world === undefined) assert.equal(held.get(h.name), config, `${h.name}'s config holds the ${config} password`);
        }
        await row.check?.(c, r);
        const faultSeconds = r.seconds;

        // (d) fix the cause, resume, completed
        let resumeSeconds = 0;
        if (row.stops !== "none") {
            row.fix?.(c);
            const t1 = Date.now();
            const again = row.resume === "rotate" ? ws.rotate(["resume", "--secret", SECRET, "--yes"]) : await ws.pulumi(UP, { sampleProcesses: true });
            resumeSeconds = (Date.now() - t1) / 1000;
            assertSucceeded(again, "resume after the fix");
            assertRevokeWaited(again);
            if (world !== undefined) {
                // The new password is drawn only now.
                fresh = storeValue(SECRET);
                remember(fresh);
                assert.notEqual(fresh, old, "the resume rotated");
                history[generation] = fresh;
            }
        }
        await assertCompleted(old, fresh);
        assert.deepEqual(lockFiles(), [], "no lock is left");
        polls = await sampler.stop();
        console.log(
            `# ${row.fault}: faulty run ${faultSeconds.toFixed(1)}s, resume ${resumeSeconds.toFixed(1)}s, row ${((Date.now() - t0) / 1000).toFixed(1)}s`,
        );
    } catch (e) {
        failed = e;
    }
    try {
        if (!polls) polls = await sampler.stop();
        row.fix?.(c);
        cleanUp();
    } catch (e) {
        if (!failed) throw e;
        console.log(`# cleaning up after a failed row also failed: ${(e as Error).message}`);
    }
    if (failed) {
        for (const [name, p] of polls ?? []) if (p.failures) console.log(`# ${name}: ${p.failures} of ${p.polls} health polls failed: ${p.first.join("; ")}`);
        throw failed;
    }

    // (a) no consumer lost its working secret at any moment (the broken one aside)
    for (const h of hosts()) {
        const p = polls!.get(h.name)!;
        assert.ok(p.polls >= 10, `${h.name}'s /healthz was polled throughout the row (${p.polls} polls)`);
        if (row.breaksHealth && h.name === host.name) {
            assert.ok(p.failures > 0, `${h.name}: the fault broke its health, as the row says`);
            continue;
        }
        assert.equal(p.failures, 0, `${h.name}: ${p.failures} of ${p.polls} health polls failed: ${p.first.join("; ")}`);
    }
}

/**
 * Registers rows `from`..`to` (numbered as in ROWS, from 1) in this file, in
 * order, on a lab reset before them and one stack, then the audit log's hash
 * chain and the leak scan over what they ran.
 */
export function faultMatrix(from: number, to: number): void {
    before(() => {
        labCtl("up", "--reset");
        ws = new Workspace(`faults-${from}`);
        const cfg = redisStack(0) as typeof base;
        base = { consumers: cfg.consumers, source: cfg.source };
        ws.setConfig(cfg);
        history[0] = storeValue(SECRET);
        remember(history[0]);
        for (const h of hosts()) {
            const text = fs.readFileSync(path.join(h.etcDir, "redis.yaml"), "utf8");
            const line = `  password: ${yamlQuote(history[0])}\n`;
            assert.ok(text.includes(line), `${h.name}: the lab's redis.yaml holds the lab's password`);
            shapes.set(h.name, text.replace(line, "  password: PASSWORD\n"));
        }
    });

    after(() => {
        if (ws) cleanUp();
    });

    for (const [i, row] of ROWS.entries()) {
        if (i + 1 >= from && i + 1 <= to) test(`fault ${i + 1}: ${row.fault}`, () => runRow(row));
    }

    test(`the audit log of rows ${from}-${to} is one intact hash chain`, () => assertAuditChain(ws));

    test(`no secret leaked anywhere in the runs of rows ${from}-${to}`, () => {
        scanForLeaks(ws);
    });
}
