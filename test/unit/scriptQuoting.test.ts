// Every value a script builder quotes arrives unchanged (issue 23: pre-flight
// indented the embedded drift check with a .replace that also split a quoted
// config path at its newline, and refused a valid config). Seeded nasty values
// (line breaks, quotes, $, $(...), backticks, backslashes, blanks, leading
// dashes, non-ASCII) go into every field of every builder:
// (a) the value enters the script only as shq() of it (or of a string built
//     from it), verbatim: the script with those words swapped for a plain
//     value's is the plain value's script, so nothing rewrote the script after
//     quoting and nothing spliced the value in raw;
// (b) pre-flight and the drift check run with bash on a config at a nasty
//     path and find it, or name exactly that path (scriptQuotingRun.test.ts
//     runs the other builders).
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { isDeepStrictEqual } from "node:util";
import { defaultGeneratorCommand } from "../../generators/command";
import type { RotationConfig, SourceConfig } from "../../lib/config";
import { rewriteConfig, type WriteSpec } from "../../writers";
import { freshNonce, hmacInput, hmacOf, holding } from "../../lib/drift";
import { shq } from "../../lib/quote";
import { driftBatchScript, driftCheckScript, splitDriftBatch } from "../../lib/scripts/check";
import { logAnchorScript, logCountScript } from "../../lib/scripts/logCount";
import { pinnedKnownHosts } from "../../lib/scripts/common";
import { consumerPreflightScript, problemsOf, sourcePreflightScript, storePreflightScript } from "../../lib/scripts/preflight";
import { sourceScripts } from "../../sources";
import { fileStoreScripts } from "../../stores/file";
import { FILE_STORE_PARTS, type FileStorePart, fileStorePath } from "../../stores/fileLayout";
import { AGENT_WRAPPER, HostAgent } from "../../provider/agent";
import { logCheckScript, writeAndReloadScript } from "../../provider/rollout";
import type { RolloutSpec } from "../../provider/types";
import { config, HOST_KEY } from "./harness";
import { nastyValue, nastyValues, prng } from "./seeded";

const SEED = 0x2023_0005;
const VALUES = nastyValues(SEED, 60);
const PLAIN = "plain-value";
const NONCE = "0".repeat(64);
const G = { generation: 2, secretName: "app-redis" };
const WRITES: WriteSpec[] = [
    { format: "yaml-key", key: "redis.password" },
    { format: "env-line", key: "REDIS_PASSWORD" },
    { format: "template", template: "[auth]\nsecret = {{secret}}\n" },
];

/** One field of one builder: its scripts for a value, and the strings it quotes that hold the value. */
interface Field {
    name: string;
    build: (v: string) => Record<string, string>;
    quoted?: (v: string) => string[];
    /** Fits a raw nasty value to what the field needs (a URL with {fingerprint}, a program name). */
    dress?: (v: string) => string;
}

const BASE = config();
const SOURCES: SourceConfig[] = [
    BASE.source,
    {
        kind: "postgres-role",
        host: "127.0.1.31",
        port: 5432,
        database: "app",
        group: "app_rw",
        loginPrefix: "app_g",
        initialLogin: "app_legacy",
        adminUser: "postgres",
        adminPasswordFile: "/etc/rotation/pg.pass",
    },
    {
        kind: "ssh-authorized-key",
        host: "127.0.1.40",
        port: 2222,
        user: "root",
        hostKey: HOST_KEY,
        privateKeyFile: "/root/.ssh/id_ed25519",
        authorizedKeysFile: "/home/app/.ssh/authorized_keys",
        loginUser: "app",
    },
    {
        kind: "http-token",
        createUrl: "https://api.test/tokens",
        deleteUrl: "https://api.test/tokens/{fingerprint}",
        testUrl: "https://api.test/whoami",
        adminTokenFile: "/etc/rotation/api.token",
        caFile: "/etc/rotation/ca.pem",
    },
    { kind: "command", grant: "/opt/rot/grant", revoke: "/opt/rot/revoke", withdraw: "/opt/rot/withdraw", test: "/opt/rot/test" },
];
/** Words a source field becomes besides itself. */
const DERIVED: Record<string, (v: string) => string[]> = {
    "redis-acl host": (v) => [`${v}:6379`],
    "postgres-role host": (v) => [`${v}:5432`],
    "postgres-role loginPrefix": (v) => [`${v}2`, `${v}1`],
    "ssh-authorized-key host": (v) => [`app@${v}`, `[${v}]:2222`],
    "ssh-authorized-key loginUser": (v) => [`${v}@127.0.1.40`],
    "ssh-authorized-key authorizedKeysFile": (v) => [`${v}.XXXXXX`],
    "http-token deleteUrl": (v) => [v.split("{fingerprint}").join("0".repeat(16))],
};
const scriptsOf = (s: ReturnType<typeof sourceScripts>) => ({ grant: s.grant, withdraw: s.withdraw, revoke: s.revoke, verify: s.verify });
/** The operator's own commands, run as written by design. */
const OPERATORS = new Set(["grant", "revoke", "withdraw"]);

