// The generated bash scripts: every one is valid bash, and a hostile value in
// any config field the schema accepts enters a script only single-quoted.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { defaultGeneratorCommand } from "../../generators/command";
import { parseEnvironment, secretRotation, type HostConsumerConfig, type RotationConfig } from "../../lib/config";
import { ConfigError } from "../../lib/errors";
import { shq } from "../../lib/quote";
import { logCheckScript, writeAndReloadScript } from "../../provider/rollout";
import { sourceScripts } from "../../sources";
import { fileStoreScripts } from "../../stores/file";
import { environmentOf } from "../../lab/driver";
import { HOST_KEY, rawConfig } from "./harness";

type Raw = Record<string, any>;

/**
 * A variant (one secret in the tests' flat form) as the components get it:
 * validated as a stack's rotation:hosts and rotation:secrets, hosts expanded.
 */
function rotationOf(raw: Raw): RotationConfig {
    return secretRotation(parseEnvironment("unit", environmentOf(raw)), raw.secret.name);
}
const secretOf = (patch: Raw) => ({ ...(rawConfig().secret as Raw), ...patch });
const userKeys = (r: Raw) => r.consumers.forEach((c: Raw) => (c.write.userKey = "redis.user"));

/** One valid config per source kind and per store, write format and health variant. */
const VARIANTS: Record<string, () => Raw> = {
    "redis-acl": () => rawConfig(),
    "postgres-role": () => {
        const r = rawConfig({
            source: {
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
        });
        userKeys(r);
        return r;
    },
    "ssh-authorized-key": () =>
        rawConfig({
            secret: secretOf({ type: "ssh-key", generator: { kind: "command" } }),
            source: {
                kind: "ssh-authorized-key",
                host: "127.0.1.40",
                port: 2222,
                user: "root",
                hostKey: HOST_KEY,
                privateKeyFile: "/root/.ssh/id_ed25519",
                authorizedKeysFile: "/home/app/.ssh/authorized_keys",
                loginUser: "app",
            },
        }),
    "http-token": () =>
        rawConfig({
            secret: secretOf({ type: "api-token", generator: { kind: "command", command: "openssl rand -hex 24" } }),
            source: {
                kind: "http-token",
                createUrl: "https://api.test/tokens",
                deleteUrl: "https://api.test/tokens/{fingerprint}",
                testUrl: "https://api.test/whoami",
                adminTokenFile: "/etc/rotation/api-admin.token",
            },
        }),
    command: () =>
        rawConfig({ source: { kind: "command", grant: "/opt/rot/grant", revoke: "/opt/rot/revoke", withdraw: "/opt/rot/withdraw", test: "/opt/rot/test" } }),
    vault: () => rawConfig({ store: { kind: "vault", mount: "kv", path: "apps/redis" } }),
    "env-line + health command + hostKeyFile": () => {
        const r = rawConfig() as Raw;
        Object.assign(r.consumers[0], {
            write: { format: "env-line", key: "REDIS_PASSWORD" },
            health: { command: "systemctl is-active app" },
            hostKeyFile: "keys/web-1.pub",
        });
        delete r.consumers[0].hostKey;
        return r;
    },
    template: () => {
        const r = rawConfig() as Raw;
        r.consumers[0].write = { format: "template", template: "password={{secret}}\n" };
        return r;
    },
};

/** Every script generated for a config, by name; the operator's own commands are listed apart. */
function scriptsOf(cfg: RotationConfig): { generated: Record<string, string>; operators: Record<string, string> } {
    const generated: Record<string, string> = {};
    const operators: Record<string, string> = {};
    // Generation 1 too, whose previous login is postgres' initialLogin.
    for (const generation of [cfg.generation, 1]) {
        const hostKey = "hostKey" in cfg.source && cfg.source.hostKey ? cfg.source.hostKey : HOST_KEY;
        const s = sourceScripts(cfg.source, { generation, secretName: cfg.secret.name }, hostKey);
        for (const k of ["grant", "withdraw", "revoke", "verify"] as const) {
            // A command source's grant/withdraw/revoke ARE the operator's commands, run as-is by design.
            (cfg.source.kind === "command" && k !== "verify" ? operators : generated)[`source.${k}@g${generation}`] = s[k];
        }
        if (cfg.store.kind === "file") {
            for (const [k, v] of Object.entries(fileStoreScripts(cfg.store.dir, cfg.secret.name, generation))) generated[`store.${k}@g${generation}`] = v;
        }
        for (const type of ["password", "api-token", "ssh-key"]) {
            generated[`generator.${type}@g${generation}`] = defaultGeneratorCommand(
                type,
                "length" in cfg.secret.generator ? cfg.secret.generator.length : 32,
                `rotation:${cfg.secret.name}:g${generation}`,
            );
        }
    }
    for (const c of cfg.consumers as HostConsumerConfig[]) {
        // A health command runs on the host as the operator wrote it (like reload);
        // the write-and-reload script is ours around the operator's reload.
        if ("command" in c.health) operators[`consumer.${c.name}.health`] = c.health.command;
        const spec = {
            label: c.name,
            target: { kind: "ssh" as const, host: c.host, port: c.port, user: c.user, hostKey: HOST_KEY, privateKeyFile: c.privateKeyFile },
            health: c.health,
            retries: c.retries,
            retryDelaySeconds: c.retryDelaySeconds,
            timeoutSeconds: c.timeoutSeconds,
            generation: 2,
            configPath: c.configPath,
            write: c.write,
            reload: "true",
            ...(c.logCheck ? { logCheck: c.logCheck } : {}),
        };
        generated[`consumer.${c.name}.writeAndReload`] = writeAndReloadScript(spec, true);
        if (c.logCheck) generated[`consumer.${c.name}.logCheck`] = logCheckScript(c.logCheck, 123);
        operators[`consumer.${c.name}.reload`] = c.reload;
    }
    return { generated, operators };
}

function bashSyntax(script: string): { ok: boolean; stderr: string } {
    const r = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
    return { ok: r.status === 0, stderr: r.stderr };
}

for (const [variant, raw] of Object.entries(VARIANTS)) {
    test(`bash -n accepts every generated script: ${variant}`, () => {
        const { generated } = scriptsOf(rotationOf(raw()));
        assert.ok(Object.keys(generated).length >= 8);
        // One bash -n for all (each as a function body); on failure, find the culprit.
        if (
            bashSyntax(
                Object.values(generated)
                    .map((text, i) => `f${i}() {\n${text}\n}\n`)
                    .join(""),
            ).ok
        )
            return;
        for (const [name, script] of Object.entries(generated)) {
            const { ok, stderr } = bashSyntax(script);
            assert.ok(ok, `${name} is not valid bash: ${stderr}\n${script}`);
        }
        assert.fail("the scripts are valid one by one but not together");
    });
}

test("bash -n rejects a broken script (the syntax check can fail)", () => {
    assert.equal(bashSyntax("echo 'unterminated\n").ok, false);
    assert.equal(bashSyntax("if true; then echo x\n").ok, false);
});

/**
 * The character ranges of a bash script that are literal text: inside single
 * quotes, including shq()'s escaped quotes between them ('a'\''b'). Tracks
 * double quotes, backslash escapes, $( ) and backticks (where single quotes
 * count again) and comments. A value spliced into a script is safe exactly
 * when every occurrence lies inside one such range, whether it is shq(value)
 * itself or shq() of a longer string (e.g. `${dir}/${name}`).
 */
function singleQuotedRanges(script: string): [number, number][] {
    const ranges: [number, number][] = [];
    const stack: ("dq" | "sub" | "bt")[] = [];
    const depth: number[] = [];
    let i = 0;
    const wordStart = (j: number) => j === 0 || /[\s;&|(]/.test(script[j - 1]);
    while (i < script.length) {
        const ch = script[i];
        const top = stack[stack.length - 1];
        if (ch === "\\") i += 2;
        else if (top === "dq") {
            if (ch === '"') stack.pop();
            else if (script.startsWith("$(", i)) stack.push("sub"), depth.push(0), i++;
            else if (ch === "`") stack.push("bt");
            i++;
        } else if (ch === "'") {
            // One literal run, as shq() writes it: 'a'\''b' (quoted segments joined by \' escapes).
            let end = script.indexOf("'", i + 1);
            assert.ok(end > 0, `unterminated single quote at ${i}`);
            while (script.startsWith("\\''", end + 1)) {
                end = script.indexOf("'", end + 4);
                assert.ok(end > 0, `unterminated single quote at ${i}`);
            }
            ranges.push([i + 1, end]);
            i = end + 1;
        } else if (ch === '"') stack.push("dq"), i++;
        else if (ch === "`" && top === "bt") stack.pop(), i++;
        else if (ch === "`") stack.push("bt"), i++;
        else if (script.startsWith("$(", i)) stack.push("sub"), depth.push(0), (i += 2);
        else if (ch === "(" && top === "sub") depth[depth.length - 1]++, i++;
        else if (ch === ")" && top === "sub") {
            if (depth[depth.length - 1]-- === 0) stack.pop(), depth.pop();
            i++;
        } else if (ch === "#" && wordStart(i)) i = script.includes("\n", i) ? script.indexOf("\n", i) : script.length;
        else i++;
    }
    assert.deepEqual(stack, [], "the script's quotes and substitutions are balanced");
    return ranges;
}

test("singleQuotedRanges tells quoted from unquoted text", () => {
    const s = `a ${shq("v'1")} "b 'x' $(c 'y')" # 'z'\nd`;
    const quoted = singleQuotedRanges(s).map(([a, b]) => s.slice(a, b));
    assert.deepEqual(quoted, ["v'\\''1", "y"]);
});

/** Positions where `value` occurs in `script` but not wholly inside single quotes. */
function unquotedOccurrences(script: string, value: string): number[] {
    if (!script.includes(value)) return [];
    const ranges = singleQuotedRanges(script);
    const bad: number[] = [];
    for (let i = script.indexOf(value); i >= 0; i = script.indexOf(value, i + 1)) {
        if (!ranges.some(([a, b]) => a <= i && i + value.length <= b)) bad.push(i);
    }
    return bad;
}

test("the quoting check flags a value spliced in raw or double-quoted", () => {
    const v = "$(touch /tmp/PWNED)";
    assert.deepEqual(unquotedOccurrences(`echo ${shq(v)} ${shq(`/srv${v}/x`)}`, v), []);
    assert.equal(unquotedOccurrences(`echo "${v}"`, v).length, 1);
    assert.equal(unquotedOccurrences(`echo ${v}`, v).length, 1);
    assert.equal(unquotedOccurrences(`echo ${shq("x")}${v}`, v).length, 1, "right after the quote closes");
});

// Distinctive enough not to occur in the scripts' own text (a bare \' does, in sql_lit).
const HOSTILE = ["x'; touch /tmp/PWNED #", "$(touch /tmp/PWNED)", "`id`", 'a"b', "a\nb", "a b;c|d&e", "q\\'Z\\"];
/** Each hostile value also dressed as a path, a URL and a delete URL, so format checks do not hide it. */
const DRESSED = HOSTILE.flatMap((hostile) =>
    [hostile, `/srv/${hostile}`, `https://api.test/${hostile}`, `https://api.test/{fingerprint}/${hostile}`].map((value) => ({ hostile, value })),
);

/** Every string field of a variant, as a path into the raw config; consumer fields on consumers[0]. */
function stringFields(raw: Raw, prefix: (string | number)[] = []): (string | number)[][] {
    return Object.entries(raw).flatMap(([k, v]) => {
        const key = Array.isArray(raw) ? Number(k) : k;
        if (Array.isArray(raw) && key !== 0) return [];
        if (typeof v === "string") return [[...prefix, key]];
        return typeof v === "object" && v !== null ? stringFields(v, [...prefix, key]) : [];
    });
}

/** The operator's own commands: run as-is by design, so they are not quoted and not checked here. */
const OPERATOR_COMMANDS = new Set([
    "consumers.0.reload",
    "consumers.0.health.command",
    "source.grant",
    "source.revoke",
    "source.withdraw",
    "secret.generator.command",
]);

test("a hostile value in any accepted config field enters the generated scripts only single-quoted", (t) => {
    const accepted = new Map<string, string>();
    const checked = new Set<string>();
    for (const [variant, make] of Object.entries(VARIANTS)) {
        for (const field of stringFields(make())) {
            const path = field.join(".");
            if (OPERATOR_COMMANDS.has(path)) continue;
            // Source fields differ by kind; the others are the same in every variant.
            const name = path.startsWith("source.") ? `${make().source.kind} ${path}` : path;
            if (checked.has(name)) continue;
            checked.add(name);
            const baseline = scriptsOf(rotationOf(make())).generated;
            const changed: string[] = [];
            const syntaxChecked = new Set<string>();
            for (const { hostile, value } of DRESSED) {
                const raw = make();
                const parent = field.slice(0, -1).reduce((o: Raw, k) => o[k], raw);
                parent[field[field.length - 1]] = value;
                let cfg: RotationConfig;
                try {
                    cfg = rotationOf(raw);
                } catch (e) {
                    if (e instanceof ConfigError) continue;
                    throw e;
                }
                const { generated } = scriptsOf(cfg);
                let where = "no script";
                for (const [script, text] of Object.entries(generated)) {
                    assert.deepEqual(
                        unquotedOccurrences(text, value),
                        [],
                        `${variant}: ${name} = ${JSON.stringify(value)} appears unquoted in ${script}:\n${text}`,
                    );
                    if (text.includes(shq(value)) || text.includes(shq(value).slice(1, -1))) where = "scripts, quoted";
                }
                // bash -n once per hostile value (its first accepted dress) keeps this fast.
                if (!syntaxChecked.has(hostile)) {
                    syntaxChecked.add(hostile);
                    for (const [script, text] of Object.entries(generated)) if (text !== baseline[script]) changed.push(text);
                }
                if (!accepted.has(name) || where !== "no script") accepted.set(name, `${JSON.stringify(value)} (in ${where})`);
            }
            // One bash -n for every script the field's values changed, each as its own function body.
            const { ok, stderr } = bashSyntax(changed.map((text, i) => `f${i}() {\n${text}\n}\n`).join(""));
            assert.ok(ok, `${variant}: hostile values of ${name} break a script's syntax: ${stderr}`);
        }
    }
    t.diagnostic(`checked ${checked.size} string fields; excluded as operator commands: ${[...OPERATOR_COMMANDS].join(", ")}`);
    for (const [name, example] of accepted) t.diagnostic(`accepts hostile values: ${name}, e.g. ${example}`);
    for (const name of [
        "store.dir",
        "consumers.0.logCheck.pattern",
        "consumers.0.logCheck.path",
        "ssh-authorized-key source.authorizedKeysFile",
        "command source.test",
        "http-token source.deleteUrl",
    ]) {
        assert.ok(accepted.has(name), `${name} accepts a hostile value (else this test checks nothing there)`);
    }
});
