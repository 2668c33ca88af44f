// Canary waves, automatic rollback and rotation windows on the real engine and
// lab: six consumers (env files on the lab's three hosts whose health command
// authenticates to Redis) in waves [1, 2, "100%"].
import assert from "node:assert/strict";
import * as os from "node:os";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { after, test } from "node:test";
import { remember } from "./checks";
import {
    authOk,
    consumerEntry,
    consumerName,
    currentSecret,
    type EngineEvent,
    type Fleet,
    labCtl,
    localPath,
    setupFleet,
    stackConfig,
    urnName,
    verify,
    Workspace,
} from "../../lab/driver";
import { scanForLeaks } from "./leaks";
import { STEP_TYPE } from "../../provider/types";

const STEP = STEP_TYPE;
const WAVES = [[0], [1, 2], [3, 4, 5]];
const FAILING = 2; // in wave 2
const valueIn = (f: Fleet, i: number, suffix = "") => /^REDIS_PASSWORD=(.*)$/m.exec(fs.readFileSync(localPath(f, i) + suffix, "utf8"))?.[1];

/**
 * The fleet's secret in waves. A `broken` consumer is a service pinned to the
 * secret it has now: its health check accepts only that one (by its sha256),
 * so it fails on the new secret and passes again once the old one is back.
 */
function flat(f: Fleet, generation: number, extra: Record<string, unknown> = {}, broken: number[] = []): Record<string, unknown> {
    const pinned = createHash("sha256").update(currentSecret(f)).digest("hex");
    const pinnedHealth = (i: number) =>
        `[ "$(sed -n 's/^REDIS_PASSWORD=//p' /etc/rotation-app/fleet/${consumerName(f, i)}.env | tr -d '\\n' | sha256sum | cut -c1-64)" = ${pinned} ] || { echo "pinned to the old secret" >&2; exit 1; }`;
    return {
        ...stackConfig(f, generation),
        consumers: Array.from({ length: f.count }, (_, i) => {
            const { logCheck: _unused, ...c } = consumerEntry(f, i);
            return broken.includes(i) ? { ...c, health: { command: pinnedHealth(i) }, retries: 0 } : { ...c, logCheck: _unused };
        }),
        rollout: { waves: [1, 2, "100%"], onFailure: "stop" },
        ...extra,
    };
}

/** Event sequence numbers of a rollout's start and end (any operation), from one update's events. */
function span(events: EngineEvent[], resource: string): { start?: number; end?: number } {
    const t: { start?: number; end?: number } = {};
    for (const e of events) {
        const pre = e.resourcePreEvent?.metadata;
        const out = e.resOutputsEvent?.metadata ?? e.resOpFailedEvent?.metadata;
        // Components share their step's name (the gate component and its step): steps only.
        if (pre && pre.type === STEP && urnName(pre.urn) === resource && pre.op !== "same") t.start ??= e.sequence;
        if (out && out.type === STEP && urnName(out.urn) === resource && out.op !== "same") t.end ??= e.sequence;
    }
    return t;
}

const stop: Fleet = { user: "wave6", secret: "wave-6", count: 6 };
const rb: Fleet = { user: "wave6rb", secret: "wave-6rb", count: 6 };
let ws: Workspace;
let wsRb: Workspace;

after(() => labCtl("fail-health", "host1", "off"));

test("waves [1, 2, 100%]: each wave starts only after every consumer of the one before passed; preview's outputs and the plan show them", async () => {
    labCtl("up", "--reset");
    setupFleet(stop);
    const before = currentSecret(stop);
    remember(before);
    ws = new Workspace("waves");
    ws.setConfig(flat(stop, 1));
    const plan = ws.rotate(["plan", "--json"]);
    assert.equal(plan.code, 0, plan.stderr);
    const planned = JSON.parse(plan.stdout);
    assert.deepEqual(
        planned.steps.filter((s: { phase: string }) => s.phase === "rollout").map((s: { wave: number }) => s.wave),
        [1, 2, 2, 3, 3, 3],
    );
    const svg = fs.readFileSync(planned.svg, "utf8");
    for (const label of ["wave 1 (1)", "wave 2 (2)", "wave 3 (3)"]) assert.ok(svg.includes(label), `the picture labels ${label}`);

    const up = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assert.equal(up.code, 0, up.stderr + up.stdout.slice(-2000));
    const spans = WAVES.map((w) => w.map((i) => span(up.events, `${stop.secret}-rollout-${consumerName(stop, i)}`)));
    for (let k = 1; k < WAVES.length; k++) {
        const lastEnd = Math.max(...spans[k - 1].map((s) => s.end!));
        const firstStart = Math.min(...spans[k].map((s) => s.start!));
        assert.ok(firstStart > lastEnd, `wave ${k + 1} started (seq ${firstStart}) after every consumer of wave ${k} ended (seq ${lastEnd})`);
    }
    const revoke = span(up.events, `${stop.secret}-revoke`);
    assert.ok(revoke.start! > Math.max(...spans[2].map((s) => s.end!)), "the revocation waited for the last wave");
    const fresh = currentSecret(stop);
    remember(fresh);
    assert.equal(verify(stop, before), "ok");
    const outputs = JSON.parse((await ws.pulumi(["stack", "output", "--json"])).stdout);
    assert.deepEqual(
        outputs.secrets[stop.secret].waves,
        WAVES.map((w) => w.map((i) => consumerName(stop, i))),
        "the stack output (and so preview) lists the waves",
    );
});