function sourceFields(): Field[] {
    return SOURCES.flatMap((src) => {
        const kind = src.kind;
        const named = (name: string, f: Omit<Field, "name">): Field => ({ name: `${kind} ${name}`, ...f });
        const own = Object.keys(src)
            .filter((k) => k !== "kind" && !OPERATORS.has(k) && typeof (src as Record<string, unknown>)[k] === "string")
            .flatMap((k) => {
                const quoted = (v: string) => [v, ...(DERIVED[`${kind} ${k}`]?.(v) ?? [])];
                const dress = k === "deleteUrl" ? (v: string) => `https://api.test/${v}/{fingerprint}` : undefined;
                const withField = (v: string) => ({ ...src, [k]: v }) as SourceConfig;
                return [
                    named(`source.${k} (scripts)`, { build: (v) => scriptsOf(sourceScripts(withField(v), G, HOST_KEY)), quoted, dress }),
                    named(`source.${k} (pre-flight)`, {
                        build: (v) => ({ preflight: sourcePreflightScript({ ...BASE, source: withField(v) }) ?? "" }),
                        quoted,
                        dress,
                    }),
                ];
            });
        const secretWords: Record<string, (v: string) => string[]> = {
            "ssh-authorized-key": (v) => [`rotation:${v}:g2`],
            "http-token": (v) => [`http-token source of ${v}`, `${v}-g2`],
            command: (v) =>
                ["the new secret is rejected by", "the old secret is still accepted by"].map(
                    (s) => `command source of ${v}: ${s} the test command (source.test)`,
                ),
        };
        return [
            ...own,
            named("secret name", { build: (v) => scriptsOf(sourceScripts(src, { ...G, secretName: v }, HOST_KEY)), quoted: secretWords[kind] ?? (() => []) }),
            named("source host key", { build: (v) => scriptsOf(sourceScripts(src, G, v)) }),
        ];
    }).filter(used);
}

/** A field its builder reads (an SSH source's user and key file, say, make its target, not its scripts). */
function used(f: Field): boolean {
    const dress = f.dress ?? ((v: string) => v);
    return !isDeepStrictEqual(f.build(dress(PLAIN)), f.build(dress(`${PLAIN}-2`)));
}

function rolloutSpec(patch: Partial<RolloutSpec>): RolloutSpec {
    return {
        label: "app-redis → consumer web-1",
        target: { kind: "ssh", host: "h", port: 22, user: "root", hostKey: HOST_KEY, privateKeyFile: "/k" },
        health: { command: "true" },
        retries: 1,
        retryDelaySeconds: 0,
        timeoutSeconds: 5,
        generation: 2,
        configPath: "/etc/app/app.env",
        write: WRITES[1],
        reload: "true",
        logCheck: { path: "/var/log/app.log", pattern: "AUTH_FAILED", windowSeconds: 0 },
        ...patch,
    };
}
const rolloutScripts = (s: RolloutSpec) => ({ write: writeAndReloadScript(s, true), logCheck: logCheckScript(s.logCheck!, 7) });
/** Pre-flight draws a fresh nonce for its drift check; the same one on both sides of a comparison. */
const sameNonce = (s: string) => s.replace(/hexkey:[0-9a-f]{64}/g, `hexkey:${NONCE}`);
const storeFiles = (dir: string, name: string) => (Object.keys(FILE_STORE_PARTS) as FileStorePart[]).map((part) => fileStorePath(dir, name, part));

