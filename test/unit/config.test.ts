// Validation of the `rotation:` stack config: the stack files parse the way
// Pulumi hands them over, and every malformed config is refused with an exact
// message that names the field.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import yaml from "js-yaml";
import { parseRotationConfig } from "../../lib/config";
import { ConfigError } from "../../lib/errors";
import { rotationKeys } from "../../lib/resolve";
import { HOST_KEY, rawConfig } from "./harness";

const STACKS = path.join(__dirname, "..", "..", "stacks");

/** What `pulumi.runtime.allConfig()` returns for a stack file: objects as JSON, scalars as strings. */
function allConfigOf(file: string): Record<string, string> {
    const doc = yaml.load(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(doc.config ?? {})) {
        out[k] = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
    }
    return out;
}

for (const stack of ["dev", "staging", "prod"]) {
    const file = path.join(STACKS, `Pulumi.${stack}.yaml`);
    const exists = fs.existsSync(file);
    test(`stacks/Pulumi.${stack}.yaml is a valid rotation config as Pulumi hands it over`, { skip: !exists && `${file} does not exist yet` }, () => {
        const all = allConfigOf(file);
        const raw = rotationKeys(all);
        assert.ok(Object.keys(raw).length > 0, "the stack has rotation: keys");
        const cfg = parseRotationConfig(stack, raw);
        const doc = yaml.load(fs.readFileSync(file, "utf8")) as { config: Record<string, any> };
        assert.equal(cfg.generation, Number(doc.config["rotation:generation"]));
        assert.equal(cfg.secret.name, doc.config["rotation:secret"].name);
        assert.deepEqual(cfg.consumers.map((c) => c.name), doc.config["rotation:consumers"].map((c: { name: string }) => c.name));
    });
}

for (const stack of ["dev", "staging", "prod"]) {
    test(`a broken copy of stacks/Pulumi.${stack}.yaml is refused, naming the stack and the field`, () => {
        const raw = rotationKeys(allConfigOf(path.join(STACKS, `Pulumi.${stack}.yaml`)));
        const consumers = JSON.parse(raw.consumers);
        delete consumers[1].health;
        consumers[0].configPath = "etc/relative.conf";
        raw.consumers = JSON.stringify(consumers);
        raw.generation = "two";
        assert.throws(
            () => parseRotationConfig(stack, raw),
            (e: ConfigError) => {
                assert.equal(e.message, [
                    `Invalid rotation config for stack "${stack}":`,
                    "  - rotation:generation: must be a whole number",
                    "  - rotation:consumers[0].configPath: must be an absolute path",
                    "  - rotation:consumers[1].health: must be either {command} (run on the host) or {url, expectStatus} (fetched from the operator's machine)",
                ].join("\n"));
                return true;
            },
        );
    });
}

test("rotationKeys keeps only the rotation: namespace and strips its prefix", () => {
    const secret = JSON.stringify(rawConfig().secret);
    const keys = rotationKeys({ "rotation:generation": "0", "rotation:secret": secret, "aws:region": "eu-west-1", "rotationx:y": "1" });
    assert.deepEqual(keys, { generation: "0", secret });
});

test("the config in Pulumi's string form parses exactly like the object form", () => {
    const raw = rawConfig();
    const asPulumi = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)]));
    assert.deepEqual(parseRotationConfig("unit", asPulumi), parseRotationConfig("unit", raw));
    assert.equal(parseRotationConfig("unit", asPulumi).generation, 2);
});

type Raw = Record<string, any>;
const c0 = (r: Raw) => r.consumers[0];
const sshSource = { kind: "ssh-authorized-key", host: "127.0.1.40", user: "root", hostKey: HOST_KEY, privateKeyFile: "/root/.ssh/id_ed25519", authorizedKeysFile: "/home/app/.ssh/authorized_keys", loginUser: "app" };
const pgSource = { kind: "postgres-role", host: "127.0.1.31", database: "app", group: "app_rw", loginPrefix: "app_g", adminUser: "postgres", adminPasswordFile: "/etc/rotation/pg.pass" };

