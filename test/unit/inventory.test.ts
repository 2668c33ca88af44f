// rotation:inventoryFile: a large environment's hosts and consumers read from
// a YAML file instead of the stack config (whose environment variable Linux
// caps at 128 KiB), with its digest, and errors that name the file and the
// field. Then resolveEnvironment: local files checked, host keys read once.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { mock, test } from "node:test";
import yaml from "js-yaml";
import { parseEnvironment, type EnvironmentConfig, type HostConsumerConfig, type HostConsumerEntry } from "../../lib/config";
import { readInventory } from "../../lib/inventory";
import { resolveEnvironment } from "../../adapters/resolve";
import { environmentOf } from "../../lab/driver";
import { fileStorePath } from "../../stores/fileLayout";
import { HOST_KEY, rawConfig, rawEnvironment } from "./harness";
import { problemsOf } from "./configProblems";

type Raw = Record<string, any>;
const SECRET = "app-redis";

/** A fresh directory holding fleet.yaml with `content`. */
function dirWith(content: string, file = "fleet.yaml"): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inventory-"));
    fs.writeFileSync(path.join(dir, file), content);
    return dir;
}

/** rawEnvironment() without its hosts and app-redis's consumers: the file holds them. */
function inlineWithoutInventory(): Raw {
    const { hosts: _hosts, ...raw } = rawEnvironment() as Raw;
    delete raw.secrets[SECRET].consumers;
    return { ...raw, inventoryFile: "fleet.yaml" };
}

/** The hosts and consumers rawEnvironment() holds inline, as an inventory file's document. */
function inventoryDoc(): { hosts: Raw; consumers: Raw } {
    const env = rawEnvironment() as Raw;
    return { hosts: env.hosts, consumers: { [SECRET]: env.secrets[SECRET].consumers } };
}

/** readInventory then parseEnvironment, as index.ts does. */
function parseWithInventory(raw: Raw, dir: string, stack = "prod"): EnvironmentConfig {
    const { raw: merged, inventory } = readInventory(stack, raw, dir);
    return parseEnvironment(stack, merged, inventory);
}

const AT = "rotation:inventoryFile fleet.yaml: ";
const FILE = "rotation:inventoryFile: fleet.yaml: ";

test("1000 consumers on 100 hosts from a file parse like the same inline; the file's digest is kept", () => {
    const base = (rawEnvironment() as Raw).secrets[SECRET].consumers[0];
    const hosts: Raw = {};
    for (let h = 0; h < 100; h++) hosts[`h${h}`] = { address: `10.0.${h}.1`, user: "deploy", hostKey: HOST_KEY, privateKeyFile: "/root/.ssh/id_ed25519" };
    const consumers = Array.from({ length: 1000 }, (_, i) => ({ ...base, name: `c-${i}`, host: `h${i % 100}`, configPath: `/etc/app/c-${i}.yaml` }));
    const content = yaml.dump({ hosts, consumers: { [SECRET]: consumers } });
    const dir = dirWith(content);

    const raw = inlineWithoutInventory();
    const { raw: merged, inventory } = readInventory("prod", raw, dir);
    const fromFile = parseEnvironment("prod", merged, inventory);
    const inline = rawEnvironment() as Raw;
    inline.hosts = hosts;
    inline.secrets[SECRET].consumers = consumers;
    assert.deepEqual(fromFile, parseEnvironment("prod", inline));
    assert.equal(fromFile.secrets[SECRET].consumers.length, 1000);
    assert.equal(fromFile.secrets[SECRET].consumers[999].name, "c-999");
    assert.equal((fromFile.secrets[SECRET].consumers[999] as HostConsumerEntry).host, "h99");
    assert.equal(Object.keys(fromFile.hosts).length, 100);
    assert.deepEqual(inventory, {
        file: "fleet.yaml",
        sha256: createHash("sha256").update(content).digest("hex"),
        hosts: Object.keys(hosts),
        consumersOf: [SECRET],
    });
    assert.equal(merged.inventoryFile, undefined, "the file's key is not passed on to the schema");
    assert.equal(raw.secrets[SECRET].consumers, undefined, "the caller's config is not changed");
    // A changed file changes the digest.
    fs.appendFileSync(path.join(dir, "fleet.yaml"), "# touched\n");
    assert.notEqual(readInventory("prod", raw, dir).inventory!.sha256, inventory!.sha256);
});