const FIELDS: Field[] = [
    ...WRITES.flatMap((w): Field[] => [
        { name: `drift check configPath (${w.format})`, build: (v) => ({ check: driftCheckScript(v, w, NONCE) }) },
        { name: `consumer pre-flight configPath (${w.format})`, build: (v) => ({ preflight: sameNonce(consumerPreflightScript(v, w, "true")) }) },
        ...(w.format === "template"
            ? []
            : [
                  { name: `drift check key (${w.format})`, build: (v: string) => ({ check: driftCheckScript("/etc/app.conf", { ...w, key: v }, NONCE) }) },
                  {
                      name: `consumer pre-flight key (${w.format})`,
                      build: (v: string) => ({ preflight: sameNonce(consumerPreflightScript("/etc/app.conf", { ...w, key: v }, "true")) }),
                  },
              ]),
    ]),
    // Only a plain program name is checked (a reload that starts otherwise is the operator's own shell).
    {
        name: "consumer pre-flight reload program",
        build: (v) => ({ preflight: sameNonce(consumerPreflightScript("/etc/app.conf", WRITES[0], `${v} --now 'a b'`)) }),
        dress: (v) => `-${v.replace(/[^A-Za-z0-9_./+-]/g, "")}+x`,
    },
    {
        name: "store pre-flight store.dir",
        build: (v) => ({ preflight: storePreflightScript({ ...BASE, store: { kind: "file", dir: v } })! }),
        quoted: (v) => [v, `${v}/app-redis`],
    },
    {
        name: "store pre-flight secret name",
        build: (v) => ({ preflight: storePreflightScript({ ...BASE, secret: { ...BASE.secret, name: v } } as RotationConfig)! }),
        quoted: (v) => [`/var/lib/rotation/store/${v}`],
    },
    { name: "file store dir", build: (v) => fileStoreScripts(v, "app-redis", 2), quoted: (v) => [v, ...storeFiles(v, "app-redis")] },
    // The refusals name the commands that get forward, each one shell word holding the secret's name.
    {
        name: "file store secret name",
        build: (v) => fileStoreScripts("/srv/store", v, 2),
        quoted: (v) => [...storeFiles("/srv/store", v), ...["rollback", "start"].map((c) => `bin/rotate ${c} --stack <stack> --secret ${v} --yes`)],
    },
    ...sourceFields(),
    { name: "pinned known_hosts host (port 22)", build: (v) => ({ kh: pinnedKnownHosts("kh", v, 22, HOST_KEY) }) },
    { name: "pinned known_hosts host (port 2222)", build: (v) => ({ kh: pinnedKnownHosts("kh", v, 2222, HOST_KEY) }), quoted: (v) => [`[${v}]:2222`] },
    { name: "pinned known_hosts host key", build: (v) => ({ kh: pinnedKnownHosts("kh", "h", 22, v) }) },
    { name: "rollout configPath", build: (v) => rolloutScripts(rolloutSpec({ configPath: v })) },
    { name: "rollout health command", build: (v) => rolloutScripts(rolloutSpec({ health: { command: v } })) },
    { name: "rollout logCheck.path", build: (v) => rolloutScripts(rolloutSpec({ logCheck: { path: v, pattern: "AUTH_FAILED", windowSeconds: 0 } })) },
    { name: "rollout logCheck.pattern", build: (v) => rolloutScripts(rolloutSpec({ logCheck: { path: "/var/log/app.log", pattern: v, windowSeconds: 0 } })) },
    { name: "after-revocation log size path", build: (v) => ({ size: logAnchorScript({ path: v }) }) },
    { name: "after-revocation log count path", build: (v) => ({ count: logCountScript({ path: v, pattern: "AUTH_FAILED" }, 7) }) },
    { name: "after-revocation log count pattern", build: (v) => ({ count: logCountScript({ path: "/var/log/app.log", pattern: v }, 7) }) },
    // A unit's journal (lib/scripts/journal.ts): the unit is checked by the schema, and quoted all the same.
    {
        name: "rollout logCheck.unit",
        build: (v) => rolloutScripts(rolloutSpec({ logCheck: { unit: v, pattern: "AUTH_FAILED", priority: "err", windowSeconds: 0 } })),
        quoted: (v) => [v, `the journal of unit ${v} (priority err or above)`],
    },
    {
        name: "rollout logCheck.pattern (journal)",
        build: (v) => rolloutScripts(rolloutSpec({ logCheck: { unit: "app1", pattern: v, windowSeconds: 0 } })),
    },
    {
        name: "consumer pre-flight logCheck.unit",
        build: (v) => ({ preflight: sameNonce(consumerPreflightScript("/etc/app.conf", WRITES[0], "true", { unit: v })) }),
        quoted: (v) => [`the journal of unit ${v}`],
    },
    { name: "after-revocation journal cursor unit", build: (v) => ({ anchor: logAnchorScript({ unit: v, priority: "err" }) }) },
    { name: "after-revocation journal count unit", build: (v) => ({ count: logCountScript({ unit: v }, "s=1;i=2") }) },
    { name: "after-revocation journal count pattern", build: (v) => ({ count: logCountScript({ unit: "app1", pattern: v }, "s=1;i=2") }) },
    { name: "after-revocation journal count cursor", build: (v) => ({ count: logCountScript({ unit: "app1", pattern: "AUTH_FAILED" }, v) }) },
    { name: "generator comment (ssh-key)", build: (v) => ({ generator: defaultGeneratorCommand("ssh-key", 32, v) }) },
];