/** One defect each, applied to a fresh rawConfig(); `problems` is the exact list of lines. */
const MALFORMED: { name: string; defect: (r: Raw) => void; problems: string[] }[] = [
    { name: "missing generation", defect: (r) => delete r.generation, problems: ["rotation:generation: is required"] },
    { name: "negative generation", defect: (r) => (r.generation = -1), problems: ["rotation:generation: must be 0 or more"] },
    { name: "negative generation as Pulumi's string", defect: (r) => (r.generation = "-1"), problems: ["rotation:generation: must be 0 or more"] },
    { name: "non-integer generation", defect: (r) => (r.generation = 1.5), problems: ["rotation:generation: must be a whole number"] },
    { name: "non-numeric generation", defect: (r) => (r.generation = "two"), problems: ["rotation:generation: must be a whole number"] },
    { name: "unknown top-level key", defect: (r) => (r.generaton = 3), problems: ["rotation:generaton: unknown key"] },
    { name: "unknown key inside a consumer", defect: (r) => (c0(r).relaod = "true"), problems: ["rotation:consumers[0].relaod: unknown key"] },
    { name: "unknown key inside secret", defect: (r) => (r.secret.ttl = "90d"), problems: ["rotation:secret.ttl: unknown key"] },
    { name: "bad secret name", defect: (r) => (r.secret.name = "App_Redis"), problems: ["rotation:secret.name: must be 1-63 lowercase letters, digits or '-', starting with a letter or digit"] },
    { name: "unknown secret type", defect: (r) => (r.secret.type = "certificate"), problems: ['rotation:secret.type: must be one of "password", "api-token", "ssh-key"'] },
    { name: "unknown generator kind", defect: (r) => (r.secret.generator = { kind: "dice" }), problems: ['rotation:secret.generator.kind: unknown kind "dice": must be one of "random", "command"'] },
    { name: "generator without kind", defect: (r) => (r.secret.generator = { length: 40 }), problems: ['rotation:secret.generator.kind: is required: one of "random", "command"'] },
    { name: "too-short length", defect: (r) => (r.secret.generator.length = 8), problems: ["rotation:secret.generator.length: must be at least 16"] },
    { name: "unknown store kind", defect: (r) => (r.store = { kind: "s3", bucket: "b" }), problems: ['rotation:store.kind: unknown kind "s3": must be one of "file", "vault"'] },
    { name: "file store without dir", defect: (r) => delete r.store.dir, problems: ["rotation:store.dir: is required"] },
    { name: "unknown source kind", defect: (r) => (r.source.kind = "mysql"), problems: ['rotation:source.kind: unknown kind "mysql": must be one of "redis-acl", "postgres-role", "ssh-authorized-key", "http-token", "command"'] },
    { name: "relative configPath (must be absolute on the host)", defect: (r) => (c0(r).configPath = "etc/app/redis.yaml"), problems: ["rotation:consumers[0].configPath: must be an absolute path"] },
    { name: "bad host key line", defect: (r) => (c0(r).hostKey = "ssh-dss AAAAB3NzaC1kc3M="), problems: ["rotation:consumers[0].hostKey: must be an OpenSSH public host key line such as 'ssh-ed25519 AAAA...'"] },
    { name: "no host key", defect: (r) => delete c0(r).hostKey, problems: ["rotation:consumers[0]: a pinned host key is required: set hostKey or hostKeyFile"] },
    { name: "both hostKey and hostKeyFile", defect: (r) => (r.consumers[1].hostKeyFile = "keys/web-2.pub"), problems: ["rotation:consumers[1]: set only one of hostKey or hostKeyFile"] },
    { name: "duplicate consumer names", defect: (r) => (r.consumers[2].name = "web-1"), problems: ['rotation:consumers[2].name: duplicate consumer name "web-1" (also consumers[0])'] },
    { name: "two consumers writing the same file on the same host", defect: (r) => (r.consumers[2].host = "127.0.1.12"), problems: ["rotation:consumers[2].configPath: consumers[1] already writes /etc/rotation-app/redis.yaml on 127.0.1.12"] },
    { name: "empty consumers list", defect: (r) => (r.consumers = []), problems: ["rotation:consumers: must list at least one consumer"] },
    { name: "consumers not a list", defect: (r) => (r.consumers = "web-1"), problems: ["rotation:consumers: must be a list"] },
    { name: "bad port", defect: (r) => (c0(r).port = 70000), problems: ["rotation:consumers[0].port: must be 1-65535"] },
    { name: "port as a string", defect: (r) => (c0(r).port = "22"), problems: ["rotation:consumers[0].port: must be a whole number"] },
    { name: "bad health url", defect: (r) => (c0(r).health = { url: "not a url" }), problems: ["rotation:consumers[0].health.url: must be an http(s) URL"] },
    { name: "health url with a file: scheme", defect: (r) => (c0(r).health = { url: "file:///etc/shadow" }), problems: ["rotation:consumers[0].health.url: must be an http(s) URL"] },
    { name: "health with neither command nor url", defect: (r) => (c0(r).health = { cmd: "true" }), problems: ["rotation:consumers[0].health: must be either {command} (run on the host) or {url, expectStatus} (fetched from the operator's machine)"] },
    { name: "health status out of range", defect: (r) => (c0(r).health.expectStatus = 99), problems: ["rotation:consumers[0].health.expectStatus: must be 100-599"] },
    { name: "unknown write format", defect: (r) => (c0(r).write = { format: "toml", key: "a" }), problems: ['rotation:consumers[0].write.format: unknown format "toml": must be one of "yaml-key", "env-line", "template"'] },
    { name: "template without {{secret}}", defect: (r) => (c0(r).write = { format: "template", template: "password = changeme\n" }), problems: ["rotation:consumers[0].write.template: must contain {{secret}}"] },
    {
        name: "postgres source with a consumer lacking userKey",
        defect: (r) => {
            r.source = { ...pgSource };
            r.consumers.forEach((c: Raw) => (c.write.userKey = "redis.user"));
            delete r.consumers[1].write.userKey;
        },
        problems: ["rotation:consumers[1].write: a postgres-role credential is a user and password pair: set userKey"],
    },
    { name: "userKey on a non-postgres source", defect: (r) => (c0(r).write.userKey = "redis.user"), problems: ["rotation:consumers[0].write.userKey: only a postgres-role source has a per-generation user (source is redis-acl)"] },
    { name: "ssh-key secret with random generator", defect: (r) => ((r.secret.type = "ssh-key"), (r.source = { ...sshSource })), problems: ['rotation:secret.generator.kind: an ssh-key secret needs generator kind "command" (ed25519 via ssh-keygen)'] },
    { name: "ssh-key secret with a redis source", defect: (r) => ((r.secret.type = "ssh-key"), (r.secret.generator = { kind: "command" })), problems: ["rotation:source.kind: an ssh-key secret cannot be rotated at a redis-acl source"] },
    { name: "password secret at an ssh-authorized-key source", defect: (r) => (r.source = { ...sshSource }), problems: ["rotation:source.kind: a password secret cannot be rotated at an ssh-authorized-key source"] },
    { name: "rollback at generation 0", defect: (r) => ((r.generation = 0), (r.mode = "rollback")), problems: ["rotation:mode: nothing to roll back at generation 0"] },
    { name: "unknown mode", defect: (r) => (r.mode = "undo"), problems: ['rotation:mode: must be one of "rotate", "rollback"'] },
    { name: "NUL byte in reload", defect: (r) => (c0(r).reload = "systemctl reload app\0rm -rf /"), problems: ["rotation:consumers[0].reload: must not contain a NUL byte"] },
    { name: "reason with a newline", defect: (r) => (r.secret.reason = "scheduled\nINFO forged log line"), problems: ["rotation:secret.reason: must be one line of at most 200 characters"] },
    { name: "invalid JSON in a config value", defect: (r) => (r.secret = "{name: app-redis}"), problems: ["rotation:secret: is not valid JSON"] },
    {
        name: "multiple problems reported together",
        defect: (r) => ((r.generation = -1), (r.bogus = true), (r.store = { kind: "file" }), (r.consumers[2].port = 0)),
        problems: ["rotation:generation: must be 0 or more", "rotation:store.dir: is required", "rotation:consumers[2].port: must be 1-65535", "rotation:bogus: unknown key"],
    },
];