test("without rotation:inventoryFile the config passes through unchanged", () => {
    const raw = rawEnvironment();
    const out = readInventory("prod", raw, "/nonexistent");
    assert.equal(out.raw, raw);
    assert.equal(out.inventory, undefined);
});

test("the stack config in Pulumi's string form (JSON values) merges with the file like the object form", () => {
    const dir = dirWith(yaml.dump(inventoryDoc()));
    const raw = inlineWithoutInventory();
    const asPulumi = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : String(v)]));
    assert.deepEqual(parseWithInventory(asPulumi, dir), parseWithInventory(raw, dir));
    assert.deepEqual(parseWithInventory(raw, dir), parseEnvironment("prod", rawEnvironment()));
});

test("a file with only hosts, or only consumers, merges with the inline rest", () => {
    const { hosts, consumers } = inventoryDoc();
    const onlyHosts = dirWith(yaml.dump({ hosts }));
    const { hosts: _h, ...withConsumers } = rawEnvironment() as Raw;
    assert.deepEqual(parseWithInventory({ ...withConsumers, inventoryFile: "fleet.yaml" }, onlyHosts), parseEnvironment("prod", rawEnvironment()));
    const onlyConsumers = dirWith(yaml.dump({ consumers }));
    const withHosts = rawEnvironment() as Raw;
    delete withHosts.secrets[SECRET].consumers;
    assert.deepEqual(parseWithInventory({ ...withHosts, inventoryFile: "fleet.yaml" }, onlyConsumers), parseEnvironment("prod", rawEnvironment()));
    // Inline hosts and file hosts together, as long as each is listed once.
    const split = dirWith(yaml.dump({ hosts: { "web-3": hosts["web-3"] }, consumers }));
    const { "web-3": _w3, ...twoHosts } = hosts;
    const { raw: merged, inventory } = readInventory("prod", { ...withHosts, hosts: twoHosts, inventoryFile: "fleet.yaml" }, split);
    assert.deepEqual(Object.keys(parseEnvironment("prod", merged, inventory).hosts), ["web-1", "web-2", "web-3"]);
    assert.deepEqual(inventory!.hosts, ["web-3"]);
});

test("a consumer's error names the file, the secret and the field", () => {
    const doc = inventoryDoc();
    doc.consumers[SECRET][1].configPath = "relative/path";
    doc.consumers[SECRET][2].host = "h9";
    const dir = dirWith(yaml.dump(doc));
    assert.deepEqual(
        problemsOf(() => parseWithInventory(inlineWithoutInventory(), dir)),
        [`${AT}consumers.app-redis[1].configPath: must be an absolute path`],
    );
    doc.consumers[SECRET][1].configPath = "/etc/ok.yaml";
    const dir2 = dirWith(yaml.dump(doc));
    assert.deepEqual(
        problemsOf(() => parseWithInventory(inlineWithoutInventory(), dir2)),
        [`${AT}consumers.app-redis[2].host: no host "h9" in rotation:hosts`],
    );
});

test("an empty consumers list in the file names the file", () => {
    const doc = inventoryDoc();
    doc.consumers[SECRET] = [];
    assert.deepEqual(
        problemsOf(() => parseWithInventory(inlineWithoutInventory(), dirWith(yaml.dump(doc)))),
        [`${AT}consumers.app-redis: must list at least one consumer`],
    );
});