/** Where two texts first differ, with a little context, for the failure message. */
function firstDifference(got: string, want: string): string {
    let i = 0;
    while (i < got.length && got[i] === want[i]) i++;
    return `at ${i}: got ${JSON.stringify(got.slice(Math.max(0, i - 40), i + 40))}, want ${JSON.stringify(want.slice(Math.max(0, i - 40), i + 40))}`;
}

for (const field of FIELDS) {
    test(`(a) ${field.name}: the value enters only as shq() of it, verbatim`, () => {
        const dress = field.dress ?? ((v: string) => v);
        const quoted = field.quoted ?? ((v: string) => [v]);
        const plain = field.build(dress(PLAIN));
        // A short value may quote to a word the script holds anyway ('"' opens a case pattern): mark it.
        const clashes = (v: string) => quoted(v).some((q) => Object.values(plain).some((t) => t.includes(shq(q))));
        VALUES.forEach((raw, i) => {
            const v = clashes(dress(raw)) ? dress(`${raw}⁂`) : dress(raw);
            const built = field.build(v);
            assert.notDeepEqual(built, plain, `${field.name} is not used by its builder: this field checks nothing`);
            // Longest first: a word may hold a shorter one's value (dir/name and dir).
            const swaps = quoted(v)
                .map((q, k) => [shq(q), shq(quoted(dress(PLAIN))[k])])
                .sort((a, b) => b[0].length - a[0].length);
            for (const [script, text] of Object.entries(built)) {
                const back = swaps.reduce((t, [from, to]) => t.split(from).join(to), text);
                assert.ok(
                    back === plain[script],
                    `${field.name} = ${JSON.stringify(v)} (case ${i}, seed ${SEED}): the ${script} script holds it other than as shq() of ${quoted(v)
                        .map((q) => JSON.stringify(q))
                        .join(" or ")}, ${firstDifference(back, plain[script])}`,
                );
            }
        });
    });
}

// ---- (b) pre-flight and the drift check, run with bash on a config at a nasty path ----

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "script-quoting-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const SECRET = `s3cr'et "$(echo PWNED)" \`x\` \\ é日本🔑`;
const BASES: Record<WriteSpec["format"], string> = { "yaml-key": 'redis:\n  password: "old"\n', "env-line": "A=1\nREDIS_PASSWORD=old\n", template: "" };
const NO_KEY: Record<WriteSpec["format"], string> = { "yaml-key": "redis:\n  host: x\n", "env-line": "A=1\n", template: "" };

/** Config paths: the issue's, a quote and non-ASCII, and seeded nasty names in a nasty directory. */
function configPaths(): string[] {
    const next = prng(SEED + 1);
    const dir = path.join(tmp, `d'ir\n${nastyValue(next)}`);
    fs.mkdirSync(dir);
    return [
        path.join(tmp, "nl\nx.yaml"),
        path.join(tmp, `it's é日本🔑 "x".conf`),
        path.join(tmp, "-n"),
        ...Array.from({ length: 4 }, () => path.join(dir, nastyValue(next))),
    ];
}
const PATHS = configPaths();

function bash(script: string): string {
    const r = spawnSync("bash", ["-c", script], { encoding: "utf8", env: { PATH: process.env.PATH, LC_ALL: "C.UTF-8" } });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
}
const preflightOf = (f: string, w: WriteSpec) => problemsOf(bash(consumerPreflightScript(f, w, "true")));
function driftOf(f: string, w: WriteSpec) {
    const nonce = freshNonce();
    return holding(bash(driftCheckScript(f, w, nonce)), { current: hmacOf(nonce, hmacInput(w, SECRET)) });
}

