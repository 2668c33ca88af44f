// Validation of the `rotation:` stack config (rotation:hosts, rotation:secrets,
// rotation:auditLog): the stack files parse the way Pulumi hands them over,
// and every malformed config is refused with an exact message that names the
// field.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import yaml from "js-yaml";
import { parseEnvironment, secretOrder, secretRotation, type HostConsumerConfig, type HostConsumerEntry } from "../../lib/config";
import { ConfigError } from "../../lib/errors";
import { rotationKeys } from "../../adapters/resolve";
import { environmentOf } from "../../lab/driver";
import { HOST_KEY, rawConfig, rawEnvironment } from "./harness";
import { problemsOf } from "./configProblems";

const STACKS = path.join(__dirname, "..", "..", "stacks");
/** A stack's committed file: the dev stack's is its template (the file itself is local and moves with every rotation). */
const committedStackFile = (stack: string) => path.join(STACKS, ...(stack === "dev" ? ["templates"] : []), `Pulumi.${stack}.yaml`);

/** What `pulumi.runtime.allConfig()` returns for a stack file: objects as JSON, scalars as strings. */
function allConfigOf(file: string): Record<string, string> {
    const doc = yaml.load(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(doc.config ?? {})) {
        out[k] = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
    }
    return out;
}

type Raw = Record<string, any>;

const MIGRATE =
    'the one-secret layout of 0.2 is no longer read: move the secret under rotation:secrets.<name> and its hosts under rotation:hosts (docs/operating.md, "Upgrading from 0.2")';

// ---- The stack files ----

/** The first secret of each stack file, broken in the "broken copy" tests. */
const FIRST_SECRET: Record<string, string> = { dev: "app-redis", staging: "orders-db", prod: "session-cache" };

for (const stack of ["dev", "staging", "prod"]) {
    const file = committedStackFile(stack);
    test(`stacks/Pulumi.${stack}.yaml is a valid environment as Pulumi hands it over`, () => {
        const raw = rotationKeys(allConfigOf(file));
        assert.deepEqual(Object.keys(raw).sort(), ["auditLog", "hosts", ...(stack === "prod" ? ["notify"] : []), "secrets"]);
        const env = parseEnvironment(stack, raw);
        const doc = yaml.load(fs.readFileSync(file, "utf8")) as { config: Record<string, any> };
        const secrets = doc.config["rotation:secrets"] as Record<string, any>;
        assert.ok(Object.keys(secrets).length >= 2, "the stack holds several secrets");
        assert.equal(Object.keys(secrets)[0], FIRST_SECRET[stack]);
        assert.deepEqual(Object.keys(env.secrets), Object.keys(secrets));
        assert.deepEqual(Object.keys(env.hosts), Object.keys(doc.config["rotation:hosts"]));
        assert.equal(env.auditLog, doc.config["rotation:auditLog"]);
        for (const [name, s] of Object.entries(secrets)) {
            assert.equal(env.secrets[name].generation, Number(s.generation), `${name}.generation`);
            assert.deepEqual(
                env.secrets[name].consumers.map((c) => c.name),
                s.consumers.map((c: { name: string }) => c.name),
                `${name}'s consumers`,
            );
            assert.deepEqual(
                env.secrets[name].consumers.map((c) => (c as HostConsumerEntry).host),
                s.consumers.map((c: { host: string }) => c.host),
                `${name}'s consumers' hosts`,
            );
            assert.deepEqual(env.secrets[name].after, s.after ?? [], `${name}.after`);
            // Every consumer's host is expanded from rotation:hosts.
            const rotation = secretRotation(env, name);
            (rotation.consumers as HostConsumerConfig[]).forEach((c, i) => {
                const host = doc.config["rotation:hosts"][s.consumers[i].host];
                assert.equal(c.host, host.address, `${name} → ${c.name}: address`);
                assert.equal(c.user, host.user, `${name} → ${c.name}: user`);
                assert.equal(c.port, host.port ?? 22, `${name} → ${c.name}: port`);
                assert.equal(c.hostName, s.consumers[i].host);
            });
        }
        // Each secret comes after the ones it waits for.
        const order = secretOrder(env);
        assert.deepEqual([...order].sort(), Object.keys(secrets).sort());
        for (const [name, s] of Object.entries(secrets)) {
            for (const a of s.after ?? []) assert.ok(order.indexOf(a) < order.indexOf(name), `${name} after ${a}`);
        }
    });
}

test("the stack files hold what the tests above rely on", () => {
    const env = (stack: string) => parseEnvironment(stack, rotationKeys(allConfigOf(committedStackFile(stack))));
    const dev = env("dev");
    assert.deepEqual(Object.keys(dev.secrets), ["app-redis", "app-pg", "app-deploy-key", "app-token", "app-api-key"]);
    assert.deepEqual(Object.keys(dev.hosts), ["host1", "host2", "host3", "deploy-target"]);
    assert.deepEqual(
        dev.secrets["app-redis"].consumers.map((c) => c.name),
        ["redis-host1", "redis-host2", "redis-host3"],
    );
    const deployKey = secretRotation(dev, "app-deploy-key");
    assert.equal(deployKey.source.kind, "ssh-authorized-key");
    assert.equal((deployKey.source as { host: string }).host, "127.0.1.20", "the ssh source's host is expanded to its address");
    const staging = env("staging");
    assert.deepEqual(Object.keys(staging.secrets), ["orders-db", "orders-cache"]);
    assert.deepEqual(
        staging.secrets["orders-db"].consumers.map((c) => c.name),
        ["orders-api-1", "orders-api-2", "orders-pgbouncer"],
    );
    const prod = env("prod");
    assert.deepEqual(Object.keys(prod.secrets), ["session-cache", "billing-db", "billing-db-readonly", "deploy-key"]);
    assert.deepEqual(prod.secrets["billing-db-readonly"].after, ["billing-db"]);
    assert.deepEqual(secretOrder(prod), ["session-cache", "billing-db", "billing-db-readonly", "deploy-key"]);
    for (const e of [dev, staging, prod]) for (const s of Object.values(e.secrets)) assert.equal(s.generation, 0, "the stacks are committed at generation 0");
});

for (const stack of ["dev", "staging", "prod"]) {
    test(`a broken copy of stacks/Pulumi.${stack}.yaml is refused, naming the stack and the field`, () => {
        const raw = rotationKeys(allConfigOf(committedStackFile(stack)));
        const secrets = JSON.parse(raw.secrets);
        const name = FIRST_SECRET[stack];
        const consumers = secrets[name].consumers;
        delete consumers[1].health;
        consumers[0].configPath = "etc/relative.conf";
        secrets[name].generation = "two";
        raw.secrets = JSON.stringify(secrets);
        let error: unknown;
        try {
            parseEnvironment(stack, raw);
        } catch (e) {
            error = e;
        }
        assert.ok(error instanceof ConfigError);
        assert.equal(
            error.message,
            [
                `Invalid rotation config for stack "${stack}":`,
                `  - rotation:secrets.${name}.generation: must be a whole number`,
                `  - rotation:secrets.${name}.consumers[0].configPath: must be an absolute path`,
                `  - rotation:secrets.${name}.consumers[1].health: must be either {command} (run on the host) or {url, expectStatus} (fetched from the operator's machine)`,
            ].join("\n"),
        );
    });
}