test("a host's error names the file and the field; an inline host's error does not", () => {
    const doc: Raw = {
        ...inventoryDoc(),
        hosts: { ...inventoryDoc().hosts, h1: { address: "10.0.0.1", port: 0, user: "deploy", hostKey: HOST_KEY, privateKeyFile: "/k" } },
    };
    const raw: Raw = { ...inlineWithoutInventory(), hosts: { bastion: { address: "10.0.0.2", user: "deploy", hostKey: "not a key", privateKeyFile: "/k" } } };
    assert.deepEqual(
        problemsOf(() => parseWithInventory(raw, dirWith(yaml.dump(doc)))),
        ["rotation:hosts.bastion.hostKey: must be an OpenSSH public host key line such as 'ssh-ed25519 AAAA...'", `${AT}hosts.h1.port: must be 1-65535`],
    );
    // Checks across fields too: a host without a pinned key.
    delete doc.hosts.h1.hostKey;
    doc.hosts.h1.port = 22;
    raw.hosts.bastion.hostKey = HOST_KEY;
    assert.deepEqual(
        problemsOf(() => parseWithInventory(raw, dirWith(yaml.dump(doc)))),
        [`${AT}hosts.h1: a pinned host key is required: set hostKey or hostKeyFile`],
    );
    // An unknown key in a host of the file.
    doc.hosts.h1.hostKey = HOST_KEY;
    doc.hosts.h1.adress = "typo";
    assert.deepEqual(
        problemsOf(() => parseWithInventory(raw, dirWith(yaml.dump(doc)))),
        [`${AT}hosts.h1.adress: unknown key`],
    );
});

test("a host named in the file and a host named like it with a longer name are told apart", () => {
    const doc = inventoryDoc();
    const raw = { ...inlineWithoutInventory(), hosts: { "web-10": { address: "10.0.0.10", user: "deploy", privateKeyFile: "/k" } } };
    assert.deepEqual(
        problemsOf(() => parseWithInventory(raw, dirWith(yaml.dump(doc)))),
        ["rotation:hosts.web-10: a pinned host key is required: set hostKey or hostKeyFile"],
    );
});

test("consumers of two secrets from one file: each error names its secret", () => {
    const redis = rawConfig();
    const pg = rawConfig({ secret: { ...(rawConfig().secret as Raw), name: "app-pg" } }, 2) as Raw;
    pg.consumers.forEach((c: Raw) => (c.configPath = "/etc/rotation-app/pg.yaml"));
    const env = environmentOf(redis, pg) as Raw;
    const consumers = { [SECRET]: env.secrets[SECRET].consumers, "app-pg": env.secrets["app-pg"].consumers };
    delete env.secrets[SECRET].consumers;
    delete env.secrets["app-pg"].consumers;
    consumers["app-pg"][1].retries = 99;
    const dir = dirWith(yaml.dump({ hosts: env.hosts, consumers }));
    const { hosts: _h, ...raw } = env;
    assert.deepEqual(
        problemsOf(() => parseWithInventory({ ...raw, inventoryFile: "fleet.yaml" }, dir)),
        [`${AT}consumers.app-pg[1].retries: must be 0-30`],
    );
    consumers["app-pg"][1].retries = 3;
    const ok = parseWithInventory({ ...raw, inventoryFile: "fleet.yaml" }, dirWith(yaml.dump({ hosts: env.hosts, consumers })));
    assert.deepEqual(
        Object.values(ok.secrets).map((s) => s.consumers.length),
        [3, 2],
    );
});

test("a host listed both in the file and in rotation:hosts is refused", () => {
    const doc = inventoryDoc();
    const raw = { ...inlineWithoutInventory(), hosts: { "web-2": doc.hosts["web-2"], other: doc.hosts["web-1"] } };
    assert.deepEqual(
        problemsOf(() => readInventory("prod", raw, dirWith(yaml.dump(doc)))),
        [`${FILE}hosts.web-2: also in rotation:hosts; list each host once`],
    );
});

