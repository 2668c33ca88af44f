// The consumer config rewrites: only the targeted value changes, every other
// byte stays, and any secret survives the round trip exactly.
import assert from "node:assert/strict";
import { test } from "node:test";
import yaml from "js-yaml";
import { WRITERS, rewriteConfig, writeSchema, writerOf, type WriteSpec } from "../../writers";
import { setEnvLine } from "../../writers/envLine";
import { renderTemplate } from "../../writers/template";
import { setYamlKey } from "../../writers/yamlKey";

/** Secrets that break naive quoting in YAML, shells or regex replacement. */
const HOSTILE = [
    "plain-Secret-123",
    "it's",
    'say "hi"',
    `both ' and "`,
    "$(touch /tmp/pwned)",
    "`id`",
    "a;b",
    "a|b",
    "a&b",
    "back\\slash",
    "\\n literally",
    "#not-a-comment",
    "a #comment?",
    "key: value",
    ": ",
    " leading",
    "trailing ",
    "  ",
    "tab\there",
    "line1\nline2",
    "cr\rlf",
    "é",
    "日本",
    "🔑🔒",
    "\u2028",
    "\u2029",
    "\u0085",
    "\ufeff",
    "\x7f",
    "\x01\x1b[31m",
    "null",
    "~",
    "true",
    "no",
    "1e3",
    "0x1F",
    ".inf",
    "- x",
    "*alias",
    "&anchor",
    "!tag",
    "!!str",
    "%",
    "@",
    "{a: b}",
    "[1]",
    "|",
    ">",
    "'",
    '"',
    "\\",
    "$&",
    "$1",
    "$'",
    "{{secret}}",
    "",
];

const DOC = [
    "# Application config (managed by hand; rotation touches one value)",
    "redis:",
    "  host: 127.0.0.1   # the cache",
    '  password: "old-secret"  # rotated by secret-rotation',
    "  user: app",
    "db:",
    "  password: keep-me # not the target",
    "password: top-level-stays",
    "",
].join("\n");

const expectedDoc = (value: string) => DOC.replace('  password: "old-secret"  # rotated', `  password: ${value}  # rotated`);

test("yaml-key replaces only the target value and keeps comments, other keys and indentation", () => {
    assert.equal(setYamlKey(DOC, "redis.password", "n3w"), expectedDoc('"n3w"'));
});

test("yaml-key keeps a trailing comment after a value that contains ' #' or quotes", () => {
    const doc = 'redis:\n  password: "a # b"   # keep me\n';
    assert.equal(setYamlKey(doc, "redis.password", "x"), 'redis:\n  password: "x"   # keep me\n');
    assert.equal(setYamlKey("a: don't # it's mine\n", "a", "x"), 'a: "x" # it\'s mine\n');
    assert.equal(setYamlKey("a: plain#not-comment\n", "a", "x"), 'a: "x"\n');
});

test("yaml-key keeps CRLF line endings and the trailing comment on a CRLF line", () => {
    const crlf = DOC.replace(/\n/g, "\r\n");
    assert.equal(setYamlKey(crlf, "redis.password", "n3w"), expectedDoc('"n3w"').replace(/\n/g, "\r\n"));
});

test("yaml-key follows nested paths (a.b.c) and only direct children", () => {
    const doc = "a:\n  x:\n    c: deeper\n  b:\n    other:\n      c: deeper-still\n    c: target\n  c: sibling\nc: top\n";
    assert.equal(setYamlKey(doc, "a.b.c", "N"), doc.replace("    c: target", '    c: "N"'));
    assert.equal(setYamlKey(doc, "a.c", "N"), doc.replace("  c: sibling", '  c: "N"'));
    assert.equal(setYamlKey(doc, "c", "N"), doc.replace("c: top", 'c: "N"'));
});

