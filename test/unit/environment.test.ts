// Several secrets of one stack, built the way index.ts builds them (resolved
// environment, secrets in secretOrder, `after` = the finished resource of the
// secrets waited for), under Pulumi mocks that record every registration with
// its dependencies: each secret's revocation waits for its own consumers only,
// and `after` holds a secret's first steps until the other secret completed.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type * as pulumi from "@pulumi/pulumi";
import { Rotation } from "../../components/rotation";
import { parseEnvironment } from "../../lib/config";
import { resolveEnvironment } from "../../adapters/resolve";
import { environmentOf } from "../../lab/driver";
import { HOST_KEY, RANDOM, STEP, installRecordingMocks, rawConfig, settle, type Registered } from "./harness";

type Raw = Record<string, any>;
const ROTATION = "rotation:index:Rotation";
const OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9vdGhlci1ob3N0LWtleS1mb3Itd2ViLTItLS0tLS0tLS0";

/** A secret in the tests' flat form: a Redis-style password with `consumers` consumers on hosts web-1.. (named like them). */
function flat(name: string, opts: { consumers?: number; after?: string[]; generation?: number; mode?: string; generator?: Raw } = {}): Raw {
    const r = rawConfig(
        {
            secret: { ...(rawConfig().secret as Raw), name, ...(opts.generator ? { generator: opts.generator } : {}) },
            store: { kind: "file", dir: "store" },
            source: { ...(rawConfig().source as Raw), adminPasswordFile: "secrets/admin.pass" },
            ...(opts.generation !== undefined ? { generation: opts.generation } : {}),
            ...(opts.mode ? { mode: opts.mode } : {}),
            ...(opts.after ? { after: opts.after } : {}),
        },
        opts.consumers ?? 3,
    ) as Raw;
    r.consumers.forEach((c: Raw) => (c.configPath = `/etc/rotation-app/${name}.yaml`));
    return r;
}

/** The stack config of `flats`, with the local files it names in a fresh project directory. */
function project(...flats: Raw[]): { dir: string; raw: Raw } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "environment-"));
    fs.mkdirSync(path.join(dir, "store"));
    fs.mkdirSync(path.join(dir, "secrets"));
    fs.writeFileSync(path.join(dir, "secrets/admin.pass"), "admin\n");
    fs.writeFileSync(path.join(dir, "id_ed25519"), "key\n");
    const raw = environmentOf(...flats) as Raw;
    for (const h of Object.values(raw.hosts) as Raw[]) h.privateKeyFile = "id_ed25519";
    if (raw.hosts["web-2"]) raw.hosts["web-2"].hostKey = OTHER_KEY;
    raw.auditLog = "audit.log";
    return { dir, raw };
}

/** What index.ts does with a stack's `rotation:` keys, under recording mocks. */
async function buildEnvironment(...flats: Raw[]) {
    const { dir, raw } = project(...flats);
    const registered = await installRecordingMocks();
    const stack = "unit";
    const env = parseEnvironment(stack, raw);
    const rotations = resolveEnvironment(stack, env, dir);
    const finished = new Map<string, pulumi.Resource>();
    const built = new Map<string, Rotation>();
    for (const resolved of rotations) {
        const { config } = resolved;
        const name = config.secret.name;
        if (config.generation === 0) continue;
        const after = config.after.flatMap((a) => finished.get(a) ?? []);
        const rotation = new Rotation(name, { context: { stack, ...resolved }, after });
        finished.set(name, rotation.finished);
        built.set(name, rotation);
    }
    await settle();
    return { registered, built, order: rotations.map((r) => r.config.secret.name), ...graph(registered) };
}

function graph(registered: Registered[]) {
    const byUrn = new Map(registered.map((r) => [r.urn, r]));
    const children = new Map<string, Registered[]>();
    for (const r of registered) if (r.parent) children.set(r.parent, [...(children.get(r.parent) ?? []), r]);
    /** A resource that runs something (a Step or a provider resource), not a component, by name. */
    const step = (name: string) => {
        const r = registered.find((x) => x.name === name && (x.type === STEP || x.type === RANDOM));
        assert.ok(r, `no step ${name}; have: ${registered.map((x) => x.name).join(", ")}`);
        return r;
    };
    /** The secret whose Rotation a resource belongs to (through its parents). */
    const secretOf = (r: Registered): string | undefined => {
        for (let x: Registered | undefined = r; x; x = byUrn.get(x.parent)) if (x.type === ROTATION) return x.name;
        return undefined;
    };
    /**
     * Every URN `r` waits for, transitively. A dependency on a component is
     * recorded as its URN (or, by the SDK, as its children's): waiting for a
     * component is waiting for everything under it, so its children count too.
     */
    const waitsFor = (r: Registered): Set<string> => {
        const seen = new Set<string>();
        const visit = (urn: string) => {
            if (seen.has(urn)) return;
            seen.add(urn);
            const dep = byUrn.get(urn);
            if (!dep) return;
            dep.dependencies.forEach(visit);
            (children.get(urn) ?? []).forEach((c) => visit(c.urn));
        };
        r.dependencies.forEach(visit);
        return seen;
    };
    /** The secrets whose resources `r` waits for (its own included). */
    const secretsWaitedFor = (r: Registered) =>
        new Set(
            [...waitsFor(r)]
                .map((u) => byUrn.get(u))
                .filter((x): x is Registered => !!x)
                .map(secretOf),
        );
    return { step, secretOf, waitsFor, secretsWaitedFor };
}