test("a consumers list for a secret the stack does not hold is refused", () => {
    const doc = { ...inventoryDoc(), consumers: { ...inventoryDoc().consumers, "app-mysql": [] } };
    assert.deepEqual(
        problemsOf(() => readInventory("prod", inlineWithoutInventory(), dirWith(yaml.dump(doc)))),
        [`${FILE}consumers.app-mysql: no secret "app-mysql" in rotation:secrets`],
    );
});

test("consumers set both in the file and in rotation:secrets are refused", () => {
    const { hosts: _h, ...raw } = rawEnvironment() as Raw;
    assert.deepEqual(
        problemsOf(() => readInventory("prod", { ...raw, inventoryFile: "fleet.yaml" }, dirWith(yaml.dump(inventoryDoc())))),
        [`${FILE}consumers.app-redis: rotation:secrets.app-redis.consumers is set too; list them in one place`],
    );
});

test("every problem of the file is reported at once", () => {
    const doc: Raw = inventoryDoc();
    doc.consumers["app-mysql"] = [];
    doc.consumers[SECRET] = { name: "web-1" };
    const raw = { ...inlineWithoutInventory(), hosts: { "web-1": doc.hosts["web-1"] } };
    assert.deepEqual(
        problemsOf(() => readInventory("prod", raw, dirWith(yaml.dump(doc)))),
        [
            `${FILE}hosts.web-1: also in rotation:hosts; list each host once`,
            `${FILE}consumers.app-redis: must be a list of consumers`,
            `${FILE}consumers.app-mysql: no secret "app-mysql" in rotation:secrets`,
        ],
    );
});

test("a missing, unreadable, malformed or wrongly shaped inventory is refused before anything runs", () => {
    const raw = inlineWithoutInventory();
    const bad = dirWith("hosts: [unclosed\n");
    const invalid = problemsOf(() => readInventory("prod", raw, bad));
    assert.equal(invalid.length, 1);
    assert.match(invalid[0], /^rotation:inventoryFile: fleet\.yaml is not valid YAML: /);
    assert.deepEqual(
        problemsOf(() => readInventory("prod", { ...raw, inventoryFile: "nope.yaml" }, bad)),
        [`rotation:inventoryFile: cannot read ${path.join(bad, "nope.yaml")}: ENOENT`],
    );
    assert.deepEqual(
        problemsOf(() => readInventory("prod", { ...raw, inventoryFile: "." }, bad)),
        [`rotation:inventoryFile: cannot read ${bad}: EISDIR`],
    );
    for (const value of ["", "  ", 7, { file: "fleet.yaml" }]) {
        assert.deepEqual(
            problemsOf(() => readInventory("prod", { ...raw, inventoryFile: value }, bad)),
            ["rotation:inventoryFile: must be the path of a YAML file with the environment's hosts and consumers"],
            JSON.stringify(value),
        );
    }
    const shape = 'rotation:inventoryFile: fleet.yaml must be a mapping with "hosts" (name -> host) and/or "consumers" (secret name -> list of consumers)';
    // 0.2's file was a bare list of consumers; a scalar, an empty file or an unknown key are refused too.
    for (const content of ["just text\n", "", yaml.dump(inventoryDoc().consumers[SECRET]), yaml.dump({ ...inventoryDoc(), consumer: {} })]) {
        assert.deepEqual(
            problemsOf(() => readInventory("prod", raw, dirWith(content))),
            [shape],
            JSON.stringify(content.slice(0, 40)),
        );
    }
    assert.deepEqual(
        problemsOf(() => readInventory("prod", raw, dirWith(yaml.dump({ hosts: ["web-1"], consumers: "web-1" })))),
        [`${FILE}hosts must map host names to hosts`, `${FILE}consumers must map secret names to lists of consumers`],
    );
});

