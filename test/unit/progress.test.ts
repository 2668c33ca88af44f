// The console's live progress: engine events mapped back to plan steps, the
// terminal frame (and its summary when consumers do not fit), plain lines.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { RunTracker, plainLine, renderFrame } from "../../cli/progress";
import type { RunSecret } from "../../cli/runRecord";
import { STEP_TYPE } from "../../provider/types";

const STEP = STEP_TYPE;
const urn = (name: string) => `urn:pulumi:dev::secret-rotation::rotation:index:Rotation$${STEP_TYPE}::${name}`;
let seq = 0;
const ev = (e: Partial<EngineEvent>) => ({ sequence: seq++, timestamp: 0, ...e }) as EngineEvent;
const pre = (name: string, op = "update") => ev({ resourcePreEvent: { metadata: { op, urn: urn(name), type: STEP } } as never });
const done = (name: string, op = "update") => ev({ resOutputsEvent: { metadata: { op, urn: urn(name), type: STEP } } as never });
const failed = (name: string) => ev({ resOpFailedEvent: { status: 1, steps: 1, metadata: { op: "update", urn: urn(name), type: STEP } } as never });
const diag = (name: string | undefined, message: string) =>
    ev({ diagnosticEvent: { urn: name ? urn(name) : undefined, message, severity: "error", color: "never" } as never });

const secret = (name: string, consumers: number, mode: RunSecret["mode"] = "rotate"): RunSecret => ({
    name,
    generation: 3,
    mode,
    consumers: Array.from({ length: consumers }, (_, i) => `web-${i + 1}`),
    after: [],
});

test("events map to plan steps by resource name: start, end, unchanged, failure with the step's error", () => {
    let now = 1000;
    const t = new RunTracker([secret("app-redis", 2), secret("app-redis-x", 1)], () => now);
    const changes: string[] = [];
    t.onChange((r, c) => changes.push(`${r.step}:${c}:${r.outcome}`));
    t.handle(pre("app-redis-previous-read", "same"));
    t.handle(done("app-redis-previous-read", "same"));
    t.handle(pre("app-redis-g3"));
    now = 1500;
    t.handle(done("app-redis-g3"));
    t.handle(pre("app-redis-rollout-web-1"));
    t.handle(pre("app-redis-x-rollout-web-1"));
    now = 4000;
    t.handle(diag("app-redis-rollout-web-1", "error: update failed: app-redis → consumer web-1: health check: answered 503\n"));
    t.handle(failed("app-redis-rollout-web-1"));
    t.handle(pre("app-redis-grant-g1", "delete"));
    t.handle(diag(undefined, "error: update failed"));
    t.handle(diag(undefined, "error: something the engine said"));
    const by = (r: string) => t.steps.find((s) => s.resource === r)!;
    assert.equal(by("app-redis-previous-read").outcome, "unchanged");
    assert.deepEqual([by("app-redis-g3").outcome, by("app-redis-g3").start, by("app-redis-g3").end], ["ok", 1000, 1500]);
    const w1 = by("app-redis-rollout-web-1");
    assert.deepEqual([w1.outcome, w1.consumer, w1.error], ["failed", "web-1", "app-redis → consumer web-1: health check: answered 503"]);
    assert.equal(by("app-redis-x-rollout-web-1").secret, "app-redis-x", "the longest secret name owns a resource");
    assert.deepEqual([by("app-redis-grant-g1").phase, by("app-redis-grant-g1").secret], ["other", "app-redis"], "a withdrawal outside the plan is tracked");
    assert.deepEqual(
        changes.filter((c) => c.startsWith("rollout/web-1:ended")),
        ["rollout/web-1:ended:failed"],
        "a failure is announced once (its error event, then the engine's failed event)",
    );
    assert.deepEqual(t.errors, ["something the engine said"]);
    assert.deepEqual(t.failedSecrets(), ["app-redis"]);
    t.finish();
    assert.equal(by("app-redis-x-rollout-web-1").outcome, "failed", "a step still running when the run ended is not counted done");
});