const CONSUMERS = ["web-1", "web-2", "web-3"];

test("two secrets: each revocation waits for every rollout of its own secret and for nothing of the other", async () => {
    const { registered, step, waitsFor, secretsWaitedFor, secretOf } = await buildEnvironment(flat("app-redis"), flat("app-pg", { consumers: 2 }));
    const consumersOf: Record<string, string[]> = { "app-redis": CONSUMERS, "app-pg": ["web-1", "web-2"] };
    for (const [secret, other] of [
        ["app-redis", "app-pg"],
        ["app-pg", "app-redis"],
    ]) {
        const revoke = step(`${secret}-revoke`);
        const deps = waitsFor(revoke);
        for (const c of consumersOf[secret]) assert.ok(deps.has(step(`${secret}-rollout-${c}`).urn), `${secret}'s revoke waits for its consumer ${c}`);
        assert.ok(deps.has(step(`${secret}-gate`).urn));
        assert.ok(deps.has(step(`${secret}-grant-g2`).urn));
        for (const r of registered.filter((x) => secretOf(x) === other))
            assert.ok(!deps.has(r.urn), `${secret}'s revoke does not wait for ${other}'s ${r.name}`);
        assert.deepEqual(secretsWaitedFor(revoke), new Set([secret]));
        // and nothing of the other secret waits for this one
        assert.deepEqual(secretsWaitedFor(step(`${other}-audit`)), new Set([other]));
    }
    // The rollouts of both secrets on the same host are different steps, each with the host's pinned key.
    for (const secret of ["app-redis", "app-pg"]) {
        const rollout = step(`${secret}-rollout-web-2`).inputs.rollout;
        assert.deepEqual(rollout.target, {
            kind: "ssh",
            host: "127.0.1.12",
            port: 22,
            user: "root",
            hostKey: OTHER_KEY,
            privateKeyFile: rollout.target.privateKeyFile,
        });
        assert.equal(path.basename(rollout.target.privateKeyFile), "id_ed25519");
        assert.equal(rollout.configPath, `/etc/rotation-app/${secret}.yaml`);
        assert.equal(step(`${secret}-rollout-web-1`).inputs.rollout.target.hostKey, HOST_KEY);
    }
    const urns = registered.map((r) => r.urn);
    assert.equal(new Set(urns).size, urns.length, "no two resources of the stack share a URN");
});

test("after: the waiting secret's first steps wait for the other's audit record, so for its revocation", async () => {
    const { step, waitsFor, secretsWaitedFor, order, built } = await buildEnvironment(flat("app-pg", { after: ["app-redis"] }), flat("app-redis"));
    assert.deepEqual(order, ["app-redis", "app-pg"], "the secret waited for is built first");
    const audit = step("app-redis-audit");
    for (const first of ["app-pg-g2", "app-pg-previous-read"]) {
        const deps = waitsFor(step(first));
        assert.ok(deps.has(audit.urn), `${first} waits for app-redis-audit`);
        assert.ok(deps.has(step("app-redis-revoke").urn), `${first} waits for app-redis-revoke`);
        assert.ok(deps.has(step("app-redis-verify-consumers").urn));
        for (const c of CONSUMERS) assert.ok(deps.has(step(`app-redis-rollout-${c}`).urn));
    }
    assert.equal(step("app-pg-g2").inputs.op, "random", "a random generator's value is the generate step");
    // Everything of app-pg comes after app-redis; nothing of app-redis waits for app-pg.
    assert.deepEqual(secretsWaitedFor(step("app-pg-revoke")), new Set(["app-pg", "app-redis"]));
    assert.deepEqual(secretsWaitedFor(step("app-redis-audit")), new Set(["app-redis"]));
    assert.deepEqual(built.get("app-pg")!.summary.after, ["app-redis"]);
    assert.equal(built.get("app-redis")!.summary.after, undefined);
});