test("a stack file in 0.2's one-secret layout is refused with the migration message, once per old key", () => {
    const raw = rawConfig();
    const asPulumi = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)]));
    assert.deepEqual(
        problemsOf(() => parseEnvironment("prod", asPulumi)),
        [
            `rotation:generation: ${MIGRATE}`,
            `rotation:secret: ${MIGRATE}`,
            `rotation:store: ${MIGRATE}`,
            `rotation:source: ${MIGRATE}`,
            `rotation:consumers: ${MIGRATE}`,
        ],
    );
    assert.deepEqual(
        problemsOf(() => parseEnvironment("prod", { consumersFile: "fleet.yaml", mode: "rotate" })),
        [`rotation:mode: ${MIGRATE}`, `rotation:consumersFile: ${MIGRATE}`],
    );
});

test("rotationKeys keeps only the rotation: namespace and strips its prefix", () => {
    const secrets = JSON.stringify(rawEnvironment().secrets);
    const keys = rotationKeys({ "rotation:auditLog": "/var/log/x.log", "rotation:secrets": secrets, "aws:region": "eu-west-1", "rotationx:y": "1" });
    assert.deepEqual(keys, { auditLog: "/var/log/x.log", secrets });
});

test("the config in Pulumi's string form parses exactly like the object form", () => {
    const raw = { ...rawEnvironment(), auditLog: ".state/audit/unit.log" };
    const asPulumi = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)]));
    assert.deepEqual(parseEnvironment("unit", asPulumi), parseEnvironment("unit", raw));
    const env = parseEnvironment("unit", asPulumi);
    assert.equal(env.secrets["app-redis"].generation, 2);
    assert.equal(env.auditLog, ".state/audit/unit.log");
    // `pulumi config set --path rotation:secrets.app-redis.generation 3` stores a string.
    const bumped = rawEnvironment() as Raw;
    bumped.secrets["app-redis"].generation = "3";
    assert.equal(parseEnvironment("unit", bumped).secrets["app-redis"].generation, 3);
});

test("defaults: generation 0, mode rotate, no after, port 22, the shared audit log", () => {
    const raw = rawEnvironment() as Raw;
    delete raw.secrets["app-redis"].generation;
    delete raw.hosts["web-1"].port;
    const env = parseEnvironment("unit", raw);
    assert.equal(env.secrets["app-redis"].generation, 0);
    assert.equal(env.secrets["app-redis"].mode, "rotate");
    assert.deepEqual(env.secrets["app-redis"].after, []);
    assert.equal(env.hosts["web-1"].port, 22);
    assert.equal(env.auditLog, ".state/audit.log");
    assert.deepEqual(env.secrets["app-redis"].generator, { kind: "random", length: 32, upper: true, lower: true, numeric: true, special: false });
});

// ---- One secret, one defect ----

const SECRET = "app-redis";
const sec = (e: Raw) => e.secrets[SECRET];
const c0 = (e: Raw) => sec(e).consumers[0];
const S = `rotation:secrets.${SECRET}`;
const sshSource = { kind: "ssh-authorized-key", host: "deploy-target", authorizedKeysFile: "/home/app/.ssh/authorized_keys", loginUser: "app" };
const deployTarget = { address: "127.0.1.40", user: "root", hostKey: HOST_KEY, privateKeyFile: "/root/.ssh/id_ed25519" };
const pgSource = {
    kind: "postgres-role",
    host: "127.0.1.31",
    database: "app",
    group: "app_rw",
    loginPrefix: "app_g",
    adminUser: "postgres",
    adminPasswordFile: "/etc/rotation/pg.pass",
};

