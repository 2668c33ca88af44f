import assert from "node:assert/strict";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { HOST_KEY, MOCK_PREVIOUS, RANDOM, STEP, config, installRecordingMocks, mockSecret, promiseOf, rawConfig, settle, type Registered } from "./harness";
import { Rotation } from "../../components/rotation";
import { rotationPlan, stepResourceName, transitiveDependencies } from "../../lib/plan";
import { SecretVersion } from "../../components/secretVersion";
import type { RotationConfig } from "../../lib/config";

async function build(cfg: RotationConfig) {
    const registered = await installRecordingMocks();
    const consumerHostKeys = Object.fromEntries(cfg.consumers.map((c) => [c.name, HOST_KEY]));
    const rotation = new Rotation(cfg.secret.name, { context: { stack: "unit", config: cfg, consumerHostKeys } });
    await settle();
    const byName = (n: string) => {
        const r = registered.find((x) => x.name === n && x.type === STEP);
        assert.ok(r, `resource ${n} was not registered; have: ${registered.map((x) => x.name).join(", ")}`);
        return r;
    };
    return { rotation, registered, byName };
}

/** Every URN `r` waits for, following dependencies transitively. */
function waitsFor(all: Registered[], r: Registered): Set<string> {
    const byUrn = new Map(all.map((x) => [x.urn, x]));
    const seen = new Set<string>();
    const visit = (x: Registered) => {
        for (const d of x.dependencies) {
            if (!seen.has(d)) {
                seen.add(d);
                const dep = byUrn.get(d);
                if (dep) visit(dep);
            }
        }
    };
    visit(r);
    return seen;
}

test("a rotation registers every phase, one rollout per consumer, in the plan's names", async () => {
    const { registered } = await build(config());
    const steps = registered
        .filter((r) => r.type === STEP)
        .map((r) => r.name)
        .sort();
    const expected = [
        "app-redis-preflight",
        "app-redis-previous-read",
        "app-redis-g2",
        "app-redis-stage",
        "app-redis-grant-g2",
        ...["web-1", "web-2", "web-3"].map((c) => `app-redis-rollout-${c}`),
        "app-redis-gate",
        "app-redis-revoke",
        "app-redis-promote",
        "app-redis-verify-source",
        "app-redis-verify-consumers",
        "app-redis-audit",
    ].sort();
    assert.deepEqual(steps, expected);
    assert.deepEqual(
        registered.filter((r) => r.type === STEP && r.inputs.op === "random").map((r) => [r.name, r.inputs.random]),
        [["app-redis-g2", { length: 32, upper: true, lower: true, numeric: true, special: false }]],
        "a random generator is a step the step provider runs (no @pulumi/random plugin)",
    );
    assert.equal(registered.filter((r) => r.type === RANDOM).length, 0);
    const components = registered.filter((r) => r.type.startsWith("rotation:index:")).map((r) => r.type);
    for (const t of ["Rotation", "SecretVersion", "StoreStaging", "SourceGrant", "RotationGate", "Revocation", "Promotion", "Verification", "AuditRecord"]) {
        assert.ok(components.includes(`rotation:index:${t}`), `component ${t} registered`);
    }
});

for (const mode of ["rotate", "rollback"] as const) {
    test(`${mode}: every plan step is the step resource the console expects (stepResourceName)`, async () => {
        const cfg = { ...config(), mode };
        const { registered } = await build(cfg);
        const steps = new Set(registered.filter((r) => r.type === STEP).map((r) => r.name));
        const plan = rotationPlan({ mode, consumers: cfg.consumers });
        for (const s of plan)
            assert.ok(
                steps.has(stepResourceName("app-redis", s, cfg.generation, mode)),
                `${s.id} -> ${stepResourceName("app-redis", s, cfg.generation, mode)} registered`,
            );
    });
}