for (const { name, defect, problems } of MALFORMED) {
    test(`refused with an exact message: ${name}`, () => {
        const raw = rawConfig() as Raw;
        defect(raw);
        let error: unknown;
        try {
            parseRotationConfig("unit", raw);
        } catch (e) {
            error = e;
        }
        assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
        assert.equal(error.message, `Invalid rotation config for stack "unit":\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        assert.deepEqual(error.problems, problems);
    });
}

test("there are at least 25 malformed cases and the config they start from is valid", () => {
    assert.ok(MALFORMED.length >= 25);
    assert.equal(parseRotationConfig("unit", rawConfig()).consumers.length, 3);
});

test("a command source takes any secret type (it gets the secret on stdin)", () => {
    const source = { kind: "command", grant: "grant.sh", revoke: "revoke.sh", withdraw: "withdraw.sh", test: "test.sh" };
    assert.equal(parseRotationConfig("unit", rawConfig({ source })).source.kind, "command");
    const sshKey = rawConfig({ source, secret: { ...(rawConfig().secret as Raw), type: "ssh-key", generator: { kind: "command" } } });
    assert.equal(parseRotationConfig("unit", sshKey).secret.type, "ssh-key");
});

test("ConfigError is named, carries the stack and lists the problems", () => {
    let error: unknown;
    try {
        parseRotationConfig("prod", rawConfig({ generation: -3 }));
    } catch (e) {
        error = e;
    }
    assert.ok(error instanceof ConfigError);
    assert.ok(error instanceof Error);
    assert.equal(error.name, "ConfigError");
    assert.equal(error.stackName, "prod");
    assert.deepEqual(error.problems, ["rotation:generation: must be 0 or more"]);
    assert.equal(error.message, 'Invalid rotation config for stack "prod":\n  - rotation:generation: must be 0 or more');
});
