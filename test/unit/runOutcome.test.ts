// The closing line of a failed run over several secrets (issue 23): which
// secrets completed and which failed, from the run's steps, not one FAILED
// for all. Through update() as start calls it, with a stand-in Stack whose
// engine events complete two secrets and fail the third.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import type { Stack } from "../../cli/pulumiCli";
import { planIndex } from "../../cli/progress";
import { type RunSecret, failedRunLine } from "../../cli/runRecord";
import { STEP_TYPE } from "../../provider/types";

// cli/stack.ts fixes its project when loaded: a temporary one (reports are written there).
const project = fs.mkdtempSync(path.join(os.tmpdir(), "run-outcome-"));
process.env.ROTATION_PROJECT_DIR = project;
process.env.PULUMI_BACKEND_URL = `file://${path.join(project, ".state")}`;

const secret = (name: string, generation = 1, mode: RunSecret["mode"] = "rotate"): RunSecret => ({
    name,
    generation,
    mode,
    consumers: ["web-1", "web-2"],
    after: [],
});
const urn = (resource: string) => `urn:pulumi:dev::secret-rotation::rotation:index:Rotation$${STEP_TYPE}::${resource}`;
const STEP = STEP_TYPE;

/** Engine events: every step of `done` completes, the first rollout of `failed` fails. */
function events(secrets: RunSecret[], done: string[], failed: string): Partial<EngineEvent>[] {
    const steps = [...planIndex(secrets).values()].flat();
    const ok = steps
        .filter((s) => done.includes(s.secret))
        .flatMap((s) => [
            { resourcePreEvent: { metadata: { op: "create", urn: urn(s.resource), type: STEP } } },
            { resOutputsEvent: { metadata: { op: "create", urn: urn(s.resource), type: STEP } } },
        ]);
    const bad = steps.find((s) => s.secret === failed && s.phase === "rollout")!;
    return [
        ...ok,
        { resourcePreEvent: { metadata: { op: "create", urn: urn(bad.resource), type: STEP } } },
        {
            diagnosticEvent: {
                urn: urn(bad.resource),
                message: "error: app-deploy-key → consumer web-1: health check: answered 503",
                severity: "error",
                color: "never",
            },
        },
    ] as Partial<EngineEvent>[];
}

test("a failed start over three secrets says which two completed and which one failed", async () => {
    const { update } = await import("../../cli/change");
    const secrets = [secret("app-deploy-key"), secret("app-pg"), secret("app-redis")];
    const stack = {
        name: "dev",
        up: async (opts: { onEvent: (e: EngineEvent) => void }) => {
            for (const [i, e] of events(secrets, ["app-pg", "app-redis"], "app-deploy-key").entries())
                opts.onEvent({ sequence: i, timestamp: 0, ...e } as EngineEvent);
            throw new Error("code: 255");
        },
    } as unknown as Stack;
    const env = { auditLog: "audit.log", secrets: Object.fromEntries(secrets.map((s) => [s.name, { store: { kind: "file", dir: "store" } }])) };
    const said: string[] = [];
    const keep = { log: console.log, error: console.error };
    console.log = console.error = (line: string) => said.push(line);
    try {
        await update(
            { stack: "dev", plain: true },
            stack,
            { env, raw: {} } as never,
            "start",
            secrets,
            "rotation of app-deploy-key 0 -> 1, app-pg 0 -> 1, app-redis 0 -> 1",
        );
    } finally {
        Object.assign(console, keep);
    }
    assert.match(said[0], /^rotate: rotation of app-pg 0 -> 1, app-redis 0 -> 1: done; app-deploy-key 0 -> 1: FAILED after \d+\.\ds$/);
    assert.equal(said[1], "rotate:   app-deploy-key consumer web-1: app-deploy-key → consumer web-1: health check: answered 503");
});

test("failedRunLine: done, FAILED, not started, not finished in that order; a secret found finished is left out; one secret keeps the plain line", () => {
    const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map((n) => secret(n, 3));
    const record = (secrets: RunSecret[], outcome: Record<string, string[]>) => ({
        secrets,
        steps: secrets.flatMap((s) =>
            (outcome[s.name] ?? []).map((o, i) => ({
                secret: s.name,
                step: `s${i}`,
                phase: "rollout" as const,
                resource: `${s.name}-s${i}`,
                outcome: o as never,
            })),
        ),
    });
    const r = record([a, b, c, d, e], { a: ["ok", "ok"], b: ["ok", "failed"], c: ["pending", "pending"], d: ["ok", "pending"], e: ["unchanged", "unchanged"] });
    assert.equal(
        failedRunLine("rotation of ", r, "4.0"),
        "rotation of a 2 -> 3: done; b 2 -> 3: FAILED after 4.0s; c 2 -> 3: not started; d 2 -> 3: not finished",
    );
    assert.equal(
        failedRunLine("rollback of ", record([{ ...a, mode: "rollback" }, b], { a: ["ok"], b: ["failed"] }), "1.5"),
        "rollback of a generation 3: done; b 2 -> 3: FAILED after 1.5s",
    );
    assert.equal(failedRunLine("rotation of ", record([a, e], { a: ["failed"], e: ["unchanged"] }), "1.0"), undefined, "one secret at work");
    assert.equal(failedRunLine("rotation of ", record([a, b], { a: ["pending"], b: ["pending"] }), "1.0"), undefined, "the engine failed before any step");
});