test("a failure in wave 2 stops the rollout: wave 3 untouched (no step, config unchanged), nothing revoked, the old secret valid", async () => {
    const old = currentSecret(stop);
    ws.setConfig(flat(stop, 2, {}, [FAILING]));
    const up = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(up.code, 0, "the update fails");
    assert.match(up.stdout + up.stderr, new RegExp(`${stop.secret} → consumer ${consumerName(stop, FAILING)}: health check`));
    for (const i of WAVES[2]) {
        const name = `${stop.secret}-rollout-${consumerName(stop, i)}`;
        assert.ok(
            !up.events.some((e) => e.resourcePreEvent && urnName(e.resourcePreEvent.metadata.urn) === name),
            `no step of ${consumerName(stop, i)} (wave 3) in the events`,
        );
        assert.equal(valueIn(stop, i), old, `${consumerName(stop, i)}'s config still holds the old secret`);
    }
    const fresh = fs.readFileSync(`${localPath(stop, 0)}`, "utf8").match(/^REDIS_PASSWORD=(.*)$/m)![1];
    remember(fresh);
    assert.notEqual(fresh, old, "wave 1 moved to the new secret");
    assert.equal(authOk(stop, old), true, "the old secret still works: nothing was revoked");
    assert.equal(authOk(stop, fresh), true, "both are valid (dual-active)");
    assert.equal(span(up.events, `${stop.secret}-revoke`).start, undefined, "the revocation never started");
});

test("onFailure: rollback: bin/rotate follows the failed update with the rollback; waves 1 and 2 hold the old secret again, the new one is rejected, exit non-zero, audit says rolled back", () => {
    setupFleet(rb);
    const old = currentSecret(rb);
    remember(old);
    wsRb = new Workspace("waves-rollback");
    wsRb.setConfig(flat(rb, 0, { rollout: { waves: [1, 2, "100%"], onFailure: "rollback" } }, [FAILING]));
    const r = wsRb.rotate(["start", "--secret", rb.secret, "--yes", "--plain"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(
        r.stdout,
        new RegExp(`${rb.secret}: rollout.onFailure is rollback: taking generation 1 back now \\(consumer ${consumerName(rb, FAILING)} failed: .*health check`),
    );
    assert.match(
        r.stdout,
        new RegExp(`rolled back ${rb.secret}: every consumer holds the old secret again and the new one is withdrawn; the rotation failed \\(exit 1\\)`),
    );
    const fresh = valueIn(rb, 0, ".bak")!; // the restore kept the new secret as the .bak
    remember(fresh);
    assert.notEqual(fresh, old);
    for (const i of [...WAVES[0], ...WAVES[1], ...WAVES[2]]) assert.equal(valueIn(rb, i), old, `${consumerName(rb, i)} holds the old secret`);
    assert.equal(authOk(rb, old), true, "the old secret works");
    assert.equal(authOk(rb, fresh), false, "the new one is rejected at the source");
    assert.ok(
        wsRb.auditLines().some((l) => l.secret === rb.secret && l.generation === 1 && l.phase === "rolled-back" && l.outcome === "ok"),
        "the audit log says rolled back",
    );
    assert.equal(currentSecret(rb), old, "the store's current secret is the old one");
});

test("a closed window refuses start naming the next opening; --outside-window proceeds and every audit line of it says so", () => {
    const now = new Date();
    const hhmm = (h: number) => `${String((now.getUTCHours() + h) % 24).padStart(2, "0")}:00`;
    const window = { days: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"], start: hhmm(2), end: hhmm(3), timeZone: "UTC" };
    const opening = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), now.getUTCHours() + 2));
    const due = { ...(stackConfig(rb, 1).secret as Record<string, unknown>), schedule: "1d" }; // never completed: due now
    wsRb.setConfig(flat(rb, 1, { mode: "rollback", secret: due, rollout: { waves: [1, 2, "100%"], onFailure: "rollback" }, window }));
    const before = JSON.stringify(wsRb.stackConfig());
    const dueRun = wsRb.rotate(["start", "--due", "--yes"]);
    assert.equal(dueRun.code, 0, dueRun.stdout + dueRun.stderr);
    assert.match(dueRun.stdout, new RegExp(`due but not now: ${rb.secret}: outside its rotation window`));
    assert.match(dueRun.stdout, /no due secret's window is open; nothing to do/);
    const refused = wsRb.rotate(["start", "--secret", rb.secret, "--yes"]);
    assert.equal(refused.code, 3, refused.stdout + refused.stderr);
    assert.match(
        refused.stderr,
        new RegExp(
            `${rb.secret}: outside its rotation window \\(sun,mon,tue,wed,thu,fri,sat ${window.start}-${window.end} UTC\\); it next opens ${opening.toISOString().replace(/\./g, "\\.")}`,
        ),
    );
    assert.match(refused.stderr, /pass --outside-window "<why>"/);
    assert.equal(JSON.stringify(wsRb.stackConfig()), before, "nothing was changed");

    const old = currentSecret(rb);
    const r = wsRb.rotate(["start", "--secret", rb.secret, "--yes", "--outside-window", "INC-9 key in a paste"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /going ahead \(--outside-window "INC-9 key in a paste", recorded in every audit line of the generation\)/);
    remember(currentSecret(rb));
    assert.equal(verify(rb, old), "ok");
    const lines = wsRb.auditLines().filter((l) => l.secret === rb.secret && l.generation === 2 && l.mode === "rotate");
    const me = `${os.userInfo().username}@${os.hostname()}`;
    assert.ok(
        lines.length >= 10 && lines.every((l) => l.outsideWindow === "INC-9 key in a paste" && l.outsideWindowBy === me),
        `every audit line of generation 2 records the leave and who gave it (${lines.length} lines)`,
    );
    assert.ok(lines.some((l) => l.phase === "completed"));
});

test("waves: no secret leaked", () => {
    scanForLeaks(ws);
    scanForLeaks(wsRb);
});