/** One defect each, applied to a fresh rawEnvironment() (one secret, app-redis, its consumers on hosts web-1..3); `problems` is the exact list of lines. */
const MALFORMED: { name: string; defect: (e: Raw) => void; problems: string[] }[] = [
    {
        name: "missing generation (it defaults to 0) with mode rollback",
        defect: (e) => (delete sec(e).generation, (sec(e).mode = "rollback")),
        problems: [`${S}.mode: nothing to roll back at generation 0`],
    },
    { name: "negative generation", defect: (e) => (sec(e).generation = -1), problems: [`${S}.generation: must be 0 or more`] },
    { name: "negative generation as Pulumi's string", defect: (e) => (sec(e).generation = "-1"), problems: [`${S}.generation: must be 0 or more`] },
    { name: "non-integer generation", defect: (e) => (sec(e).generation = 1.5), problems: [`${S}.generation: must be a whole number`] },
    { name: "non-integer generation as Pulumi's string", defect: (e) => (sec(e).generation = "1.5"), problems: [`${S}.generation: must be a whole number`] },
    { name: "non-numeric generation", defect: (e) => (sec(e).generation = "two"), problems: [`${S}.generation: must be a whole number`] },
    { name: "unknown top-level key", defect: (e) => (e.generaton = 3), problems: ["rotation:generaton: unknown key"] },
    { name: "old top-level key rotation:secret", defect: (e) => (e.secret = { name: "app-redis" }), problems: [`rotation:secret: ${MIGRATE}`] },
    { name: "unknown key inside a consumer", defect: (e) => (c0(e).relaod = "true"), problems: [`${S}.consumers[0].relaod: unknown key`] },
    { name: "unknown key inside a secret", defect: (e) => (sec(e).ttl = "90d"), problems: [`${S}.ttl: unknown key`] },
    { name: "0.2's nested secret block inside a secret", defect: (e) => (sec(e).secret = { name: SECRET }), problems: [`${S}.secret: unknown key`] },
    {
        name: "bad secret name",
        defect: (e) => ((e.secrets.App_Redis = sec(e)), delete e.secrets[SECRET]),
        problems: [
            "rotation:secrets.App_Redis: a secret name must be 1-63 lowercase letters, digits or '-', starting with a letter or digit (it names resources and the store entry)",
        ],
    },
    { name: "unknown secret type", defect: (e) => (sec(e).type = "certificate"), problems: [`${S}.type: must be one of "password", "api-token", "ssh-key"`] },
    {
        name: "unknown generator kind",
        defect: (e) => (sec(e).generator = { kind: "dice" }),
        problems: [`${S}.generator.kind: unknown kind "dice": must be one of "random", "command", "vault-password-policy", "manual"`],
    },
    {
        name: "generator without kind",
        defect: (e) => (sec(e).generator = { length: 40 }),
        problems: [`${S}.generator.kind: is required: one of "random", "command", "vault-password-policy", "manual"`],
    },
    { name: "too-short length", defect: (e) => (sec(e).generator.length = 8), problems: [`${S}.generator.length: must be at least 16`] },
    {
        name: "unknown store kind",
        defect: (e) => (sec(e).store = { kind: "s3", bucket: "b" }),
        problems: [`${S}.store.kind: unknown kind "s3": must be one of "file", "vault", "env-file", "kubernetes-secret"`],
    },
    { name: "file store without dir", defect: (e) => delete sec(e).store.dir, problems: [`${S}.store.dir: is required`] },
    {
        name: "vault store: address with a path, '..' in the KV path, namespace with a space",
        defect: (e) => (sec(e).store = { kind: "vault", address: "ftp://vault:8200", mount: "secret", path: "apps/../redis", namespace: "team a" }),
        problems: [
            `${S}.store.address: must be an http(s) URL`,
            `${S}.store.path: must not contain '.' or '..' segments`,
            `${S}.store.namespace: must be a namespace path such as 'team-a'`,
        ],
    },
    {
        name: "vault store: unknown auth method, approle without its files",
        defect: (e) => (sec(e).store = { kind: "vault", mount: "secret", path: "apps/redis", auth: { method: "userpass" } }),
        problems: [`${S}.store.auth.method: unknown method "userpass": must be one of "token", "approle"`],
    },
    {
        name: "vault store: approle without its secret id file",
        defect: (e) => (sec(e).store = { kind: "vault", mount: "secret", path: "apps/redis", auth: { method: "approle", roleIdFile: "r" } }),
        problems: [`${S}.store.auth.secretIdFile: is required`],
    },
    {
        name: "vault store: a token in the config is not a field (tokens stay out of config)",
        defect: (e) => (sec(e).store = { kind: "vault", mount: "secret", path: "apps/redis", auth: { method: "token", token: "hvs.x" } }),
        problems: [`${S}.store.auth.token: unknown key`],
    },
    {
        name: "unknown source kind",
        defect: (e) => (sec(e).source.kind = "mysql"),
        problems: [
            `${S}.source.kind: unknown kind "mysql": must be one of "redis-acl", "postgres-role", "ssh-authorized-key", "http-token", "command", "manual"`,
        ],
    },
    {
        name: "relative configPath (must be absolute on the host)",
        defect: (e) => (c0(e).configPath = "etc/app/redis.yaml"),
        problems: [`${S}.consumers[0].configPath: must be an absolute path`],
    },
    {
        name: "bad host key line",
        defect: (e) => (e.hosts["web-1"].hostKey = "ssh-dss AAAAB3NzaC1kc3M="),
        problems: ["rotation:hosts.web-1.hostKey: must be an OpenSSH public host key line such as 'ssh-ed25519 AAAA...'"],
    },
    {
        name: "no host key",
        defect: (e) => delete e.hosts["web-1"].hostKey,
        problems: ["rotation:hosts.web-1: a pinned host key is required: set hostKey or hostKeyFile"],
    },
    {
        name: "both hostKey and hostKeyFile",
        defect: (e) => (e.hosts["web-2"].hostKeyFile = "keys/web-2.pub"),
        problems: ["rotation:hosts.web-2: set only one of hostKey or hostKeyFile"],
    },
    {
        name: "duplicate consumer names",
        defect: (e) => (sec(e).consumers[2].name = "web-1"),
        problems: [`${S}.consumers[2].name: duplicate consumer name "web-1" (also consumers[0])`],
    },
    {
        name: "two consumers writing the same file on the same host",
        defect: (e) => (sec(e).consumers[2].host = "web-2"),
        problems: [`${S}.consumers[2].configPath: consumers[1] already writes /etc/rotation-app/redis.yaml on web-2`],
    },
    { name: "empty consumers list", defect: (e) => (sec(e).consumers = []), problems: [`${S}.consumers: must list at least one consumer`] },
    { name: "consumers not a list", defect: (e) => (sec(e).consumers = "web-1"), problems: [`${S}.consumers: must be a list`] },
    { name: "bad port", defect: (e) => (e.hosts["web-1"].port = 70000), problems: ["rotation:hosts.web-1.port: must be 1-65535"] },
    { name: "port as a string", defect: (e) => (e.hosts["web-1"].port = "22"), problems: ["rotation:hosts.web-1.port: must be a whole number"] },
    // logCheck: a log file or a unit's journal (lib/logCheck.ts)
    {
        name: "logCheck with both path and unit",
        defect: (e) => (c0(e).logCheck = { path: "/var/log/app.log", unit: "app1", pattern: "AUTH_FAILED" }),
        problems: [`${S}.consumers[0].logCheck: set exactly one of path (a log file on the host) or unit (a systemd unit whose journal is searched)`],
    },
    {
        name: "logCheck with neither path nor unit",
        defect: (e) => (c0(e).logCheck = { pattern: "AUTH_FAILED" }),
        problems: [`${S}.consumers[0].logCheck: set exactly one of path (a log file on the host) or unit (a systemd unit whose journal is searched)`],
    },
    {
        name: "logCheck path without a pattern",
        defect: (e) => (c0(e).logCheck = { path: "/var/log/app.log" }),
        problems: [`${S}.consumers[0].logCheck.pattern: is required with path: the extended regular expression (grep -E) of an auth failure`],
    },
    {
        name: "logCheck path with a priority",
        defect: (e) => (c0(e).logCheck = { path: "/var/log/app.log", pattern: "AUTH_FAILED", priority: "err" }),
        problems: [`${S}.consumers[0].logCheck.priority: only with unit: a log file has no priorities`],
    },
    {
        name: "logCheck unit with neither pattern nor priority",
        defect: (e) => (sec(e).consumers[1].logCheck = { unit: "app1.service" }),
        problems: [`${S}.consumers[1].logCheck: with unit, set pattern (grep -E on each message), priority (e.g. err), or both`],
    },
    {
        name: "logCheck unit that would be an option",
        defect: (e) => (c0(e).logCheck = { unit: "--since=yesterday", priority: "err" }),
        problems: [`${S}.consumers[0].logCheck.unit: must be a systemd unit name such as 'app1' or 'app1.service'`],
    },
    {
        name: "logCheck priority journalctl does not know",
        defect: (e) => (c0(e).logCheck = { unit: "app1", priority: "error" }),
        problems: [`${S}.consumers[0].logCheck.priority: must be one of emerg, alert, crit, err, warning, notice, info, debug (as journalctl -p)`],
    },
    { name: "bad health url", defect: (e) => (c0(e).health = { url: "not a url" }), problems: [`${S}.consumers[0].health.url: must be an http(s) URL`] },
    {
        name: "health url with a file: scheme",
        defect: (e) => (c0(e).health = { url: "file:///etc/shadow" }),
        problems: [`${S}.consumers[0].health.url: must be an http(s) URL`],
    },
    {
        name: "health with neither command nor url",
        defect: (e) => (c0(e).health = { cmd: "true" }),
        problems: [`${S}.consumers[0].health: must be either {command} (run on the host) or {url, expectStatus} (fetched from the operator's machine)`],
    },
    {
        name: "health status out of range",
        defect: (e) => (c0(e).health.expectStatus = 99),
        problems: [`${S}.consumers[0].health.expectStatus: must be 100-599`],
    },
    {
        name: "unknown write format",
        defect: (e) => (c0(e).write = { format: "toml", key: "a" }),
        problems: [`${S}.consumers[0].write.format: unknown format "toml": must be one of "yaml-key", "env-line", "template"`],
    },
    {
        name: "template without {{secret}}",
        defect: (e) => (c0(e).write = { format: "template", template: "password = changeme\n" }),
        problems: [`${S}.consumers[0].write.template: must contain {{secret}}`],
    },
    {
        name: "postgres source with a consumer lacking userKey",
        defect: (e) => {
            sec(e).source = { ...pgSource };
            sec(e).consumers.forEach((c: Raw) => (c.write.userKey = "redis.user"));
            delete sec(e).consumers[1].write.userKey;
        },
        problems: [`${S}.consumers[1].write: a postgres-role credential is a user and password pair: set userKey`],
    },
    {
        name: "postgres source with a template lacking {{user}}",
        defect: (e) => {
            sec(e).source = { ...pgSource };
            sec(e).consumers.forEach((c: Raw) => (c.write = { format: "template", template: "user={{user}}\npassword={{secret}}\n" }));
            sec(e).consumers[2].write.template = "password={{secret}}\n";
        },
        problems: [`${S}.consumers[2].write: a postgres-role credential is a user and password pair: the template must contain {{user}}`],
    },
    {
        name: "userKey on a non-postgres source",
        defect: (e) => (c0(e).write.userKey = "redis.user"),
        problems: [`${S}.consumers[0].write.userKey: only a postgres-role source has a per-generation user (source is redis-acl)`],
    },
    {
        name: "ssh-key secret with random generator",
        defect: (e) => ((sec(e).type = "ssh-key"), (sec(e).source = { ...sshSource }), (e.hosts["deploy-target"] = { ...deployTarget })),
        problems: [`${S}.generator.kind: an ssh-key secret needs generator kind "command" (ed25519 via ssh-keygen)`],
    },
    {
        name: "ssh-key secret with a redis source",
        defect: (e) => ((sec(e).type = "ssh-key"), (sec(e).generator = { kind: "command" })),
        problems: [`${S}.source.kind: an ssh-key secret cannot be rotated at a redis-acl source`],
    },
    {
        name: "password secret at an ssh-authorized-key source",
        defect: (e) => ((sec(e).source = { ...sshSource }), (e.hosts["deploy-target"] = { ...deployTarget })),
        problems: [`${S}.source.kind: a password secret cannot be rotated at an ssh-authorized-key source`],
    },
    {
        name: "an ssh-authorized-key source with 0.2's inline SSH fields",
        defect: (e) => (
            (sec(e).type = "ssh-key"),
            (sec(e).generator = { kind: "command" }),
            (sec(e).source = { ...sshSource, host: "127.0.1.40", user: "root", hostKey: HOST_KEY, privateKeyFile: "/root/.ssh/id_ed25519" })
        ),
        problems: [`${S}.source.user: unknown key`, `${S}.source.hostKey: unknown key`, `${S}.source.privateKeyFile: unknown key`],
    },
    {
        name: "a consumer with 0.2's inline SSH fields",
        defect: (e) => Object.assign(c0(e), { host: "127.0.1.11", user: "root", hostKey: HOST_KEY, privateKeyFile: "/root/.ssh/id_ed25519" }),
        problems: [`${S}.consumers[0].user: unknown key`, `${S}.consumers[0].hostKey: unknown key`, `${S}.consumers[0].privateKeyFile: unknown key`],
    },
    {
        name: "rollback at generation 0",
        defect: (e) => ((sec(e).generation = 0), (sec(e).mode = "rollback")),
        problems: [`${S}.mode: nothing to roll back at generation 0`],
    },
    { name: "unknown mode", defect: (e) => (sec(e).mode = "undo"), problems: [`${S}.mode: must be one of "rotate", "rollback"`] },
    {
        name: "NUL byte in reload",
        defect: (e) => (c0(e).reload = "systemctl reload app\0rm -rf /"),
        problems: [`${S}.consumers[0].reload: must not contain a NUL byte`],
    },
    {
        name: "note with a newline",
        defect: (e) => (sec(e).note = "scheduled\nINFO forged log line"),
        problems: [`${S}.note: must be one line of at most 200 characters`],
    },
    {
        name: "reason outside the runbook's list",
        defect: (e) => (sec(e).reason = "quarterly rotation"),
        problems: [`${S}.reason: must be one of scheduled, incident, personnel-change, audit-finding (free text goes in note)`],
    },
    { name: "invalid JSON in a config value", defect: (e) => (e.secrets = "{app-redis: {}}"), problems: ["rotation:secrets: is not valid JSON"] },
    {
        name: "multiple problems reported together",
        defect: (e) => ((sec(e).generation = -1), (e.bogus = true), (sec(e).store = { kind: "file" }), (e.hosts["web-3"].port = 0)),
        problems: [
            "rotation:hosts.web-3.port: must be 1-65535",
            `${S}.generation: must be 0 or more`,
            `${S}.store.dir: is required`,
            "rotation:bogus: unknown key",
        ],
    },
];