test("yaml-key does not touch a key of the same name in another section", () => {
    const out = setYamlKey(DOC, "db.password", "n3w");
    assert.equal(out, DOC.replace("  password: keep-me # not", '  password: "n3w" # not'));
    const parsed = yaml.load(out) as Record<string, Record<string, string>>;
    assert.equal(parsed.redis.password, "old-secret");
    assert.equal(parsed.password as unknown as string, "top-level-stays");
});

test("yaml-key reports a missing key, a block scalar or a mapping by name", () => {
    assert.throws(() => setYamlKey(DOC, "redis.pasword", "x"), { message: 'YAML key "redis.pasword" not found (section "redis" ends at line 6)' });
    assert.throws(() => setYamlKey(DOC, "cache.password", "x"), { message: 'YAML key "cache.password" not found' });
    assert.throws(() => setYamlKey("redis:\n  password: |\n    old\n", "redis.password", "x"), {
        message: 'YAML key "redis.password" holds a block scalar, which this writer does not replace',
    });
    assert.throws(() => setYamlKey("redis:\n  password:\n    nested: 1\n", "redis.password", "x"), {
        message: 'YAML key "redis.password" holds a mapping or list, not a single value',
    });
});

test("yaml-key round trip: js-yaml reads back exactly every hostile secret", () => {
    for (const s of HOSTILE) {
        const out = setYamlKey(DOC, "redis.password", s);
        const parsed = yaml.load(out) as Record<string, any>;
        assert.equal(parsed.redis.password, s, `secret ${JSON.stringify(s)} written as ${JSON.stringify(out.split("\n")[3])}`);
        assert.equal(parsed.redis.host, "127.0.0.1");
        assert.equal(parsed.db.password, "keep-me");
        assert.equal(out.split("\n").length, DOC.split("\n").length, `${JSON.stringify(s)} stays on one line`);
    }
});

test("yaml-key with userKey writes user and password (rewriteConfig)", () => {
    const out = rewriteConfig({ format: "yaml-key", key: "redis.password", userKey: "redis.user" }, DOC, "p'w", "app_g3");
    const parsed = yaml.load(out) as Record<string, any>;
    assert.deepEqual(parsed.redis, { host: "127.0.0.1", password: "p'w", user: "app_g3" });
});

const ENV = "# service env\nexport DB_PASSWORD=old\nDB_PASSWORD2=keep-me\nOTHER_DB_PASSWORD=keep-too\nDB_USER=app\n";

test("env-line replaces only KEY=, keeps `export` and keys sharing its prefix", () => {
    assert.equal(setEnvLine(ENV, "DB_PASSWORD", "n3w"), ENV.replace("export DB_PASSWORD=old", "export DB_PASSWORD=n3w"));
    assert.equal(setEnvLine(ENV, "DB_USER", "app_g2"), ENV.replace("DB_USER=app", "DB_USER=app_g2"));
});

test("env-line keeps CRLF line endings", () => {
    const crlf = ENV.replace(/\n/g, "\r\n");
    assert.equal(setEnvLine(crlf, "DB_PASSWORD", "n3w"), crlf.replace("DB_PASSWORD=old", "DB_PASSWORD=n3w"));
});

test("env-line writes every hostile secret without a line break as the exact raw value", () => {
    for (const s of HOSTILE.filter((v) => !/[\r\n]/.test(v))) {
        const out = setEnvLine(ENV, "DB_PASSWORD", s);
        const line = out.split("\n").find((l) => l.startsWith("export DB_PASSWORD="));
        assert.equal(line, `export DB_PASSWORD=${s}`, JSON.stringify(s));
        assert.equal(out.replace(`export DB_PASSWORD=${s}\n`, "export DB_PASSWORD=old\n"), ENV);
    }
});

test("env-line refuses a line break in the value without repeating the value", () => {
    for (const s of ["line1\nline2", "cr\rlf"]) {
        assert.throws(() => setEnvLine(ENV, "DB_PASSWORD", s), {
            message: "the value for DB_PASSWORD contains a line break, which a KEY=value line cannot hold",
        });
    }
    assert.throws(() => setEnvLine(ENV, "DB_PASS", "x"), { message: "no DB_PASS= line found" });
});

