// Canary waves and rotation windows: wave formation (Ansible's `serial`), the
// dependency of each wave on every rollout of the wave before it (from the
// recorded registrations), windows in a time zone, and malformed settings
// refused with the field named.
import assert from "node:assert/strict";
import { test } from "node:test";
import { HOST_KEY, STEP, config, installRecordingMocks, rawEnvironment, settle } from "./harness";
import { Rotation } from "../../components/rotation";
import { parseEnvironment } from "../../lib/config";
import { ConfigError } from "../../lib/errors";
import { rotationPlan } from "../../lib/plan";
import { formWaves } from "../../lib/waves";
import { isOpen, nextOpening, type RotationWindow } from "../../lib/window";

const sizes = (n: number, spec: (number | string)[]) =>
    formWaves(
        Array.from({ length: n }, (_, i) => i),
        spec,
    ).map((w) => w.length);

test("wave formation: counts, percentages rounded down but never below one, the last entry repeated, order kept", () => {
    assert.deepEqual(sizes(6, [1, 2, "100%"]), [1, 2, 3]);
    assert.deepEqual(sizes(7, [1, 2]), [1, 2, 2, 2], "the last entry repeats until every consumer is in a wave");
    assert.deepEqual(sizes(25, ["10%"]), [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1], "10% of 25 is 2 (rounded down)");
    assert.deepEqual(sizes(10, ["1%", "50%"]), [1, 5, 4], "1% of 10 rounds to 0, so 1");
    assert.deepEqual(sizes(3, [1, 1, 1, 1, 1]), [1, 1, 1], "more waves than consumers: the extra ones are empty and dropped");
    assert.deepEqual(sizes(3, [5]), [3]);
    assert.deepEqual(sizes(200, [1, "10%", "100%"]), [1, 20, 179]);
    assert.deepEqual(formWaves(["a", "b", "c", "d"], [1, "50%"]), [["a"], ["b", "c"], ["d"]], "inventory order");
    assert.deepEqual(sizes(0, [1]), []);
});

test("the plan: each wave's rollouts wait for every rollout of the wave before; the gate for all of them; a rollback is one wave", () => {
    const consumers = Array.from({ length: 6 }, (_, i) => ({ name: `c${i + 1}` }));
    const plan = rotationPlan({ mode: "rotate", consumers, waves: [1, 2, "100%"] });
    const deps = (id: string) => plan.find((s) => s.id === id)!.dependsOn;
    assert.deepEqual(deps("rollout/c1"), ["grant"]);
    for (const c of ["c2", "c3"]) assert.deepEqual(deps(`rollout/${c}`), ["rollout/c1"]);
    for (const c of ["c4", "c5", "c6"]) assert.deepEqual(deps(`rollout/${c}`), ["rollout/c2", "rollout/c3"]);
    assert.deepEqual(
        deps("gate"),
        consumers.map((c) => `rollout/${c.name}`),
    );
    assert.deepEqual(
        plan.filter((s) => s.phase === "rollout").map((s) => s.wave),
        [1, 2, 2, 3, 3, 3],
    );
    const back = rotationPlan({ mode: "rollback", consumers, waves: [1, 2, "100%"] });
    assert.ok(
        back.filter((s) => s.phase === "rollout").every((s) => s.dependsOn.length === 1 && s.wave === undefined),
        "a rollback restores every consumer at once",
    );
    assert.ok(
        rotationPlan({ mode: "rotate", consumers }).every((s) => s.wave === undefined),
        "one wave: no wave numbers",
    );
});

test("registered resources: wave 2's rollouts depend on every wave 1 rollout, wave 3's on every wave 2 rollout, none on a later wave", async () => {
    const registered = await installRecordingMocks();
    const cfg = config({ rollout: { waves: [1, 2, "100%"] } }, 6);
    assert.deepEqual(cfg.rollout, { waves: [1, 2, "100%"], onFailure: "stop", batch: "auto" });
    const rotation = new Rotation(cfg.secret.name, {
        context: { stack: "unit", config: cfg, consumerHostKeys: Object.fromEntries(cfg.consumers.map((c) => [c.name, HOST_KEY])) },
    });
    await settle();
    const urn = (n: string) => registered.find((r) => r.name === `app-redis-rollout-${n}` && r.type === STEP)!;
    const grant = registered.find((r) => r.name === "app-redis-grant-g2" && r.type === STEP)!;
    const waves = [["web-1"], ["web-2", "web-3"], ["web-4", "web-5", "web-6"]];
    // Besides its wave's dependencies, a rollout depends on the generated value it deploys (an input).
    const rolloutDeps = (c: string) =>
        urn(c)
            .dependencies.filter((d) => d.includes("-rollout-"))
            .sort();
    assert.ok(urn("web-1").dependencies.includes(grant.urn));
    assert.deepEqual(rolloutDeps("web-1"), []);
    for (let w = 1; w < waves.length; w++) {
        for (const c of waves[w]) {
            assert.deepEqual(
                rolloutDeps(c),
                waves[w - 1].map((p) => urn(p).urn).sort(),
                `${c} (wave ${w + 1}) waits for every consumer of wave ${w}, none of a later one`,
            );
            assert.ok(!urn(c).dependencies.includes(grant.urn), "only the first wave waits for the grant directly");
        }
    }
    assert.deepEqual(rotation.summary.waves, waves, "the stack output shows the waves (so preview does)");
    assert.equal(rotation.summary.onFailure, "stop");
});

