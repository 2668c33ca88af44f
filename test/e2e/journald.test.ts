// Log checks in a unit's journal (issue 26) against the lab's journald: each
// lab host runs systemd-journald, its apps in <unit>.service cgroups, so a
// consumer's logCheck names its unit (redis-app) instead of a file. A worker
// of that unit that logs auth failures after the reload fails the consumer's
// check, named, with nothing revoked; a clean rotation's Verification 3
// counts 0 in every consumer's journal; a worker on a stale copy of the
// password, refused once the old one is revoked, is counted by its errors
// (priority err). The leak scan reads the journals too (leaks.ts).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { assertAuditChain, remember } from "./checks";
import { hosts, LAB_DIR, lab, labCtl, type LabHost, redisAuthOk, redisStack, ROOT, storeHas, storeValue, Workspace } from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const SECRET = "app-redis";
let ws: Workspace;
const workers: { stop: () => void }[] = [];

/** Each consumer's check in its app's journal: host1 and host2 by a pattern, host3 by its errors. */
function journalStack(): Record<string, unknown> {
    const stack = redisStack(0);
    const consumers = (stack.consumers as Record<string, unknown>[]).map((c, i) => ({
        ...c,
        logCheck: i < 2 ? { unit: "redis-app", pattern: "AUTH_FAILED", windowSeconds: 1 } : { unit: "redis-app", priority: "err", windowSeconds: 1 },
    }));
    return { ...stack, consumers };
}

/**
 * Another process of the host's redis-app unit (its cgroup, its journal
 * stream: lab/lib/in-unit.sh), e.g. a worker of the service with its own copy
 * of the password: it pings Redis every 0.2 s and, when refused, logs
 * `AUTH_FAILED` at priority err to the unit's journal. With `after`, it
 * starts only once that file changed (the rollout rewrote the config). Only
 * paths reach its command line.
 */
function worker(h: LabHost, password: string, after?: string): { stop: () => void } {
    const l = lab();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "journald-worker-"));
    fs.writeFileSync(path.join(dir, "pass"), password, { mode: 0o600 });
    const loop = `if [ -n "$2" ]; then s=$(sha256sum < "$2"); while [ "$(sha256sum < "$2")" = "$s" ]; do sleep 0.05; done; fi
while :; do
  REDISCLI_AUTH="$(cat "$1")" redis-cli --no-auth-warning -h ${l.redis.host} -p ${l.redis.port} --user ${l.redis.user} PING 2>/dev/null | grep -qx PONG ||
    echo "<3>AUTH_FAILED worker: WRONGPASS with its own copy of the password"
  sleep 0.2
done`;
    const slice = fs.readFileSync(path.join(LAB_DIR, "run", `${h.name}.slice`), "utf8").trim();
    const holder = fs.readFileSync(path.join(LAB_DIR, "run", `${h.name}.pid`), "utf8").trim();
    const child = spawn(
        "nsenter",
        [
            "-t",
            holder,
            "-m",
            "--",
            "bash",
            path.join(ROOT, "lab/lib/in-unit.sh"),
            slice,
            "redis-app",
            "bash",
            "-c",
            loop,
            "worker",
            path.join(dir, "pass"),
            after ?? "",
        ],
        { detached: true, stdio: "ignore" },
    );
    const w = {
        stop: () => {
            try {
                process.kill(-child.pid!, "SIGKILL");
            } catch {
                // already gone
            }
            fs.rmSync(dir, { recursive: true, force: true });
        },
    };
    workers.push(w);
    return w;
}