function assertRefused(raw: Raw, problems: string[]) {
    let error: unknown;
    try {
        parseEnvironment("unit", raw);
    } catch (e) {
        error = e;
    }
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    assert.equal(error.message, `Invalid rotation config for stack "unit":\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    assert.deepEqual(error.problems, problems);
}

for (const { name, defect, problems } of MALFORMED) {
    test(`refused with an exact message: ${name}`, () => {
        const raw = rawEnvironment() as Raw;
        defect(raw);
        assertRefused(raw, problems);
    });
}

test("there are at least 25 malformed cases and the config they start from is valid", () => {
    assert.ok(MALFORMED.length >= 25);
    const env = parseEnvironment("unit", rawEnvironment());
    assert.deepEqual(Object.keys(env.secrets), [SECRET]);
    assert.deepEqual(Object.keys(env.hosts), ["web-1", "web-2", "web-3"]);
    assert.equal(env.secrets[SECRET].consumers.length, 3);
});

test("logCheck names a log file or a unit's journal: each parses to what the scripts need, windowSeconds defaulted", () => {
    const raw = rawEnvironment() as Raw;
    c0(raw).logCheck = { unit: "app1", priority: "err" };
    sec(raw).consumers[1].logCheck = { unit: "app1.service", pattern: "AUTH_FAILED|WRONGPASS", priority: "warning", windowSeconds: 5 };
    const consumers = parseEnvironment("unit", raw).secrets[SECRET].consumers;
    assert.deepEqual(
        consumers.map((c) => (c as HostConsumerEntry).logCheck),
        [
            { unit: "app1", priority: "err", windowSeconds: 3 },
            { unit: "app1.service", pattern: "AUTH_FAILED|WRONGPASS", priority: "warning", windowSeconds: 5 },
            { path: "/var/log/app.log", pattern: "AUTH_FAILED", windowSeconds: 3 },
        ],
    );
});

test("a command source takes any secret type (it gets the secret on stdin)", () => {
    const source = { kind: "command", grant: "grant.sh", revoke: "revoke.sh", withdraw: "withdraw.sh", test: "test.sh" };
    assert.equal(secretRotation(parseEnvironment("unit", rawEnvironment({ source })), SECRET).source.kind, "command");
    const sshKey = rawEnvironment({ source, secret: { ...(rawConfig().secret as Raw), type: "ssh-key", generator: { kind: "command" } } });
    assert.equal(secretRotation(parseEnvironment("unit", sshKey), SECRET).secret.type, "ssh-key");
});

test("ConfigError is named, carries the stack and lists the problems", () => {
    let error: unknown;
    try {
        parseEnvironment("prod", rawEnvironment({ generation: -3 }));
    } catch (e) {
        error = e;
    }
    assert.ok(error instanceof ConfigError);
    assert.ok(error instanceof Error);
    assert.equal(error.name, "ConfigError");
    assert.equal(error.stackName, "prod");
    assert.deepEqual(error.problems, [`${S}.generation: must be 0 or more`]);
    assert.equal(error.message, `Invalid rotation config for stack "prod":\n  - ${S}.generation: must be 0 or more`);
});

// ---- Several secrets ----

/** Three secrets in the flat form: a Redis password, a PostgreSQL login and an SSH deploy key. */
const flatRedis = () => rawConfig();
const flatPg = () => {
    const r = rawConfig({
        secret: { name: "app-pg", type: "password", generator: { kind: "random", length: 40 }, reason: "scheduled", note: "quarterly", operator: "bob" },
        source: { ...pgSource },
    }) as Raw;
    r.consumers.forEach((c: Raw) =>
        Object.assign(c, { configPath: "/etc/rotation-app/pg.env", write: { format: "env-line", key: "PGPASSWORD", userKey: "PGUSER" } }),
    );
    return r;
};
const flatSsh = () => {
    const r = rawConfig(
        {
            secret: { name: "app-deploy-key", type: "ssh-key", generator: { kind: "command" }, reason: "scheduled", note: "yearly", operator: "carol" },
            source: {
                kind: "ssh-authorized-key",
                host: "127.0.1.40",
                port: 2222,
                user: "root",
                hostKey: HOST_KEY,
                privateKeyFile: "/root/.ssh/target_ed25519",
                authorizedKeysFile: "/home/app/.ssh/authorized_keys",
                loginUser: "app",
            },
        },
        2,
    ) as Raw;
    r.consumers.forEach((c: Raw) => Object.assign(c, { configPath: "/etc/rotation-app/deploy_key", write: { format: "template", template: "{{secret}}\n" } }));
    return r;
};
/** A two-secret environment (app-redis, app-pg), their consumers sharing hosts web-1..3. */
const twoSecrets = () => environmentOf(flatRedis(), flatPg()) as Raw;
/** Three secrets; app-deploy-key's source is on host app-deploy-key-target. */
const threeSecrets = () => environmentOf(flatRedis(), flatPg(), flatSsh()) as Raw;
/** A copy of app-redis's entry under another name, with one consumer. */
const renamedRedis = (name: string, consumer = "web-1") => {
    const r = rawConfig() as Raw;
    r.secret.name = name;
    r.consumers = r.consumers.filter((c: Raw) => c.name === consumer);
    return r;
};

const NAME_RULE = "a secret name must be 1-63 lowercase letters, digits or '-', starting with a letter or digit (it names resources and the store entry)";
const HOST_RULE = "a host name must be 1-63 lowercase letters, digits or '-', starting with a letter or digit";
const PG = "rotation:secrets.app-pg";
const KEY = "rotation:secrets.app-deploy-key";

/** A multi-secret environment and its exact problem list. */
const MALFORMED_ENVIRONMENTS: { name: string; make: () => Raw; problems: string[] }[] = [
    {
        name: "a consumer names a host that rotation:hosts does not list",
        make: () => {
            const e = twoSecrets();
            e.secrets["app-pg"].consumers[2].host = "web-9";
            return e;
        },
        problems: [`${PG}.consumers[2].host: no host "web-9" in rotation:hosts`],
    },
    {
        name: "an ssh-authorized-key source names an unknown host",
        make: () => {
            const e = threeSecrets();
            e.secrets["app-deploy-key"].source.host = "git-mirror";
            return e;
        },
        problems: [`${KEY}.source.host: no host "git-mirror" in rotation:hosts`],
    },
    {
        name: "no hosts at all: every reference is named, and the message says the list is empty",
        make: () => ({ ...threeSecrets(), hosts: {} }),
        problems: [
            'rotation:secrets.app-redis.consumers[0].host: no host "web-1" in rotation:hosts (it lists no hosts)',
            'rotation:secrets.app-redis.consumers[1].host: no host "web-2" in rotation:hosts (it lists no hosts)',
            'rotation:secrets.app-redis.consumers[2].host: no host "web-3" in rotation:hosts (it lists no hosts)',
            `${PG}.consumers[0].host: no host "web-1" in rotation:hosts (it lists no hosts)`,
            `${PG}.consumers[1].host: no host "web-2" in rotation:hosts (it lists no hosts)`,
            `${PG}.consumers[2].host: no host "web-3" in rotation:hosts (it lists no hosts)`,
            `${KEY}.consumers[0].host: no host "web-1" in rotation:hosts (it lists no hosts)`,
            `${KEY}.consumers[1].host: no host "web-2" in rotation:hosts (it lists no hosts)`,
            `${KEY}.source.host: no host "app-deploy-key-target" in rotation:hosts (it lists no hosts)`,
        ],
    },
    {
        name: "rotation:hosts missing entirely is read as no hosts",
        make: () => {
            const e = environmentOf(renamedRedis("app-redis"));
            delete e.hosts;
            return e;
        },
        problems: ['rotation:secrets.app-redis.consumers[0].host: no host "web-1" in rotation:hosts (it lists no hosts)'],
    },
    {
        name: "a consumer without a host",
        make: () => {
            const e = twoSecrets();
            delete e.secrets["app-pg"].consumers[1].host;
            return e;
        },
        problems: [`${PG}.consumers[1].host: is required: a host of rotation:hosts`],
    },
    {
        name: "a consumer's host given as a number",
        make: () => {
            const e = twoSecrets();
            e.secrets["app-pg"].consumers[0].host = 11;
            return e;
        },
        problems: [`${PG}.consumers[0].host: must be the name of a host of rotation:hosts`],
    },
    {
        name: "a cycle of two in after",
        make: () => {
            const e = twoSecrets();
            e.secrets["app-redis"].after = ["app-pg"];
            e.secrets["app-pg"].after = ["app-redis"];
            return e;
        },
        problems: [`${PG}.after: a cycle: app-pg waits for app-redis waits for app-pg; no secret of it could start`],
    },
    {
        name: "a cycle of three in after",
        make: () => {
            const e = threeSecrets();
            e.secrets["app-redis"].after = ["app-deploy-key"];
            e.secrets["app-pg"].after = ["app-redis"];
            e.secrets["app-deploy-key"].after = ["app-pg"];
            return e;
        },
        problems: [`${KEY}.after: a cycle: app-deploy-key waits for app-pg waits for app-redis waits for app-deploy-key; no secret of it could start`],
    },
    {
        name: "a secret waits for itself",
        make: () => {
            const e = twoSecrets();
            e.secrets["app-pg"].after = ["app-redis", "app-pg"];
            return e;
        },
        problems: [`${PG}.after[1]: a secret cannot wait for itself`],
    },
    {
        name: "after names a secret the stack does not hold",
        make: () => {
            const e = twoSecrets();
            e.secrets["app-pg"].after = ["app-mysql"];
            return e;
        },
        problems: [`${PG}.after[0]: no secret "app-mysql" in rotation:secrets`],
    },
    {
        name: "after names the same secret twice",
        make: () => {
            const e = twoSecrets();
            e.secrets["app-pg"].after = ["app-redis", "app-redis"];
            return e;
        },
        problems: [`${PG}.after[1]: "app-redis" is listed twice`],
    },
    {
        name: "after is not a list, or holds a number",
        make: () => {
            const e = twoSecrets();
            e.secrets["app-pg"].after = "app-redis";
            e.secrets["app-redis"].after = [7];
            return e;
        },
        problems: ["rotation:secrets.app-redis.after[0]: must be a string", `${PG}.after: must be a list`],
    },
    {
        name: "a secret name in uppercase",
        make: () => environmentOf(flatRedis(), { ...flatPg(), secret: { ...flatPg().secret, name: "App-PG" } }),
        problems: [`rotation:secrets.App-PG: ${NAME_RULE}`],
    },
    {
        name: "a secret name with an underscore, and one starting with '-'",
        make: () => environmentOf(renamedRedis("app_redis"), renamedRedis("-redis", "web-2")),
        problems: [`rotation:secrets.app_redis: ${NAME_RULE}`, `rotation:secrets.-redis: ${NAME_RULE}`],
    },
    {
        name: "bad host names (uppercase, underscore)",
        make: () => {
            const e = twoSecrets();
            e.hosts.Web_1 = e.hosts["web-1"];
            delete e.hosts["web-1"];
            e.hosts["WEB-2"] = e.hosts["web-2"];
            delete e.hosts["web-2"];
            for (const s of Object.values(e.secrets) as Raw[])
                s.consumers.forEach((c: Raw) => (c.host = { "web-1": "Web_1", "web-2": "WEB-2" }[c.host as string] ?? c.host));
            return e;
        },
        problems: [`rotation:hosts.Web_1: ${HOST_RULE}`, `rotation:hosts.WEB-2: ${HOST_RULE}`],
    },
    {
        name: "a host without an address",
        make: () => {
            const e = twoSecrets();
            delete e.hosts["web-2"].address;
            return e;
        },
        problems: ["rotation:hosts.web-2.address: is required"],
    },
    {
        name: "a host with 0.2's field name host instead of address",
        make: () => {
            const e = twoSecrets();
            e.hosts["web-2"].host = e.hosts["web-2"].address;
            delete e.hosts["web-2"].address;
            return e;
        },
        problems: ["rotation:hosts.web-2.address: is required", "rotation:hosts.web-2.host: unknown key"],
    },
    {
        name: "an unknown key in a host",
        make: () => {
            const e = twoSecrets();
            e.hosts["web-3"].proxyJump = "bastion";
            return e;
        },
        problems: ["rotation:hosts.web-3.proxyJump: unknown key"],
    },
    {
        name: "a host with both hostKey and hostKeyFile, another with neither",
        make: () => {
            const e = threeSecrets();
            e.hosts["app-deploy-key-target"].hostKeyFile = "keys/target.pub";
            delete e.hosts["web-3"].hostKey;
            return e;
        },
        problems: [
            "rotation:hosts.web-3: a pinned host key is required: set hostKey or hostKeyFile",
            "rotation:hosts.app-deploy-key-target: set only one of hostKey or hostKeyFile",
        ],
    },
    {
        name: "a host without a private key file or user",
        make: () => {
            const e = twoSecrets();
            delete e.hosts["web-1"].privateKeyFile;
            delete e.hosts["web-1"].user;
            return e;
        },
        problems: ["rotation:hosts.web-1.user: is required", "rotation:hosts.web-1.privateKeyFile: is required"],
    },
    { name: "no secrets at all", make: () => ({ ...twoSecrets(), secrets: {} }), problems: ["rotation:secrets: must list at least one secret"] },
    {
        name: "rotation:secrets missing",
        make: () => {
            const e = twoSecrets();
            delete e.secrets;
            return e;
        },
        problems: ["rotation:secrets: is required"],
    },
    {
        name: "a secret's entry is not a mapping",
        make: () => ({ ...twoSecrets(), secrets: { ...twoSecrets().secrets, "app-pg": "postgres" } }),
        problems: [`${PG}: must be an object`],
    },
    {
        name: "resource names collide: secret app-grant and secret app (app's grant of generation 0 is app-grant-g0)",
        make: () => environmentOf(renamedRedis("app"), renamedRedis("app-grant", "web-2")),
        problems: ['rotation:secrets.app-grant: resource name "app-grant-g0" would belong to both secret "app" and secret "app-grant"; rename one of them'],
    },
    {
        name: "resource names collide: secret app-rollout-x and secret app's consumer x",
        make: () => {
            const app = renamedRedis("app");
            app.consumers[0].name = "x";
            return environmentOf(app, renamedRedis("app-rollout-x", "web-2"));
        },
        problems: [
            'rotation:secrets.app-rollout-x: resource name "app-rollout-x" would belong to both secret "app" and secret "app-rollout-x"; rename one of them',
        ],
    },
    {
        name: "resource names collide with the next generation: secret app-g3 and secret app at generation 2",
        make: () => environmentOf(renamedRedis("app"), renamedRedis("app-g3", "web-2")),
        problems: ['rotation:secrets.app-g3: resource name "app-g3" would belong to both secret "app" and secret "app-g3"; rename one of them'],
    },
    {
        name: "two consumers of one secret write the same file on the same host",
        make: () => {
            const e = twoSecrets();
            e.secrets["app-pg"].consumers[2].host = "web-1";
            return e;
        },
        problems: [`${PG}.consumers[2].configPath: consumers[0] already writes /etc/rotation-app/pg.env on web-1`],
    },
    {
        name: "a problem in each of two secrets, reported together",
        make: () => {
            const e = twoSecrets();
            e.secrets["app-redis"].consumers[1].configPath = "relative.yaml";
            e.secrets["app-pg"].store = { kind: "vault", mount: "kv" };
            return e;
        },
        problems: ["rotation:secrets.app-redis.consumers[1].configPath: must be an absolute path", `${PG}.store.path: is required`],
    },
    {
        name: "a cross-field problem in each of two secrets, reported together",
        make: () => {
            const e = twoSecrets();
            e.secrets["app-redis"].consumers[0].write.userKey = "redis.user";
            delete e.secrets["app-pg"].consumers[0].write.userKey;
            return e;
        },
        problems: [
            "rotation:secrets.app-redis.consumers[0].write.userKey: only a postgres-role source has a per-generation user (source is redis-acl)",
            `${PG}.consumers[0].write: a postgres-role credential is a user and password pair: set userKey`,
        ],
    },
    {
        name: "a problem in a host and one in a secret, reported together",
        make: () => {
            const e = twoSecrets();
            e.hosts["web-2"].port = 0;
            e.secrets["app-pg"].mode = "undo";
            return e;
        },
        problems: ["rotation:hosts.web-2.port: must be 1-65535", `${PG}.mode: must be one of "rotate", "rollback"`],
    },
    {
        name: "a missing host key and an unknown host, reported together",
        make: () => {
            const e = twoSecrets();
            delete e.hosts["web-1"].hostKey;
            e.secrets["app-redis"].consumers[1].host = "web-7";
            return e;
        },
        problems: [
            "rotation:hosts.web-1: a pinned host key is required: set hostKey or hostKeyFile",
            'rotation:secrets.app-redis.consumers[1].host: no host "web-7" in rotation:hosts',
        ],
    },
    {
        name: "a negative generation as Pulumi's string names its secret",
        make: () => {
            const e = twoSecrets();
            e.secrets["app-pg"].generation = "-1";
            return e;
        },
        problems: [`${PG}.generation: must be 0 or more`],
    },
    {
        name: "rollback at generation 0 for one secret of two",
        make: () => {
            const e = twoSecrets();
            e.secrets["app-pg"].generation = 0;
            e.secrets["app-pg"].mode = "rollback";
            e.secrets["app-redis"].mode = "rollback";
            return e;
        },
        problems: [`${PG}.mode: nothing to roll back at generation 0`],
    },
    {
        name: "0.2's keys mixed with the new ones",
        make: () => ({ ...twoSecrets(), generation: "3", consumersFile: "fleet.yaml" }),
        problems: [`rotation:generation: ${MIGRATE}`, `rotation:consumersFile: ${MIGRATE}`],
    },
    {
        name: "invalid JSON in rotation:secrets and rotation:hosts",
        make: () => ({ ...twoSecrets(), secrets: '{"app-redis": {"generation": 2,}}', hosts: "{web-1: {}}" }),
        problems: ["rotation:hosts: is not valid JSON", "rotation:secrets: is not valid JSON"],
    },
    {
        name: "invalid JSON and an old key: both named",
        make: () => ({ ...twoSecrets(), secrets: "[app-redis]", secret: "{}" }),
        problems: ["rotation:secrets: is not valid JSON", `rotation:secret: ${MIGRATE}`],
    },
    {
        name: "an empty audit log path",
        make: () => ({ ...twoSecrets(), auditLog: "" }),
        problems: ["rotation:auditLog: must not be empty"],
    },
    {
        name: "an ssh-key secret whose source host is a consumer's host, with a random generator",
        make: () => {
            const e = threeSecrets();
            e.secrets["app-deploy-key"].source.host = "web-1";
            e.secrets["app-deploy-key"].generator = { kind: "random" };
            return e;
        },
        problems: [`${KEY}.generator.kind: an ssh-key secret needs generator kind "command" (ed25519 via ssh-keygen)`],
    },
];

for (const { name, make, problems } of MALFORMED_ENVIRONMENTS) {
    test(`an environment refused with an exact message: ${name}`, () => assertRefused(make(), problems));
}

test("there are at least 20 malformed environments and the ones they start from are valid", () => {
    assert.ok(MALFORMED_ENVIRONMENTS.length >= 20);
    assert.deepEqual(Object.keys(parseEnvironment("unit", twoSecrets()).secrets), ["app-redis", "app-pg"]);
    const three = parseEnvironment("unit", threeSecrets());
    assert.deepEqual(Object.keys(three.secrets), ["app-redis", "app-pg", "app-deploy-key"]);
    assert.deepEqual(Object.keys(three.hosts), ["web-1", "web-2", "web-3", "app-deploy-key-target"]);
    // Neighbours of the refused names are accepted: same names, no shared resource.
    assert.deepEqual(Object.keys(parseEnvironment("unit", environmentOf(renamedRedis("app"), renamedRedis("app-pg", "web-2"))).secrets), ["app", "app-pg"]);
});

// zod names a record "record": the fallback message has no word for it.
for (const [what, value] of [
    ["a string", "app-redis"],
    ["a list", ["app-redis"]],
] as const) {
    test(`rotation:secrets given as ${what} is refused as not a mapping`, () => {
        assertRefused({ ...twoSecrets(), secrets: value }, ["rotation:secrets: must be a mapping"]);
    });
}

test("rotation:secrets or rotation:hosts that is not a mapping is refused, naming the key", () => {
    // The exact wording for secrets is checked above; this covers both keys.
    for (const [key, value] of [
        ["secrets", "app-redis"],
        ["secrets", ["app-redis"]],
        ["hosts", ["web-1"]],
        ["hosts", 7],
    ] as const) {
        const problems = problemsOf(() => parseEnvironment("unit", { ...twoSecrets(), [key]: value }));
        assert.equal(problems.length, 1, problems.join("\n"));
        assert.match(problems[0], new RegExp(`^rotation:${key}: must be `));
    }
});

test('a generation given as the string "3" is accepted for one secret while another is refused', () => {
    const e = twoSecrets();
    e.secrets["app-redis"].generation = "3";
    assert.equal(parseEnvironment("unit", e).secrets["app-redis"].generation, 3);
    e.secrets["app-pg"].generation = "-1";
    assertRefused(e, [`${PG}.generation: must be 0 or more`]);
});

/** app-redis and app-pg both writing /etc/rotation-app/redis.yaml (each its own key) on web-1..3. */
function sharedFile(): Raw {
    const e = twoSecrets();
    e.secrets["app-pg"].consumers.forEach((c: Raw) => (c.configPath = "/etc/rotation-app/redis.yaml"));
    e.secrets["app-pg"].consumers.forEach((c: Raw) => (c.write = { format: "yaml-key", key: "db.password", userKey: "db.user" }));
    return e;
}

test("two secrets may write the same file on the same host when one waits for the other", () => {
    const e = sharedFile();
    e.secrets["app-pg"].after = ["app-redis"];
    assert.deepEqual(
        parseEnvironment("unit", e).secrets["app-pg"].consumers.map((c) => (c as HostConsumerEntry).configPath),
        Array(3).fill("/etc/rotation-app/redis.yaml"),
    );
});

// A rollout reads the whole config file, rewrites it on the operator's machine and writes it back
// (provider/rollout.ts): two secrets' rollouts of one file running at once lose one of the updates.
test("two secrets writing the same file on the same host without after are refused", () => {
    const e = sharedFile();
    e.secrets["app-pg"].consumers = e.secrets["app-pg"].consumers.slice(0, 2);
    assertRefused(
        e,
        [0, 1].map(
            (i) =>
                `${PG}.consumers[${i}].configPath: secret "app-redis" (consumers[${i}]) also writes /etc/rotation-app/redis.yaml on web-${i + 1}; their rollouts would overwrite each other: list "app-redis" in this secret's after`,
        ),
    );
});