test("an unreadable inventory file (no permission) is refused", { skip: process.getuid?.() === 0 && "root reads any file" }, () => {
    const dir = dirWith(yaml.dump(inventoryDoc()));
    fs.chmodSync(path.join(dir, "fleet.yaml"), 0o000);
    assert.deepEqual(
        problemsOf(() => readInventory("prod", inlineWithoutInventory(), dir)),
        [`rotation:inventoryFile: cannot read ${path.join(dir, "fleet.yaml")}: EACCES`],
    );
});

// With an inventory file, readInventory replaces rotation:hosts and rotation:secrets by the merged mappings:
// an inline value that is not a mapping (or not valid JSON) disappears instead of being reported.
test("with an inventory file, an inline rotation:hosts that is not valid JSON is still refused", () => {
    // Today the whole config is accepted: the inline value is silently replaced by the file's hosts.
    const doc = inventoryDoc();
    const raw = { ...inlineWithoutInventory(), hosts: '{"bastion": {"address": "10.0.0.2",}}' };
    assert.deepEqual(
        problemsOf(() => parseWithInventory(raw, dirWith(yaml.dump(doc)))),
        ["rotation:hosts: is not valid JSON"],
    );
});
test("with an inventory file, an inline rotation:hosts that is a list is still refused", () => {
    const raw = { ...inlineWithoutInventory(), hosts: ["bastion"] };
    assert.deepEqual(problemsOf(() => parseWithInventory(raw, dirWith(yaml.dump(inventoryDoc())))).length, 1);
});
test("with an inventory file, an inline rotation:secrets that is not valid JSON is refused as such", () => {
    const raw = { inventoryFile: "fleet.yaml", secrets: "{app-redis: {}}" };
    assert.deepEqual(
        problemsOf(() => parseWithInventory(raw, dirWith(yaml.dump({ hosts: inventoryDoc().hosts })))),
        ["rotation:secrets: is not valid JSON"],
    );
});

// inventoryProblems rewrites every line starting with `rotation:secrets.<s>.consumers`, with no boundary
// after it (the hosts' prefix has one): a 0.2 key consumersFile moved under the secret is blamed on the file.
test("an unknown key consumersFile in a secret whose consumers come from the file is named in the stack config", () => {
    const raw = inlineWithoutInventory();
    raw.secrets[SECRET].consumersFile = "old-fleet.yaml";
    assert.deepEqual(
        problemsOf(() => parseWithInventory(raw, dirWith(yaml.dump(inventoryDoc())))),
        ["rotation:secrets.app-redis.consumersFile: unknown key"],
    );
});

// ---- resolveEnvironment ----

/** A project directory with the local files a resolved environment needs. */
function project(): { dir: string; raw: Raw } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "resolve-"));
    for (const f of ["keys/id_ed25519", "secrets/redis-admin.pass", "secrets/pg-admin.pass"]) {
        fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
        fs.writeFileSync(path.join(dir, f), "x\n");
    }
    fs.mkdirSync(path.join(dir, "store"));
    fs.writeFileSync(path.join(dir, "keys/web.pub"), `${HOST_KEY} root@web\n`);
    const redis = rawConfig({
        store: { kind: "file", dir: "store" },
        source: { ...(rawConfig().source as Raw), adminPasswordFile: "secrets/redis-admin.pass" },
    }) as Raw;
    const pg = rawConfig({
        secret: { ...(rawConfig().secret as Raw), name: "app-pg" },
        store: { kind: "file", dir: "store" },
        source: {
            kind: "postgres-role",
            host: "127.0.1.31",
            database: "app",
            group: "app",
            loginPrefix: "app_g",
            adminUser: "postgres",
            adminPasswordFile: "secrets/pg-admin.pass",
        },
        after: [SECRET],
    }) as Raw;
    pg.consumers.forEach((c: Raw) => Object.assign(c, { configPath: "/etc/app/pg.env", write: { format: "env-line", key: "PGPASSWORD", userKey: "PGUSER" } }));
    const raw = environmentOf(pg, redis) as Raw;
    for (const h of Object.values(raw.hosts) as Raw[]) {
        delete h.hostKey;
        h.hostKeyFile = "keys/web.pub";
        h.privateKeyFile = "keys/id_ed25519";
    }
    raw.auditLog = "audit/unit.log";
    return { dir, raw };
}

