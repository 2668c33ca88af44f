// The random generator the step provider runs (generators/random.ts): length,
// character classes, at least one of each requested class, and no class
// favoured over many draws.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CLASSES, randomSecret, type RandomSpec } from "../../generators/random";
import { stepProvider } from "../../provider/stepProvider";
import { STEP_TYPE } from "../../provider/types";

const spec = (over: Partial<RandomSpec> = {}): RandomSpec => ({ length: 32, upper: true, lower: true, numeric: true, special: false, ...over });

test("every draw has the length asked for, only characters of the requested classes, and one of each", () => {
    const cases: Partial<RandomSpec>[] = [
        {},
        { special: true },
        { upper: false, special: true, length: 16 },
        { lower: false, upper: false, length: 20 },
        { numeric: false, lower: false, upper: false, special: true, length: 64 },
    ];
    for (const c of cases) {
        const s = spec(c);
        const wanted = (Object.keys(CLASSES) as (keyof typeof CLASSES)[]).filter((k) => s[k]);
        const allowed = new Set(wanted.map((k) => CLASSES[k]).join(""));
        for (let i = 0; i < 2000; i++) {
            const v = randomSecret(s);
            assert.equal(v.length, s.length);
            for (const ch of v) assert.ok(allowed.has(ch), `${JSON.stringify(ch)} is not in the requested classes ${wanted.join(",")}`);
            for (const k of wanted)
                assert.ok(
                    [...v].some((ch) => CLASSES[k].includes(ch)),
                    `a draw lacks a ${k} character: ${k}`,
                );
        }
    }
});

test("characters are drawn evenly: over 200000 characters each of the 62 appears within 10% of its share", () => {
    const counts = new Map<string, number>();
    let total = 0;
    for (let i = 0; i < 6250; i++) {
        for (const ch of randomSecret(spec())) {
            counts.set(ch, (counts.get(ch) ?? 0) + 1);
            total++;
        }
    }
    const alphabet = CLASSES.upper + CLASSES.lower + CLASSES.numeric;
    assert.equal(counts.size, alphabet.length, "every character of the alphabet appears");
    const expected = total / alphabet.length;
    for (const ch of alphabet) {
        const n = counts.get(ch) ?? 0;
        assert.ok(Math.abs(n - expected) < expected * 0.1, `${ch}: ${n} draws, expected about ${expected.toFixed(0)}`);
    }
});

test("two draws differ, and a spec that cannot be met is refused", () => {
    assert.notEqual(randomSecret(spec()), randomSecret(spec()));
    assert.throws(() => randomSecret(spec({ upper: false, lower: false, numeric: false })), /no character class requested/);
    assert.throws(() => randomSecret(spec({ length: 2, special: true })), /cannot hold one character of each of 4 classes/);
});

test("the step provider runs a random step: its stdout is the secret, kept secret in state", async () => {
    const inputs = {
        title: "t",
        op: "random",
        random: spec({ length: 40 }),
        captureStdout: true,
        triggers: [3],
        attempts: 1,
        retryDelaySeconds: 0,
        timeoutSeconds: 10,
    };
    const r = await stepProvider.create!(`urn:pulumi:s::p::${STEP_TYPE}::x-g3`, inputs);
    const out = r.outs as { stdout: { value: string } | string };
    const value = typeof out.stdout === "string" ? out.stdout : out.stdout.value;
    assert.match(value, /^[A-Za-z0-9]{40}$/);
    assert.notEqual(typeof out.stdout, "string", "the value is wrapped as a Pulumi secret");
});
