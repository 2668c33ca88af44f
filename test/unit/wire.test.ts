// A step's lists of consumers as stored (provider/wire.ts): packed exactly,
// unpacked to what the program gave, in the order the engine hands inputs.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { recordedDigest } from "../../provider/stepProvider";
import { CONSUMER_PLACEHOLDER, packList, packStep, unpackList, unpackStep } from "../../provider/wire";

/** `v` with keys sorted at every depth, as the engine hands a step its inputs. */
const canonical = (v: unknown): unknown =>
    Array.isArray(v)
        ? v.map(canonical)
        : v && typeof v === "object"
          ? Object.fromEntries(
                Object.keys(v)
                    .sort()
                    .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
            )
          : v;

const entry = (name: string, host: string) => ({
    consumer: name,
    rollout: {
        label: `app → consumer ${name}`,
        host,
        configPath: `/etc/app/${name}.env`,
        health: { command: `curl -fsS http://127.0.0.1/${name}/health` },
        write: { format: "env-line", key: "APP_PASSWORD" },
        reload: "systemctl reload app",
        retries: 3,
        generation: 4,
        logCheck: { path: "/var/log/app.log", pattern: `AUTH_FAILED ${name} `, windowSeconds: 2 },
    },
});

test("a list packs what its entries share once, and unpacks to the entries exactly, keys sorted", () => {
    const list = [entry("web-1", "h0"), entry("web-2", "h1"), entry("web-3", "h0")];
    const packed = packList(list) as { shared: any; byConsumer: any; each: any[] };
    assert.deepEqual(packed.shared.rollout.write, { format: "env-line", key: "APP_PASSWORD" });
    assert.equal(packed.shared.rollout.reload, "systemctl reload app");
    assert.equal(packed.byConsumer.rollout.configPath, `/etc/app/${CONSUMER_PLACEHOLDER}.env`);
    assert.equal(packed.byConsumer.rollout.logCheck.pattern, `AUTH_FAILED ${CONSUMER_PLACEHOLDER} `);
    assert.deepEqual(packed.each, [
        { consumer: "web-1", rollout: { host: "h0" } },
        { consumer: "web-2", rollout: { host: "h1" } },
        { consumer: "web-3", rollout: { host: "h0" } },
    ]);
    const back = unpackList(packed);
    assert.deepEqual(back, list);
    assert.equal(JSON.stringify(back), JSON.stringify(canonical(list)), "keys in the engine's order, so digests stay as they were");
    assert.ok(JSON.stringify(packed).length < JSON.stringify(list).length / 2);
});

test("packing is exact: a value the name does not explain, or one already holding the placeholder, stays with its entry", () => {
    const a = entry("web-1", "h0");
    const b = entry("web-2", "h0");
    b.rollout.configPath = "/etc/other/web-2.env"; // not /etc/app/{consumer}.env
    a.rollout.health.command = `echo ${CONSUMER_PLACEHOLDER} web-1`;
    b.rollout.health.command = `echo ${CONSUMER_PLACEHOLDER} web-2`;
    const packed = packList([a, b]) as { shared: any; byConsumer?: any; each: any[] };
    assert.equal(packed.byConsumer?.rollout?.configPath, undefined);
    assert.equal(packed.byConsumer?.rollout?.health, undefined);
    assert.equal(packed.each[1].rollout.configPath, "/etc/other/web-2.env");
    assert.equal(packed.each[0].rollout.health.command, `echo ${CONSUMER_PLACEHOLDER} web-1`);
    assert.deepEqual(unpackList(packed), [canonical(a), canonical(b)]);
});

test("a field some entries lack, or that differs, stays with each entry; names that occur inside other words round-trip", () => {
    const a = { name: "a", host: "h0", configPath: "/srv/a/app.conf", reload: "sleep 1", timeoutSeconds: 15 };
    const b = { name: "b", host: "h1", configPath: "/srv/b/app.conf", reload: "sleep 2", timeoutSeconds: 15, logJournal: { unit: "b.service" } };
    const packed = packList([a, b]) as { shared: any; byConsumer?: any; each: any[] };
    assert.deepEqual(packed.shared, { timeoutSeconds: 15 });
    assert.equal(packed.byConsumer, undefined, "'a' names neither /srv/a/app.conf alone (the a of 'app' too) nor b's");
    assert.deepEqual(unpackList(packed), [canonical(a), canonical(b)]);
});

test("lists that are short, not plain JSON, or share nothing are stored as they are", () => {
    const one = [entry("web-1", "h0")];
    assert.equal(packList(one), one);
    const withOutput = [
        { consumer: "a", x: pulumi.output("v") },
        { consumer: "b", x: pulumi.output("v") },
    ];
    assert.equal(packList(withOutput), withOutput);
    const distinct = [
        { consumer: "a", host: "h0" },
        { consumer: "b", host: "h1" },
    ];
    assert.equal(packList(distinct), distinct);
    assert.equal(unpackList(distinct), distinct, "a list never packed reads as it is (state written before packing)");
});

test("a step packs each list of consumers where it sits, nested too, and its recorded digest is the one of its lists unpacked", () => {
    const checks = [0, 1, 2].map((i) => ({
        consumer: `c${i}`,
        host: `h${i % 2}`,
        label: `s → consumer c${i}`,
        health: { command: "true" },
        retries: 3,
        retryDelaySeconds: 1,
        timeoutSeconds: 15,
    }));
    const consumers = checks.map((c) => ({ name: c.consumer, host: c.host, configPath: `/etc/${c.consumer}.env`, reload: "true", timeoutSeconds: 15 }));
    const stdin = pulumi.secret("S3cr3t");
    const step = { op: "health", title: "t", triggers: [1], checks, stdin, preflight: { secret: "s", consumers } };
    const wire = packStep(step) as any;
    assert.equal(wire.stdin, stdin, "an Output is passed on untouched");
    assert.ok(!Array.isArray(wire.checks) && Array.isArray(wire.checks.each));
    assert.ok(!Array.isArray(wire.preflight.consumers) && wire.preflight.secret === "s");
    assert.ok(Array.isArray(step.checks), "the program's own object is not changed");
    const back = unpackStep({ ...wire, stdin: undefined }) as any;
    assert.deepEqual(back.checks, checks.map(canonical));
    assert.deepEqual(back.preflight.consumers, consumers.map(canonical));
    assert.equal(recordedDigest(back), recordedDigest(canonical({ ...step, stdin: undefined }) as any));
});