test("resolveEnvironment reads each host's key file once, however many secrets use the host", () => {
    const { dir, raw } = project();
    const realFs = require("node:fs") as typeof fs;
    const reads = mock.method(realFs, "readFileSync");
    let resolved: ReturnType<typeof resolveEnvironment>;
    try {
        resolved = resolveEnvironment("unit", parseEnvironment("unit", raw), dir);
    } finally {
        reads.mock.restore();
    }
    const keyReads = reads.mock.calls.filter((c) => String(c.arguments[0]).endsWith(".pub")).map((c) => c.arguments[0]);
    // Three hosts (web-1..3) share one key file here: one read per host, not per consumer (6).
    assert.deepEqual(keyReads, Array(3).fill(path.join(dir, "keys/web.pub")));
    // Each secret after the ones it waits for, with absolute paths and every consumer's key.
    assert.deepEqual(
        resolved.map((r) => r.config.secret.name),
        [SECRET, "app-pg"],
    );
    for (const r of resolved) {
        assert.deepEqual(r.consumerHostKeys, { "web-1": HOST_KEY, "web-2": HOST_KEY, "web-3": HOST_KEY });
        assert.equal(r.sourceHostKey, undefined);
        assert.deepEqual(
            (r.config.consumers as HostConsumerConfig[]).map((c) => c.privateKeyFile),
            Array(3).fill(path.join(dir, "keys/id_ed25519")),
        );
        assert.equal(r.config.auditLog, path.join(dir, "audit/unit.log"));
        assert.deepEqual(r.config.store, { kind: "file", dir: path.join(dir, "store") });
    }
    assert.equal((resolved[0].config.source as { adminPasswordFile: string }).adminPasswordFile, path.join(dir, "secrets/redis-admin.pass"));
    assert.equal((resolved[1].config.source as { adminPasswordFile: string }).adminPasswordFile, path.join(dir, "secrets/pg-admin.pass"));
});

test("resolveEnvironment reads an ssh source's host key like a consumer's", () => {
    const { dir, raw } = project();
    const flat = rawConfig(
        {
            secret: { name: "app-deploy-key", type: "ssh-key", generator: { kind: "command" }, reason: "scheduled", note: "r", operator: "o" },
            store: { kind: "file", dir: "store" },
            source: {
                kind: "ssh-authorized-key",
                host: "127.0.1.40",
                user: "root",
                hostKeyFile: "keys/target.pub",
                privateKeyFile: "keys/id_ed25519",
                authorizedKeysFile: "/root/.ssh/authorized_keys",
                loginUser: "root",
            },
        },
        1,
    ) as Raw;
    flat.consumers[0].configPath = "/etc/rotation-app/deploy_key";
    const otherKey = HOST_KEY.replace("AAAAIBTn", "AAAAIXXX");
    fs.writeFileSync(path.join(dir, "keys/target.pub"), `${otherKey}\n`);
    const env = environmentOf(flat) as Raw;
    Object.assign(raw.hosts, env.hosts);
    raw.hosts["web-1"].privateKeyFile = "keys/id_ed25519";
    raw.secrets["app-deploy-key"] = env.secrets["app-deploy-key"];
    const resolved = resolveEnvironment("unit", parseEnvironment("unit", raw), dir);
    const key = resolved.find((r) => r.config.secret.name === "app-deploy-key")!;
    assert.equal(key.sourceHostKey, otherKey);
    assert.equal((key.config.source as { privateKeyFile: string }).privateKeyFile, path.join(dir, "keys/id_ed25519"));
    assert.deepEqual(key.consumerHostKeys, { "web-1": HOST_KEY });
});