test("the revocation waits for every consumer's rollout (deploy, reload, health and log check in one step)", async () => {
    const { registered, byName } = await build(config());
    const revoke = byName("app-redis-revoke");
    const deps = waitsFor(registered, revoke);
    for (const c of ["web-1", "web-2", "web-3"]) {
        const r = byName(`app-redis-rollout-${c}`);
        assert.ok(deps.has(r.urn), `revoke waits for ${c}`);
        assert.equal(r.inputs.op, "rollout");
        assert.equal(r.inputs.rollout.label, `app-redis → consumer ${c}`);
        assert.equal(r.inputs.rollout.logCheck.pattern, "AUTH_FAILED", `${c}'s rollout carries its log check`);
        assert.equal(r.inputs.rollout.reload, 'kill -HUP "$(cat /run/app.pid)"');
    }
    assert.ok(deps.has(byName("app-redis-gate").urn));
    // After revocation one step checks every consumer, each host listed once.
    const verify = byName("app-redis-verify-consumers");
    assert.equal(verify.inputs.op, "health");
    assert.deepEqual(
        verify.inputs.checks.map((c: any) => [c.label, verify.inputs.hosts[c.host].host]),
        [
            ["app-redis → consumer web-1", "127.0.1.11"],
            ["app-redis → consumer web-2", "127.0.1.12"],
            ["app-redis → consumer web-3", "127.0.1.13"],
        ],
    );
    // and the store is promoted only after the revocation
    assert.ok(waitsFor(registered, byName("app-redis-promote")).has(revoke.urn));
    assert.ok(waitsFor(registered, byName("app-redis-audit")).has(byName("app-redis-verify-source").urn));
});

test("the plan: in rotate mode the pre-flight is the only first step and everything waits for it; a rollback has none", () => {
    const plan = rotationPlan({ mode: "rotate", consumers: [{ name: "web-1" }, { name: "web-2" }], waves: [1, "100%"] });
    assert.equal(plan[0].id, "preflight");
    assert.deepEqual(
        plan.filter((s) => !s.dependsOn.length).map((s) => s.id),
        ["preflight"],
        "nothing else starts without it",
    );
    for (const s of plan.slice(1)) assert.ok(transitiveDependencies(plan, s.id).has("preflight"), `${s.id} waits for the pre-flight`);
    for (const id of ["previous", "secret"]) assert.deepEqual(plan.find((s) => s.id === id)!.dependsOn, ["preflight"]);
    assert.equal(stepResourceName("app-redis", plan[0], 4, "rotate"), "app-redis-preflight");
    const back = rotationPlan({ mode: "rollback", consumers: [{ name: "web-1" }] });
    assert.ok(!back.some((s) => s.phase === "preflight"), "a rollback restores what it can reach at once");
});

test("the pre-flight step: one per rotation, every consumer keyed by its host, the source and the store, once per generation", async () => {
    const cfg = config();
    cfg.consumers = [...cfg.consumers, { ...cfg.consumers[0], name: "web-1b", configPath: "/etc/app-b.yaml" }];
    const { byName } = await build(cfg);
    const p = byName("app-redis-preflight");
    assert.equal(p.inputs.op, "preflight");
    assert.deepEqual(p.inputs.triggers, [cfg.generation], "runs once per generation, not per mode");
    assert.equal(p.inputs.audit.record.phase, "preflight");
    assert.equal(Object.keys(p.inputs.hosts).length, 3, "web-1 and web-1b share a host, asked once");
    assert.deepEqual(
        p.inputs.preflight.consumers.map((c: any) => [c.name, p.inputs.hosts[c.host].host, c.configPath]),
        [
            ["web-1", "127.0.1.11", cfg.consumers[0].configPath],
            ["web-2", "127.0.1.12", cfg.consumers[1].configPath],
            ["web-3", "127.0.1.13", cfg.consumers[2].configPath],
            ["web-1b", "127.0.1.11", "/etc/app-b.yaml"],
        ],
    );
    assert.match(p.inputs.preflight.source.script, /PING/, "the source's admin credential");
    assert.match(p.inputs.preflight.store, /no current secret at/, "the file store");
    assert.doesNotMatch(JSON.stringify(p.inputs), /nonce|CHECK /, "no per-run nonce in the inputs: an `up` with nothing to rotate changes nothing");
});

test("each rollout starts only after the grant (dual-active before any consumer changes)", async () => {
    const { registered, byName } = await build(config());
    const grant = byName("app-redis-grant-g2");
    for (const c of ["web-1", "web-2", "web-3"]) {
        assert.ok(waitsFor(registered, byName(`app-redis-rollout-${c}`)).has(grant.urn));
        assert.ok(!waitsFor(registered, byName(`app-redis-rollout-${c}`)).has(byName("app-redis-revoke").urn));
    }
});

test("secrets travel only on stdin: no script, title or other input contains them", async () => {
    const { registered } = await build(config());
    const secrets = [mockSecret(2), MOCK_PREVIOUS];
    for (const r of registered) {
        const { stdin, ...rest } = r.inputs;
        const text = JSON.stringify(rest);
        for (const s of secrets) assert.ok(!text.includes(s), `${r.name} carries a secret outside stdin`);
    }
    const step = (n: string) => registered.find((r) => r.name === n && r.type === STEP)!;
    assert.equal(step("app-redis-rollout-web-2").inputs.stdin, `${mockSecret(2)}\0`);
    assert.equal(step("app-redis-revoke").inputs.stdin, `${MOCK_PREVIOUS}\0`);
});