test("template replaces {{secret}} and {{user}} everywhere and nothing else", () => {
    const template = "url=postgres://{{user}}:{{secret}}@db/app\n# {{user}} {{secret}}\nliteral={{ secret }} {x} {{other}} ${HOME}\n";
    assert.equal(
        renderTemplate(template, "S3cr3t", "app_g2"),
        "url=postgres://app_g2:S3cr3t@db/app\n# app_g2 S3cr3t\nliteral={{ secret }} {x} {{other}} ${HOME}\n",
    );
    assert.equal(renderTemplate("p={{secret}} u={{user}}", "S"), "p=S u={{user}}", "no user: {{user}} stays");
});

test("template does not interpret $-patterns or placeholders inside the secret or user", () => {
    for (const s of ["$&", "$1", "$$", "$'", "$`", "$<name>", "{{user}}", "{{secret}}"]) {
        assert.equal(renderTemplate("a={{secret}};b={{secret}}", s), `a=${s};b=${s}`, JSON.stringify(s));
        assert.equal(renderTemplate("p={{secret}} u={{user}}", s, "$&"), `p=${s} u=$&`, JSON.stringify(s));
    }
    assert.equal(rewriteConfig({ format: "template", template: "x={{secret}}" }, "ignored current content", "$1"), "x=$1");
});

test("the registry: one writer per module, in the order the config's error lists them; an unknown format is named", () => {
    assert.deepEqual(
        WRITERS.map((w) => w.format),
        ["yaml-key", "env-line", "template"],
    );
    assert.deepEqual(
        writeSchema.options.map((o) => o.shape.format.value),
        ["yaml-key", "env-line", "template"],
        "the schema's members are the registry's, in its order",
    );
    assert.equal(writerOf("env-line"), WRITERS[1]);
    assert.throws(() => writerOf("toml"), { message: 'unknown format "toml": must be one of "yaml-key", "env-line", "template"' });
});

test("which writers write a per-generation login, and what to change when one must", () => {
    const cases: { spec: WriteSpec; writes: boolean; fields: string[]; how: string }[] = [
        { spec: { format: "yaml-key", key: "db.password", userKey: "db.user" }, writes: true, fields: ["userKey"], how: "set userKey" },
        { spec: { format: "yaml-key", key: "db.password" }, writes: false, fields: [], how: "set userKey" },
        { spec: { format: "env-line", key: "PGPASSWORD", userKey: "PGUSER" }, writes: true, fields: ["userKey"], how: "set userKey" },
        { spec: { format: "env-line", key: "PGPASSWORD" }, writes: false, fields: [], how: "set userKey" },
        { spec: { format: "template", template: "user={{user}}\npassword={{secret}}\n" }, writes: true, fields: [], how: "the template must contain {{user}}" },
        { spec: { format: "template", template: "password={{secret}}\n" }, writes: false, fields: [], how: "the template must contain {{user}}" },
    ];
    for (const { spec, writes, fields, how } of cases) {
        const w = writerOf(spec.format);
        assert.equal(w.writesUser(spec), writes, JSON.stringify(spec));
        assert.deepEqual(w.userFields(spec), fields, JSON.stringify(spec));
        assert.equal(w.howToWriteUser, how);
    }
});

test("what the drift check HMACs: a key's value, or a template's whole rendered file", () => {
    assert.equal(writerOf("yaml-key").checked({ format: "yaml-key", key: "a", userKey: "u" }, "S", "app_g2"), "S");
    assert.equal(writerOf("env-line").checked({ format: "env-line", key: "A" }, "S"), "S");
    assert.equal(writerOf("template").checked({ format: "template", template: "u={{user}} p={{secret}}\n" }, "S", "app_g2"), "u=app_g2 p=S\n");
});