test("resolveEnvironment names a missing private key file once, at its host", () => {
    const { dir, raw } = project();
    raw.hosts["web-2"].privateKeyFile = "keys/missing";
    assert.deepEqual(
        problemsOf(() => resolveEnvironment("unit", parseEnvironment("unit", raw), dir)),
        [`rotation:hosts.web-2.privateKeyFile: file not found: ${path.join(dir, "keys/missing")}`],
    );
});

test("resolveEnvironment names an unreadable or wrong host key file, and every missing file, at once", () => {
    const { dir, raw } = project();
    raw.hosts["web-1"].hostKeyFile = "keys/nope.pub";
    fs.writeFileSync(path.join(dir, "keys/bad.pub"), "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    raw.hosts["web-3"].hostKeyFile = "keys/bad.pub";
    raw.secrets["app-pg"].source.adminPasswordFile = "secrets/gone.pass";
    assert.deepEqual(
        problemsOf(() => resolveEnvironment("unit", parseEnvironment("unit", raw), dir)),
        [
            `rotation:hosts.web-1.hostKeyFile: cannot read ${path.join(dir, "keys/nope.pub")}: ENOENT`,
            `rotation:hosts.web-3.hostKeyFile: ${path.join(dir, "keys/bad.pub")} does not hold an OpenSSH public host key`,
            `rotation:secrets.app-pg.source.adminPasswordFile: file not found: ${path.join(dir, "secrets/gone.pass")}`,
        ],
    );
});

test("resolveEnvironment refuses a generation below the committed one, naming the secret", () => {
    const { dir, raw } = project();
    fs.writeFileSync(fileStorePath(path.join(dir, "store"), "app-pg", "committed"), "5\n");
    assert.deepEqual(
        problemsOf(() => resolveEnvironment("unit", parseEnvironment("unit", raw), dir)),
        [
            "rotation:secrets.app-pg.generation: 2 is lower than generation 5 of app-pg, which was already committed (revocation started); generations only move forward: use 5 or higher",
        ],
    );
});

test("a log-check pattern grep -E cannot read is refused before anything runs, naming the consumer (and its file)", () => {
    const { dir, raw } = project();
    const consumers = raw.secrets[SECRET].consumers.map((c: Raw, i: number) => ({
        ...c,
        logCheck: { ...c.logCheck, pattern: i === 1 ? "AUTH_FAILED(" : "AUTH_FAILED|WRONGPASS" },
    }));
    delete raw.secrets[SECRET].consumers;
    fs.writeFileSync(path.join(dir, "fleet.yaml"), yaml.dump({ consumers: { [SECRET]: consumers } }));
    const { raw: merged, inventory } = readInventory("prod", { ...raw, inventoryFile: "fleet.yaml" }, dir);
    const env = parseEnvironment("prod", merged, inventory);
    assert.deepEqual(
        problemsOf(() => resolveEnvironment("prod", env, dir, inventory)),
        [`${AT}consumers.app-redis[1].logCheck.pattern: "AUTH_FAILED(" is not an extended regular expression grep -E accepts (Unmatched ( or \\()`],
    );
    // Inline, the same pattern is named at the stack config.
    assert.deepEqual(
        problemsOf(() => resolveEnvironment("prod", env, dir)),
        [`rotation:secrets.app-redis.consumers[1].logCheck.pattern: "AUTH_FAILED(" is not an extended regular expression grep -E accepts (Unmatched ( or \\()`],
    );
    (env.secrets[SECRET].consumers[1] as HostConsumerEntry).logCheck!.pattern = "AUTH_FAILED\\(";
    assert.equal(
        resolveEnvironment("prod", env, dir, inventory).find((r) => r.config.secret.name === SECRET)!.config.consumers.length,
        3,
        "an escaped parenthesis is fine",
    );
});