test("without after, neither secret's first steps wait for the other", async () => {
    const { step, waitsFor, secretsWaitedFor } = await buildEnvironment(flat("app-redis"), flat("app-pg"));
    for (const [secret, other] of [
        ["app-redis", "app-pg"],
        ["app-pg", "app-redis"],
    ]) {
        for (const first of [`${secret}-g2`, `${secret}-previous-read`]) {
            const deps = waitsFor(step(first));
            assert.ok(!deps.has(step(`${other}-audit`).urn), `${first} does not wait for ${other}-audit`);
            assert.ok(!deps.has(step(`${other}-revoke`).urn), `${first} does not wait for ${other}-revoke`);
            assert.ok(secretsWaitedFor(step(first)).size <= 1);
        }
        assert.deepEqual(step(`${secret}-preflight`).dependencies, [], "the pre-flight waits for nothing");
        assert.deepEqual(step(`${secret}-previous-read`).dependencies, [step(`${secret}-preflight`).urn], "the first read waits for the pre-flight only");
    }
});

test("three secrets: a chain of after, and a secret that waits for two", async () => {
    const { step, waitsFor, secretsWaitedFor, order } = await buildEnvironment(
        flat("app-c", { after: ["app-a", "app-b"], consumers: 1 }),
        flat("app-b", { after: ["app-a"], consumers: 2 }),
        flat("app-a", { consumers: 2 }),
        flat("app-d", { consumers: 1 }),
    );
    assert.deepEqual(order, ["app-a", "app-b", "app-c", "app-d"]);
    const b = waitsFor(step("app-b-previous-read"));
    assert.ok(b.has(step("app-a-audit").urn));
    assert.ok(!b.has(step("app-c-audit").urn));
    const c = waitsFor(step("app-c-g2"));
    assert.ok(c.has(step("app-a-audit").urn) && c.has(step("app-b-audit").urn), "app-c waits for both");
    // Direct dependencies: the pre-flight waits for each audit record waited for, and nothing else.
    const auditsOf = (n: string) =>
        step(n)
            .dependencies.map((u) => u.split("::").pop())
            .sort();
    assert.deepEqual(auditsOf("app-c-preflight"), ["app-a-audit", "app-b-audit"]);
    assert.deepEqual(auditsOf("app-b-preflight"), ["app-a-audit"]);
    assert.deepEqual(auditsOf("app-a-preflight"), []);
    assert.deepEqual(auditsOf("app-c-previous-read"), ["app-c-preflight"]);
    assert.deepEqual(secretsWaitedFor(step("app-d-audit")), new Set(["app-d"]));
    assert.deepEqual(secretsWaitedFor(step("app-a-audit")), new Set(["app-a"]));
    assert.deepEqual(secretsWaitedFor(step("app-c-audit")), new Set(["app-a", "app-b", "app-c"]));
});

test("a command generator's step and a rollback's first steps wait for the secret they come after", async () => {
    const { step, waitsFor, registered } = await buildEnvironment(
        flat("app-redis", { generator: { kind: "command", command: "openssl rand -hex 20" } }),
        flat("app-pg", { after: ["app-redis"], mode: "rollback" }),
        flat("app-key", { after: ["app-redis"], generator: { kind: "command" } }),
    );
    const audit = step("app-redis-audit");
    assert.equal(step("app-key-g2").type, STEP);
    assert.ok(waitsFor(step("app-key-g2")).has(audit.urn));
    assert.ok(!waitsFor(step("app-redis-g2")).has(step("app-key-audit").urn));
    // A rollback reads the previous secret, passes its guard, re-grants it and restores every consumer: all after app-redis.
    for (const n of ["app-pg-previous-read", "app-pg-rollback-guard", "app-pg-grant-g1", "app-pg-rollout-web-1", "app-pg-audit"]) {
        assert.ok(waitsFor(step(n)).has(audit.urn), `${n} waits for app-redis-audit`);
    }
    assert.ok(!registered.some((r) => r.name === "app-pg-revoke"), "a rollback revokes nothing");
});

test("a secret waited for that is at generation 0 registers nothing and holds nothing up", async () => {
    const { registered, step } = await buildEnvironment(flat("app-redis", { generation: 0 }), flat("app-pg", { after: ["app-redis"] }));
    assert.deepEqual(
        registered.filter((r) => r.name.startsWith("app-redis")).map((r) => r.name),
        [],
    );
    assert.deepEqual(step("app-pg-preflight").dependencies, []);
    assert.deepEqual(step("app-pg-g2").dependencies, [step("app-pg-preflight").urn]);
});