test("the credential outputs are secret", async () => {
    const cfg = config();
    await installRecordingMocks();
    const v = new SecretVersion("x", { context: { stack: "unit", config: cfg, consumerHostKeys: {} }, origin: "generate" });
    assert.equal(await pulumi.isSecret(v.value), true);
    assert.equal(await pulumi.isSecret(v.grantMaterial), true);
    assert.equal(await promiseOf(v.value), mockSecret(2));
});

test("every step of a generation carries that generation as its trigger", async () => {
    const g2 = await build(config());
    const t2 = new Map(g2.registered.filter((r) => r.type === STEP).map((r) => [r.name, JSON.stringify(r.inputs.triggers)]));
    const g3 = await build(config({ generation: 3 }));
    const t3 = new Map(g3.registered.filter((r) => r.type === STEP).map((r) => [r.name, JSON.stringify(r.inputs.triggers)]));
    for (const c of ["web-1", "web-2", "web-3"]) {
        const n = `app-redis-rollout-${c}`;
        assert.equal(t2.get(n), JSON.stringify([2, "rotate"]));
        assert.equal(t3.get(n), JSON.stringify([3, "rotate"]), `${n} re-runs on the bump`);
    }
    // Same generation, same inputs: nothing would change (idempotent re-run).
    const again = await build(config());
    const strip = (r: Registered) => JSON.stringify(r.inputs);
    for (const r of again.registered.filter((x) => x.type === STEP)) {
        assert.equal(strip(r), strip(g2.registered.find((x) => x.name === r.name && x.type === STEP)!), `${r.name} is stable without a bump`);
    }
});

test("rollback restores consumers to the previous secret and registers no grant, revocation or promotion", async () => {
    const { registered, byName } = await build(config({ mode: "rollback" }));
    const names = registered.map((r) => r.name);
    for (const gone of ["app-redis-grant-g2", "app-redis-revoke", "app-redis-promote", "app-redis-stage", "app-redis-gate"]) {
        assert.ok(!names.includes(gone), `${gone} is not registered in a rollback`);
    }
    const guard = byName("app-redis-rollback-guard");
    // The previous generation's grant stays registered, so Pulumi does not delete (withdraw) it.
    const regrant = byName("app-redis-grant-g1");
    assert.equal(regrant.inputs.stdin, `${MOCK_PREVIOUS}\0`);
    assert.deepEqual(regrant.inputs.triggers, [1], "the previous grant keeps its own generation, so it is not replaced");
    for (const c of ["web-1", "web-2", "web-3"]) {
        const deploy = byName(`app-redis-rollout-${c}`);
        assert.equal(deploy.inputs.stdin, `${MOCK_PREVIOUS}\0`);
        assert.deepEqual(deploy.inputs.triggers, [2, "rollback"]);
        assert.ok(waitsFor(registered, deploy).has(guard.urn));
        assert.ok(waitsFor(registered, deploy).has(regrant.urn));
    }
});

test("postgres consumers receive the generation's login with the password", async () => {
    const cfg = config({
        secret: { name: "app-pg", type: "password", generator: { kind: "random" }, reason: "scheduled", note: "r", operator: "o" },
        source: {
            kind: "postgres-role",
            host: "127.0.1.31",
            database: "app",
            group: "app",
            loginPrefix: "app_g",
            adminUser: "postgres",
            adminPasswordFile: "/x",
        },
        consumers: [{ ...(rawConfig().consumers as any[])[0], write: { format: "env-line", key: "PGPASSWORD", userKey: "PGUSER" } }],
    });
    const { byName } = await build(cfg);
    assert.equal(byName("app-pg-rollout-web-1").inputs.stdin, `${mockSecret(2)}\0app_g2\0`);
    assert.match(byName("app-pg-revoke").inputs.script, /'app_g1'/);
});

