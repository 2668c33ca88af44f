// The generators' registry (generators/): the step each kind contributes,
// pinned to the props stacks already hold (a changed title, script or
// property would show as a diff on every stack), their checks across fields,
// and the look-up's error for an unknown kind.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GENERATORS, generatedStep, generatorOf, generatorProblems, generatorSchema } from "../../generators";

const secret = { name: "app-redis", type: "password" as const };

test("random: the step the provider draws in, with its props as stacks hold them", () => {
    const g = generatorSchema.parse({ kind: "random", length: 40, special: true });
    assert.deepEqual(generatedStep(g, secret, 3), {
        args: {
            title: "app-redis: generate secret g3 (random, 40 characters)",
            op: "random",
            random: { length: 40, upper: true, lower: true, numeric: true, special: true },
            captureStdout: true,
            phase: "generated",
            guardDelete: { generation: 3, kind: "value" },
        },
        nothing: "app-redis: the random generator returned nothing",
    });
});

test("command: the step runs the command (or the default by type) on the operator's machine", () => {
    const own = generatedStep(generatorSchema.parse({ kind: "command", command: "openssl rand -hex 24" }), secret, 2);
    assert.deepEqual(own, {
        args: {
            title: "app-redis: generate secret g2",
            target: { kind: "local" },
            script: `set -euo pipefail\nv=$( openssl rand -hex 24 )\n[ -n "$v" ] || { echo "the generator printed nothing" >&2; exit 1; }\nprintf '%s' "$v"\n`,
            captureStdout: true,
            phase: "generated",
            guardDelete: { generation: 2, kind: "value" },
        },
        nothing: "app-redis: the generator printed nothing",
    });
    const key = generatedStep(generatorSchema.parse({ kind: "command" }), { name: "deploy", type: "ssh-key" }, 5).args as { script: string };
    assert.equal(
        key.script,
        `set -euo pipefail\nv=$( d=$(mktemp -d); ssh-keygen -q -t ed25519 -N '' -C 'rotation:deploy:g5' -f "$d/key" </dev/null >/dev/null && cat -- "$d/key"; rc=$?; rm -rf -- "$d"; exit $rc )\n[ -n "$v" ] || { echo "the generator printed nothing" >&2; exit 1; }\nprintf '%s' "$v"\n`,
    );
    const pw = generatedStep(generatorSchema.parse({ kind: "command", length: 20 }), secret, 1).args as { script: string };
    assert.match(pw.script, /^set -euo pipefail\nv=\$\( openssl rand -base64 '60' \| tr -dc 'A-Za-z0-9' \| head -c '20' \)\n/);
});

test("checks across fields, with paths from the secret's generator", () => {
    const random = generatorSchema.parse({ kind: "random", upper: false, lower: false, numeric: false });
    assert.deepEqual(generatorProblems(random, "ssh-key"), [
        { path: ["kind"], message: 'an ssh-key secret needs generator kind "command" (ed25519 via ssh-keygen)' },
        { path: [], message: "a random generator needs at least one of upper, lower, numeric or special" },
    ]);
    assert.deepEqual(generatorProblems(generatorSchema.parse({ kind: "random", upper: false, lower: false, numeric: false, special: true }), "password"), []);
    assert.deepEqual(generatorProblems(generatorSchema.parse({ kind: "command" }), "ssh-key"), []);
});

test("the registry: one kind per module, in the order the config's error lists them; an unknown kind is named", () => {
    assert.deepEqual(
        GENERATORS.map((g) => g.kind),
        ["random", "command", "vault-password-policy", "manual"],
    );
    assert.deepEqual(
        generatorSchema.options.map((o) => o.shape.kind.value),
        ["random", "command", "vault-password-policy", "manual"],
        "the schema's members are the registry's, in its order",
    );
    assert.equal(generatorOf("command"), GENERATORS[1]);
    assert.throws(() => generatorOf("dice"), {
        message: 'unknown kind "dice": must be one of "random", "command", "vault-password-policy", "manual"',
    });
});