// ---- Order and expansion ----

test("secretOrder puts each secret after the ones it waits for, otherwise keeps the listed order", () => {
    const e = threeSecrets();
    assert.deepEqual(secretOrder(parseEnvironment("unit", e)), ["app-redis", "app-pg", "app-deploy-key"]);
    e.secrets["app-redis"].after = ["app-deploy-key"];
    assert.deepEqual(secretOrder(parseEnvironment("unit", e)), ["app-deploy-key", "app-redis", "app-pg"]);
    e.secrets["app-redis"].after = ["app-deploy-key", "app-pg"];
    e.secrets["app-deploy-key"].after = ["app-pg"];
    assert.deepEqual(secretOrder(parseEnvironment("unit", e)), ["app-pg", "app-deploy-key", "app-redis"]);
    delete e.secrets["app-redis"].after;
    e.secrets["app-pg"].after = ["app-deploy-key"];
    e.secrets["app-deploy-key"].after = [];
    assert.deepEqual(secretOrder(parseEnvironment("unit", e)), ["app-redis", "app-deploy-key", "app-pg"]);
});

test("secretRotation expands each consumer's host (address, port, user, host key) and the ssh source's", () => {
    const e = threeSecrets();
    e.hosts["web-2"] = { address: "web-2.internal", port: 2200, user: "deploy", hostKeyFile: "keys/web-2.pub", privateKeyFile: "/etc/rotation/deploy_ed25519" };
    e.auditLog = "/var/log/rotation/unit.log";
    e.secrets["app-pg"].after = ["app-redis"];
    const env = parseEnvironment("unit", e);
    const pg = secretRotation(env, "app-pg");
    assert.deepEqual(
        (pg.consumers as HostConsumerConfig[]).map((c) => [c.name, c.hostName, c.host, c.port, c.user, c.hostKey, c.hostKeyFile, c.privateKeyFile]),
        [
            ["web-1", "web-1", "127.0.1.11", 22, "root", HOST_KEY, undefined, "/root/.ssh/id_ed25519"],
            ["web-2", "web-2", "web-2.internal", 2200, "deploy", undefined, "keys/web-2.pub", "/etc/rotation/deploy_ed25519"],
            ["web-3", "web-3", "127.0.1.13", 22, "root", HOST_KEY, undefined, "/root/.ssh/id_ed25519"],
        ],
    );
    assert.equal("hostKey" in pg.consumers[1], false, "no hostKey key when the host pins a file");
    assert.deepEqual((pg.consumers[0] as HostConsumerConfig).write, { format: "env-line", key: "PGPASSWORD", userKey: "PGUSER" });
    assert.equal((pg.consumers[0] as HostConsumerConfig).configPath, "/etc/rotation-app/pg.env");
    assert.deepEqual(pg.secret, {
        name: "app-pg",
        type: "password",
        generator: { kind: "random", length: 40, upper: true, lower: true, numeric: true, special: false },
        reason: "scheduled",
        note: "quarterly",
        operator: "bob",
    });
    assert.equal(pg.generation, 2);
    assert.equal(pg.mode, "rotate");
    assert.deepEqual(pg.after, ["app-redis"]);
    assert.equal(pg.auditLog, "/var/log/rotation/unit.log");
    assert.equal(pg.source.kind, "postgres-role");

    const key = secretRotation(env, "app-deploy-key");
    assert.deepEqual(key.source, {
        kind: "ssh-authorized-key",
        host: "127.0.1.40",
        port: 2222,
        user: "root",
        privateKeyFile: "/root/.ssh/target_ed25519",
        hostKey: HOST_KEY,
        authorizedKeysFile: "/home/app/.ssh/authorized_keys",
        loginUser: "app",
    });
    assert.deepEqual(
        (key.consumers as HostConsumerConfig[]).map((c) => c.host),
        ["127.0.1.11", "web-2.internal"],
    );
    assert.deepEqual(key.secret.generator, { kind: "command", length: 32 });
    assert.deepEqual(secretRotation(env, "app-redis").after, []);
});