test("a vault store's phases are Vault calls in the step provider: read, stage (new secret and the one in use on stdin), commit at the gate, promote", async () => {
    const store = { kind: "vault", address: "https://vault.test:8200", mount: "kv", path: "apps/redis", auth: { method: "token", tokenFile: "/t" } };
    const { byName, registered } = await build(config({ store }));
    const vaultSteps = registered.filter((r) => r.type === STEP && r.inputs.op === "vault");
    const actions = Object.fromEntries(vaultSteps.map((r) => [r.name, r.inputs.vault.action]));
    assert.deepEqual(actions, { "app-redis-previous-read": "read", "app-redis-stage": "stage", "app-redis-gate": "commit", "app-redis-promote": "promote" });
    for (const r of vaultSteps) {
        assert.equal(r.inputs.vault.generation, 2);
        assert.deepEqual(r.inputs.vault.store, { ...store, auth: { method: "token", tokenFile: "/t" } });
        assert.equal(r.inputs.script, undefined, `${r.name} runs no script`);
    }
    // Staging gets the secret in use too: a new secret equal to it is refused before the grant.
    assert.equal(byName("app-redis-stage").inputs.stdin, `${mockSecret(2)}\0mock-previous-secret-Zq9\0`);
    assert.equal(byName("app-redis-promote").inputs.stdin, `${mockSecret(2)}\0`);
    assert.equal(byName("app-redis-previous-read").inputs.captureStdout, true);
    // Nothing in the inputs holds a token: only the file's path.
    assert.doesNotMatch(JSON.stringify(vaultSteps.map((r) => r.inputs)), /hvs\.|s\.[A-Za-z0-9]{20}/);
    const rollback = await build(config({ store, mode: "rollback" }));
    assert.equal(rollback.byName("app-redis-rollback-guard").inputs.vault.action, "guard");
});

test("consumers named like the rotation's own steps (source, consumers, gate) get names of their own", async () => {
    const base = config().consumers[0];
    const cfg = config({});
    cfg.consumers = ["source", "consumers", "gate", "revoke"].map((name, i) => ({ ...base, name, host: `127.0.1.${11 + i}` }));
    const { registered } = await build(cfg);
    const names = registered.filter((r) => r.type === STEP).map((r) => r.name);
    assert.equal(new Set(names).size, names.length, `no two steps share a name: ${names.join(", ")}`);
    for (const c of ["source", "consumers", "gate", "revoke"]) assert.ok(names.includes(`app-redis-rollout-${c}`));
    assert.ok(names.includes("app-redis-verify-source") && names.includes("app-redis-verify-consumers") && names.includes("app-redis-gate"));
});

/** The resource that realizes a plan step (components/rotation.ts names them so). */
function planResourceName(secret: string, id: string, generation: number, mode: string): string {
    if (id.startsWith("rollout/")) return `${secret}-rollout-${id.slice("rollout/".length)}`;
    const names: Record<string, string> = {
        preflight: `${secret}-preflight`,
        previous: `${secret}-previous-read`,
        secret: `${secret}-g${generation}`,
        stage: `${secret}-stage`,
        grant: `${secret}-grant-g${generation}`,
        "grant-previous": `${secret}-grant-g${generation - 1}`,
        guard: `${secret}-rollback-guard`,
        gate: `${secret}-gate`,
        revoke: `${secret}-revoke`,
        promote: `${secret}-promote`,
        "verify/source": `${secret}-verify-source`,
        "verify/consumers": `${secret}-verify-consumers`,
        audit: `${secret}-audit`,
    };
    assert.ok(names[id], `plan step ${id} (${mode}) has a resource`);
    return names[id];
}

for (const mode of ["rotate", "rollback"] as const) {
    test(`the registered graph is lib/plan.ts's graph (${mode}): each phase waits for its plan dependencies, and for no phase outside them`, async () => {
        const cfg = config({ mode });
        const { rotation, registered } = await build(cfg);
        const phaseResources = new Map(
            rotation.plan.map((s) => {
                const name = planResourceName("app-redis", s.id, cfg.generation, mode);
                const r = registered.find((x) => x.name === name && (x.type === STEP || x.type === RANDOM));
                assert.ok(r, `${s.id}: ${name} registered`);
                return [s.id, r] as const;
            }),
        );
        const idOfUrn = new Map([...phaseResources].map(([id, r]) => [r.urn, id]));
        for (const step of rotation.plan) {
            const r = phaseResources.get(step.id)!;
            const direct = new Set(r.dependencies);
            for (const d of step.dependsOn) assert.ok(direct.has(phaseResources.get(d)!.urn), `${step.id} waits for ${d}`);
            const allowed = transitiveDependencies(rotation.plan, step.id);
            for (const urn of waitsFor(registered, r)) {
                const id = idOfUrn.get(urn);
                if (id !== undefined) assert.ok(allowed.has(id), `${step.id} waits for ${id}, which the plan does not make it wait for`);
            }
        }
    });
}
