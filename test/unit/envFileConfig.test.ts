// The env-file store in the `rotation:` stack config: it parses, its path is
// made absolute against the project, and a malformed one is refused with a
// message naming the field.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseEnvironment, secretRotation } from "../../lib/config";
import { ConfigError } from "../../lib/errors";
import { storeOf } from "../../stores";
import { rawEnvironment } from "./harness";

const S = "rotation:secrets.app-redis.store";

function problemsOf(store: unknown): string[] {
    try {
        parseEnvironment("unit", rawEnvironment({ store }));
    } catch (e) {
        assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
        return [...e.problems];
    }
    assert.fail("the config was accepted");
}

test("an env-file store parses; its path is resolved against the project directory", () => {
    const env = parseEnvironment("unit", rawEnvironment({ store: { kind: "env-file", path: "secrets/app.env", key: "REDIS_PASSWORD" } }));
    const store = secretRotation(env, "app-redis").store;
    assert.deepEqual(store, { kind: "env-file", path: "secrets/app.env", key: "REDIS_PASSWORD" });
    const kind = storeOf(store.kind);
    assert.deepEqual(kind.resolve(store, "/srv/project", `${S}`), []);
    assert.deepEqual(store, { kind: "env-file", path: "/srv/project/secrets/app.env", key: "REDIS_PASSWORD" });
    assert.equal(kind.label(store, "app-redis"), "env-file store /srv/project/secrets/app.env (key REDIS_PASSWORD)");
});

for (const { name, store, problems } of [
    { name: "unknown field", store: { kind: "env-file", path: "app.env", key: "K", mode: "0640" }, problems: [`${S}.mode: unknown key`] },
    {
        name: "a key that is no variable name",
        store: { kind: "env-file", path: "app.env", key: "1REDIS-PASSWORD" },
        problems: [`${S}.key: must be a variable name: letters, digits and '_', not starting with a digit (at most 128)`],
    },
    {
        name: "a key with a space",
        store: { kind: "env-file", path: "app.env", key: "REDIS PASSWORD" },
        problems: [`${S}.key: must be a variable name: letters, digits and '_', not starting with a digit (at most 128)`],
    },
    { name: "no key", store: { kind: "env-file", path: "app.env" }, problems: [`${S}.key: is required`] },
    { name: "no path", store: { kind: "env-file", key: "K" }, problems: [`${S}.path: is required`] },
    { name: "an empty path", store: { kind: "env-file", path: "", key: "K" }, problems: [`${S}.path: must not be empty`] },
]) {
    test(`env-file store: ${name} is refused naming the field`, () => assert.deepEqual(problemsOf(store), problems));
}