test("secretRotation returns a copy: changing it leaves the environment alone", () => {
    const env = parseEnvironment("unit", twoSecrets());
    const r = secretRotation(env, "app-redis");
    (r.consumers[0] as HostConsumerConfig).port = 2022;
    (r.store as { dir: string }).dir = "/elsewhere";
    r.after.push("app-pg");
    assert.equal(env.hosts["web-1"].port, 22);
    assert.deepEqual(env.secrets["app-redis"].store, { kind: "file", dir: "/var/lib/rotation/store" });
    assert.deepEqual(env.secrets["app-redis"].after, []);
    assert.equal((secretRotation(env, "app-redis").consumers[0] as HostConsumerConfig).port, 22);
});

test("a host listed twice (same address, port and user under two names) is refused", () => {
    const e = rawEnvironment() as Raw;
    e.hosts["web-2b"] = { ...e.hosts["web-2"] };
    assertRefused(e, ["rotation:hosts.web-2b: same address, port and user as hosts.web-2; list each host once"]);
    e.hosts["web-2b"].user = "deploy";
    assert.ok(parseEnvironment("unit", e).hosts["web-2b"], "another login on the same machine is another host");
});

test("two logins of one machine writing the same file count as one file", () => {
    const e = rawEnvironment() as Raw;
    e.hosts["web-2b"] = { ...e.hosts["web-2"], user: "deploy" };
    e.secrets["app-redis"].consumers[2].host = "web-2b";
    e.secrets["app-redis"].consumers[2].configPath = e.secrets["app-redis"].consumers[1].configPath;
    assertRefused(e, ["rotation:secrets.app-redis.consumers[2].configPath: consumers[1] already writes /etc/rotation-app/redis.yaml on web-2b"]);
});

test("a random generator with every character class turned off is refused", () => {
    const e = rawEnvironment() as Raw;
    e.secrets["app-redis"].generator = { kind: "random", upper: false, lower: false, numeric: false };
    assertRefused(e, ["rotation:secrets.app-redis.generator: a random generator needs at least one of upper, lower, numeric or special"]);
});