test("a failed pre-flight: its problems read back from the step's error, one per line; only pre-flights and refused deletes ran", () => {
    let now = 1000;
    const t = new RunTracker([secret("app-redis", 2)], () => now);
    t.handle(pre("app-redis-preflight"));
    now = 2200;
    t.handle(
        diag(
            "app-redis-preflight",
            "error: update failed: app-redis: pre-flight of g3 (2 consumers, the source, the store): 2 problem(s); nothing of the rotation ran:\n" +
                "app-redis consumer web-2: cannot run the checks on root@127.0.1.12:22: ssh: connect to host 127.0.1.12 port 22: Connection refused\n" +
                "app-redis store: no current secret at '/var/lib/store/app\n" +
                "redis'\n",
        ),
    );
    t.handle(failed("app-redis-preflight"));
    t.handle(pre("app-redis-grant-g2", "delete"));
    t.handle(
        diag(
            "app-redis-grant-g2",
            'error: deleting failed: kept "app-redis: grant g2 at the redis-acl source (dual-active)": generation 2 of app-redis may still be in use',
        ),
    );
    assert.deepEqual(t.preflight(), {
        ok: false,
        seconds: 1.2,
        consumers: 2,
        problems: [
            {
                secret: "app-redis",
                at: "consumer web-2",
                problem: "cannot run the checks on root@127.0.1.12:22: ssh: connect to host 127.0.1.12 port 22: Connection refused",
            },
            { secret: "app-redis", at: "store", problem: "no current secret at '/var/lib/store/app\nredis'" },
        ],
    });
    assert.equal(t.ranOnlyPreflight(), true, "a delete the guard refused took nothing back");
    const frame = renderFrame(t, "title", now, 40, 200);
    assert.ok(
        frame.includes(
            "    app-redis consumer web-2: cannot run the checks on root@127.0.1.12:22: ssh: connect to host 127.0.1.12 port 22: Connection refused",
        ),
        frame.join("\n"),
    );
    t.handle(pre("app-redis-g2", "delete"));
    t.handle(done("app-redis-g2", "delete"));
    assert.equal(t.ranOnlyPreflight(), false, "a delete that ran changed the state");
    const clear = new RunTracker([secret("app-redis", 2)], () => now);
    clear.handle(pre("app-redis-preflight", "same"));
    clear.handle(done("app-redis-preflight", "same"));
    assert.equal(clear.preflight(), undefined, "a pre-flight of a generation checked before did not run");
});

test("the terminal frame: phases per secret, one line per consumer; a fleet that does not fit is summarized", () => {
    const t = new RunTracker([secret("app-pg", 3)], () => 5000);
    t.handle(pre("app-pg-rollout-web-2"));
    const lines = renderFrame(t, "title", 5000, 40, 120);
    assert.equal(lines[0], "title");
    assert.match(lines[1], /^app-pg g2 -> g3: \.pre-flight \.read \.generate \.stage \.grant >rollout 0\/3 \.gate \.revoke/);
    assert.deepEqual(
        lines.slice(2).map((l) => l.trim().split(/\s+/).slice(0, 2).join(" ")),
        ["web-1 waiting", "web-2 deploy,", "web-3 waiting"],
    );

    // A step per consumer (rollout.batch 1): batches are read back per consumer in batch.test.ts.
    const big = new RunTracker([{ ...secret("fleet", 200), batch: 1 }], () => 0);
    big.handle(pre("fleet-rollout-web-7"));
    big.handle(pre("fleet-rollout-web-9"));
    big.handle(diag("fleet-rollout-web-9", "error: fleet → consumer web-9: reload: exited with code 3"));
    const small = renderFrame(big, "t", 0, 12, 60);
    assert.ok(small.length <= 12, `fits 12 rows (${small.length})`);
    assert.ok(small.some((l) => /web-9 +FAILED/.test(l)) && small.some((l) => /web-7 +deploy/.test(l)), "running and failed consumers are listed");
    assert.ok(small.some((l) => l.includes("200 consumers: 0 done, 1 running, 198 waiting, 1 failed")));
    assert.ok(
        small.every((l) => l.length <= 60),
        "no line is wider than the terminal",
    );
});

test("plain lines: ISO time, secret, consumer or phase, outcome", () => {
    const t = new RunTracker([secret("app-redis", 1)], () => Date.parse("2026-11-26T12:00:02.500Z"));
    t.handle(pre("app-redis-rollout-web-1"));
    const r = t.steps.find((s) => s.consumer === "web-1")!;
    assert.equal(plainLine(r, "started", Date.parse("2026-11-26T12:00:02.500Z")), "2026-11-26T12:00:02.500Z app-redis consumer web-1 started");
    r.end = r.start! + 2100;
    r.outcome = "ok";
    assert.equal(plainLine(r, "ended", r.end), "2026-11-26T12:00:04.600Z app-redis consumer web-1 ok in 2.1s");
    const v = t.steps.find((s) => s.step === "verify/source")!;
    assert.match(plainLine({ ...v, outcome: "failed", error: "old still accepted" }, "ended", 0), /app-redis verify\/source FAILED: old still accepted$/);
});