/** The host's `journalctl -u redis-app`, read from outside (its journal's files): the unit's messages. */
function unitMessages(h: LabHost): string[] {
    const r = spawnSync("journalctl", ["--directory", h.journalDir, "-q", "-u", "redis-app", "-o", "cat"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter(Boolean);
}

before(() => {
    labCtl("up", "--reset");
    ws = new Workspace("journald");
    ws.setConfig(journalStack());
    remember(storeValue(SECRET));
});

after(() => {
    for (const w of workers) w.stop();
});

test("a worker of the unit logs auth failures after the reload: that consumer's log check fails, named, nothing is revoked; resumed without it, every journal counts 0 after the revocation", async () => {
    const old = storeValue(SECRET);
    const [h1, h2] = hosts();
    assert.ok(
        unitMessages(h1).some((m) => /^listening on /.test(m)),
        "the lab's app logs to its unit's journal (journalctl -u redis-app)",
    );
    const stray = worker(h2, "not-the-password", "/etc/rotation-app/redis.yaml");
    let r: ReturnType<typeof ws.rotate>;
    try {
        r = ws.rotate(["start", "--secret", SECRET, "--yes", "--json"]);
    } finally {
        stray.stop();
    }
    assert.notEqual(r.code, 0, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout);
    const failed = doc.steps.filter((s: { outcome: string }) => s.outcome === "failed");
    assert.deepEqual(
        failed.map((s: { step: string }) => s.step),
        [`rollout/redis-${h2.name}`],
        "only that consumer's rollout failed",
    );
    assert.match(failed[0].error, /app-redis → consumer redis-host2: no auth failures in the journal of unit redis-app/);
    assert.match(failed[0].error, /log check: the journal of unit redis-app shows \d+ auth failure\(s\) after the reload/);
    assert.ok(!doc.steps.some((s: { step: string; outcome: string }) => s.step === "revoke" && s.outcome === "ok"), "nothing was revoked");
    assert.equal(redisAuthOk(old), true, "the old password still works");
    const staged = storeValue(SECRET, "staged");
    remember(staged);
    assert.ok(
        unitMessages(h2).some((m) => m.startsWith("AUTH_FAILED worker")),
        "the worker's failures are in host2's redis-app journal",
    );

    // Without the worker, resume completes; Verification 3 counts in each consumer's journal from the gate's cursor.
    const resumed = ws.rotate(["resume", "--yes", "--json"]);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    const rdoc = JSON.parse(resumed.stdout);
    const line = rdoc.audit.find((l: Record<string, unknown>) => l.phase === "consumers-verified");
    assert.deepEqual(
        [line.outcome, line.authFailures, line.authFailuresFromCheck, line.authFailuresInJournal],
        ["ok", "redis-host1=0 redis-host2=0 redis-host3=0", undefined, "redis-host1 redis-host2 redis-host3"],
    );
    const report = fs.readFileSync(rdoc.report, "utf8");
    for (const h of hosts())
        assert.match(
            report,
            new RegExp(`<td>redis-${h.name}</td><td>0</td><td>the revocation \\(the gate noted the journal's cursor\\)</td><td>unit journal</td>`),
        );
    assert.equal(storeValue(SECRET), staged);
    assert.equal(storeHas(SECRET, "staged"), false);
    assert.equal(redisAuthOk(old), false, "the old password is revoked");
});

test("a worker on a stale copy of the password, refused after the revocation: its errors are counted in its unit's journal, named; nothing is undone", async () => {
    const old = storeValue(SECRET);
    const h3 = hosts()[2];
    worker(h3, old);
    const r = await ws.rotateSampled(["start", "--secret", SECRET, "--yes", "--json"]);
    assert.equal(r.code, 5, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout);
    const verify = doc.steps.find((s: { step: string }) => s.step === "verify/consumers");
    assert.equal(verify.outcome, "failed");
    const count = /app-redis → consumer redis-host3: (\d+) error\(s\) in the journal of unit redis-app \(priority err or above\) since the revocation/.exec(
        verify.error,
    );
    assert.ok(count && Number(count[1]) > 0, verify.error);
    assert.match(verify.error, /1 of 3 consumers logged errors after the revocation/);
    const line = doc.audit.find((l: Record<string, unknown>) => l.phase === "consumers-verified");
    assert.equal(line.authFailures, `redis-host1=0 redis-host2=0 redis-host3=${count![1]}`, "the audit line carries every consumer's count");
    const report = fs.readFileSync(doc.report, "utf8");
    assert.match(report, new RegExp(`<td>redis-host3</td><td><span class="bad">${count![1]}</span></td><td>the revocation`));
    const fresh = storeValue(SECRET);
    remember(fresh);
    assert.notEqual(fresh, old, "the new secret stays current");
    assert.equal(redisAuthOk(fresh), true);
});

test("the audit log is one intact hash chain", () => assertAuditChain(ws));

test("no secret leaked: output, reports, state, and every host's journal", () => {
    for (const w of workers) w.stop();
    scanForLeaks(ws);
});