for (const w of WRITES) {
    test(`(b) ${w.format}: pre-flight and the drift check read a config at a path with a newline, quotes, non-ASCII; absent, they name exactly that path`, () => {
        PATHS.forEach((f, i) => {
            const at = `path ${JSON.stringify(f)} (case ${i}, seed ${SEED + 1})`;
            fs.writeFileSync(f, rewriteConfig(w, BASES[w.format], SECRET));
            assert.deepEqual(preflightOf(f, w), [], at);
            assert.deepEqual(driftOf(f, w), { holds: "current" }, at);
            if (w.format !== "template") {
                fs.writeFileSync(f, NO_KEY[w.format]);
                assert.deepEqual(preflightOf(f, w), [w.format === "yaml-key" ? `no key redis.password in ${f}` : `no REDIS_PASSWORD= line in ${f}`], at);
            }
            fs.rmSync(f);
            assert.deepEqual(preflightOf(f, w), [`no config file ${f}`], at);
            assert.deepEqual(driftOf(f, w), { holds: "missing", detail: `no file ${f}` }, at);
        });
    });
}

test("(b) the gate's one script per host answers for every config path as the drift check of each does, its log anchor beside it, held or absent", () => {
    const log = path.join(path.dirname(PATHS[0]), "app log 'é'");
    fs.writeFileSync(log, "twelve bytes");
    const items = WRITES.flatMap((w) => PATHS.map((f) => ({ configPath: f, write: w, log: { path: log } })));
    const ask = () => {
        const nonce = freshNonce();
        const boundary = `ANSWER-${nonce.slice(0, 16)}`;
        const answers = splitDriftBatch(bash(driftBatchScript(items, nonce, boundary)), items.length, boundary);
        return answers.map((a, i) => {
            assert.ok(a !== undefined, `an answer for ${JSON.stringify(items[i].configPath)}`);
            assert.match(a, /^LOGSIZE 12$/m, "the log's anchor, once per file however many consumers log to it");
            return holding(a, { current: hmacOf(nonce, hmacInput(items[i].write, SECRET)) });
        });
    };
    // One writer's files at a time (the paths are shared): its answers, then the others' as absent.
    for (const w of WRITES) {
        for (const f of PATHS) fs.writeFileSync(f, rewriteConfig(w, BASES[w.format], SECRET));
        const verdicts = ask();
        items.forEach((it, i) => {
            if (it.write === w) assert.deepEqual(verdicts[i], { holds: "current" }, `${w.format} at ${JSON.stringify(it.configPath)}`);
            else assert.notEqual(verdicts[i].holds, "current", `${it.write.format} reading a ${w.format} file`);
        });
        for (const f of PATHS) fs.rmSync(f);
    }
    ask().forEach((v, i) => assert.deepEqual(v, { holds: "missing", detail: `no file ${items[i].configPath}` }));
});

test("(b) yaml-key: a key with a backslash, quote, blank and non-ASCII reaches awk unchanged", () => {
    const key = `a\\nb 'q' é`;
    const w: WriteSpec = { format: "yaml-key", key };
    const f = PATHS[1];
    fs.writeFileSync(f, `"${key}": "old"\n`);
    assert.deepEqual(preflightOf(f, w), [], "awk -v would read \\n as a newline");
    fs.writeFileSync(f, `other: "old"\n`);
    assert.deepEqual(preflightOf(f, w), [`no key ${key} in ${f}`]);
});

test("(b) through the agent that runs jobs on a host (base64 frames, bash -c), the pre-flight of a nasty path is exact", async () => {
    const agent = new HostAgent(() => spawn("bash", ["-c", AGENT_WRAPPER], { stdio: ["pipe", "pipe", "pipe"] }));
    try {
        for (const f of PATHS.slice(0, 4)) {
            fs.writeFileSync(f, rewriteConfig(WRITES[0], BASES["yaml-key"], SECRET));
            const present = await agent.run({ script: consumerPreflightScript(f, WRITES[0], "true"), stdin: "", timeoutSeconds: 20 });
            fs.rmSync(f);
            const absent = await agent.run({ script: consumerPreflightScript(f, WRITES[0], "true"), stdin: "", timeoutSeconds: 20 });
            assert.deepEqual(
                [present.code, problemsOf(present.stdout), absent.code, problemsOf(absent.stdout)],
                [0, [], 0, [`no config file ${f}`]],
                JSON.stringify(f),
            );
        }
    } finally {
        agent.close();
    }
});