function problems(secretPatch: Record<string, unknown>): string[] {
    const env = rawEnvironment() as { secrets: Record<string, Record<string, unknown>> };
    Object.assign(env.secrets["app-redis"], secretPatch);
    try {
        parseEnvironment("prod", env);
    } catch (e) {
        assert.ok(e instanceof ConfigError);
        return [...e.problems];
    }
    return [];
}

test("malformed waves and windows are refused with the field named", () => {
    const at = "rotation:secrets.app-redis";
    assert.deepEqual(problems({ rollout: { waves: [0] } }), [`${at}.rollout.waves[0]: a count must be 1 or more`]);
    assert.deepEqual(problems({ rollout: { waves: ["150%", 2.5, true] } }), [
        `${at}.rollout.waves[0]: a percentage must be "1%" to "100%"`,
        `${at}.rollout.waves[1]: each wave is a count (1 or more) or a percentage ("10%")`,
        `${at}.rollout.waves[2]: each wave is a count (1 or more) or a percentage ("10%")`,
    ]);
    assert.deepEqual(problems({ rollout: { waves: [] } }), [`${at}.rollout.waves: must list at least one wave`]);
    assert.deepEqual(problems({ rollout: { waves: [1], onFailure: "retry" } }), [`${at}.rollout.onFailure: must be "stop" or "rollback"`]);
    assert.deepEqual(problems({ rollout: { wave: [1] } }), [`${at}.rollout.wave: unknown key`]);
    const w = { days: ["mon"], start: "09:00", end: "17:00", timeZone: "Europe/Berlin" };
    assert.deepEqual(problems({ window: w }), []);
    assert.deepEqual(problems({ window: { ...w, days: ["monday"] } }), [`${at}.window.days[0]: each day is one of sun, mon, tue, wed, thu, fri, sat`]);
    assert.deepEqual(problems({ window: { ...w, days: ["mon", "mon"] } }), [`${at}.window.days: lists a day twice`]);
    assert.deepEqual(problems({ window: { ...w, start: "9:00" } }), [`${at}.window.start: must be a time "HH:MM" (00:00-23:59)`]);
    assert.deepEqual(problems({ window: { ...w, end: "09:00" } }), [`${at}.window.end: start and end must differ`]);
    assert.deepEqual(problems({ window: { ...w, timeZone: "Mars/Olympus" } }), [
        `${at}.window.timeZone: must be an IANA time zone such as Europe/Berlin or UTC`,
    ]);
});

test("windows: open and next opening in the window's time zone, weekdays, overnight spans", () => {
    const office: RotationWindow = { days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00", timeZone: "Europe/Berlin" };
    // Thursday 2026-11-26 11:00 UTC is 12:00 in Berlin (UTC+1 in November).
    assert.equal(isOpen(office, new Date("2026-11-26T11:00:00Z")), true);
    assert.equal(isOpen(office, new Date("2026-11-26T16:00:00Z")), false, "17:00 in Berlin: closed (the end is exclusive)");
    assert.equal(isOpen(office, new Date("2026-11-26T07:59:00Z")), false, "08:59 in Berlin");
    assert.equal(nextOpening(office, new Date("2026-11-26T16:00:00Z")).toISOString(), "2026-11-27T08:00:00.000Z", "Friday 09:00 Berlin");
    assert.equal(nextOpening(office, new Date("2026-11-27T17:00:00Z")).toISOString(), "2026-11-30T08:00:00.000Z", "after Friday: Monday");
    const night: RotationWindow = { days: ["sat"], start: "22:00", end: "04:00", timeZone: "UTC" };
    assert.equal(isOpen(night, new Date("2026-11-28T23:30:00Z")), true, "Saturday 23:30");
    assert.equal(isOpen(night, new Date("2026-11-29T03:59:00Z")), true, "Sunday 03:59 belongs to Saturday's window");
    assert.equal(isOpen(night, new Date("2026-11-29T22:30:00Z")), false, "Sunday 22:30: not a listed day");
    assert.equal(nextOpening(night, new Date("2026-11-26T12:00:00Z")).toISOString(), "2026-11-28T22:00:00.000Z");
    const ny: RotationWindow = { days: ["thu"], start: "06:00", end: "07:00", timeZone: "America/New_York" };
    assert.equal(isOpen(ny, new Date("2026-11-26T11:30:00Z")), true, "06:30 in New York (UTC-5)");
});
