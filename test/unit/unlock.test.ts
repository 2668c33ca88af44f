// bin/rotate unlock on a file backend: a stale lock (its engine gone) is
// removed, but not while a step provider of the killed run still runs.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";

const ROOT = path.resolve(__dirname, "../..");

function staleLock(): { env: NodeJS.ProcessEnv; lock: string } {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), "unlock-"));
    const dir = path.join(state, ".pulumi", "locks", "organization", "secret-rotation", "prod");
    fs.mkdirSync(dir, { recursive: true });
    const lock = path.join(dir, "a.json");
    // A pid that is not running: the engine that held the lock was killed.
    const dead = spawnSync("true").pid!;
    fs.writeFileSync(lock, JSON.stringify({ pid: dead, hostname: os.hostname(), timestamp: "2026-11-26T00:00:00Z" }));
    return { env: { ...process.env, PULUMI_BACKEND_URL: `file://${state}` }, lock };
}

const unlock = (env: NodeJS.ProcessEnv) => spawnSync(path.join(ROOT, "bin", "rotate"), ["unlock", "--stack", "prod"], { env, encoding: "utf8" });

test("unlock waits for a killed run's step provider, refuses while it runs, and removes the lock once it is gone", async () => {
    const { env, lock } = staleLock();
    // Stands in for an orphaned provider: its command line is what the launcher runs, its parent is no engine.
    const orphan = spawn("bash", ["-c", 'exec -a "node /srv/rotation/provider/main.ts 127.0.0.1:1" sleep 30'], { stdio: "ignore" });
    await new Promise((r) => setTimeout(r, 200));
    try {
        const refused = unlock(env);
        assert.equal(refused.status, 4, refused.stdout + refused.stderr);
        assert.match(refused.stderr, new RegExp(`a step provider of a killed run still runs \\(pid ${orphan.pid}\\)`));
        assert.ok(fs.existsSync(lock), "the lock stays");
    } finally {
        orphan.kill("SIGKILL");
    }
    await new Promise((r) => orphan.on("close", r));
    const done = unlock(env);
    assert.equal(done.status, 0, done.stderr);
    assert.match(done.stdout, /removed the stale lock/);
    assert.equal(fs.existsSync(lock), false);
});

test("unlock repairs the checkpoint's metadata file a kill left empty, and only when the checkpoint itself is whole", () => {
    const { env, lock } = staleLock();
    const state = env.PULUMI_BACKEND_URL!.slice("file://".length);
    const stacks = path.join(state, ".pulumi", "stacks", "secret-rotation");
    fs.mkdirSync(stacks, { recursive: true });
    const checkpoint = path.join(stacks, "prod.json");
    fs.writeFileSync(checkpoint, JSON.stringify({ version: 3, checkpoint: { stack: "prod" } }));
    fs.writeFileSync(`${checkpoint}.attrs`, ""); // as found after kill -9: the engine was writing it
    fs.writeFileSync(`${checkpoint}.bak`, '{"version": 3, "checkpo'); // a torn checkpoint: its sidecar is left alone
    fs.writeFileSync(`${checkpoint}.bak.attrs`, "");
    const r = unlock(env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /removed the stale lock/);
    assert.match(r.stdout, new RegExp(`removed ${checkpoint.replace(/[.]/g, "\\.")}\\.attrs: the killed engine left this metadata file torn`));
    assert.equal(fs.existsSync(lock), false);
    assert.equal(fs.existsSync(`${checkpoint}.attrs`), false, "the torn sidecar is gone");
    assert.ok(fs.existsSync(checkpoint), "the checkpoint stays");
    assert.ok(fs.existsSync(`${checkpoint}.bak.attrs`), "beside a torn checkpoint, nothing is removed");
    const again = unlock(env);
    assert.match(again.stdout, /holds no lock/);
});
