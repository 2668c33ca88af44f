// shq() and stdinFields() against a real bash: a property test over seeded
// random strings rich in shell metacharacters, plus fixed nasty cases.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { shq, stdinFields } from "../../lib/quote";
import { preamble } from "../../lib/scripts/common";
import { prng } from "./seeded";

const SEED = 0x5eed_2024;
const RANDOM_CASES = 600;

const ALPHABET = Array.from(`'"\`$();|&\\\n\t *?[]{}~!#<>=%-_.,:@^+/aZ09 \r\x01\x7f\u00a0é日本\u2028🔑💥`);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "quote-test-"));
const canary = path.join(dir, "PWNED");
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Values an attacker would try, each of which would touch the canary if it escaped its quotes. */
const NASTY = [
    "",
    " ",
    "'",
    "''",
    "'\\''",
    "\\",
    "\\'",
    "\n",
    "\r\n",
    "\t",
    "x\n\n",
    "a'b'c",
    `'$(touch ${canary})'`,
    `$(touch ${canary})`,
    `\`touch ${canary}\``,
    `'; touch ${canary}; '`,
    `"; touch ${canary}; "`,
    `'"$(touch ${canary})"'`,
    `\\'; touch ${canary} #`,
    `$'\\x27'; touch ${canary}`,
    `\n touch ${canary}\n`,
    `|touch ${canary}`,
    `&& touch ${canary}`,
    "$HOME",
    "${PATH}",
    "$((1+1))",
    "$'\\x41'",
    "!!",
    "!$",
    "-n",
    "-e",
    "--",
    "*",
    "~",
    "~root",
    "<(ls)",
    ">(ls)",
    "{a,b}",
    "[a]",
    "%s%n%d",
    "%",
    "\u00a0",
    "💥",
    "é\u2028日本",
    "a\x01b\x7f",
    "$IFS",
    "${IFS}x",
    "\\\\'\\\\",
];

function randomString(next: () => number): string {
    const len = Math.floor(next() * 24);
    let s = "";
    for (let i = 0; i < len; i++) s += ALPHABET[Math.floor(next() * ALPHABET.length)];
    // Most cases also carry a canary command in one of its usual disguises.
    const disguise = Math.floor(next() * 4);
    if (disguise === 1) s += `$(touch ${canary})`;
    if (disguise === 2) s = `\`touch ${canary}\`${s}`;
    if (disguise === 3) s += `'; touch ${canary}; '`;
    return s;
}

function bash(script: string, input?: string): string {
    const r = spawnSync("bash", ["-c", script], {
        input: input === undefined ? undefined : Buffer.from(input, "utf8"),
        env: { PATH: process.env.PATH, LC_ALL: "C.UTF-8" },
        timeout: 30_000,
    });
    assert.equal(r.status, 0, `bash failed: ${r.stderr?.toString()}`);
    return r.stdout.toString("utf8");
}

/** printf's every value as its own word through bash -c, NUL-separated, in batches. */
function echoThroughBash(values: string[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < values.length; i += 100) {
        const batch = values.slice(i, i + 100);
        const script = batch.map((v) => `printf '%s\\0' ${shq(v)}`).join("\n");
        out.push(...bash(script).split("\0").slice(0, -1));
    }
    return out;
}

test(`shq: bash prints exactly v for ${RANDOM_CASES} seeded random strings and the nasty cases, and runs nothing`, () => {
    const next = prng(SEED);
    const values = [...NASTY, ...Array.from({ length: RANDOM_CASES }, () => randomString(next))];
    assert.ok(values.filter((v) => v.includes(canary)).length > 300, "most cases carry the canary");
    const printed = echoThroughBash(values);
    assert.equal(printed.length, values.length, "each value is exactly one shell word");
    values.forEach((v, i) => assert.equal(printed[i], v, `case ${i} (seed ${SEED}): ${JSON.stringify(v)}`));
    assert.equal(fs.existsSync(canary), false, "a quoted value ran a command");
});

test("shq: a quoted value inside double-quoted text (as in the scripts' messages) stays literal", () => {
    const values = NASTY.filter((v) => v !== "");
    const script = values.map((v) => `printf '%s\\0' "before "${shq(v)}" after"`).join("\n");
    const printed = bash(script).split("\0").slice(0, -1);
    assert.deepEqual(
        printed,
        values.map((v) => `before ${v} after`),
    );
    assert.equal(fs.existsSync(canary), false);
});

test("shq: exact forms, numbers, and NUL refused", () => {
    assert.equal(shq("abc"), "'abc'");
    assert.equal(shq(""), "''");
    assert.equal(shq("it's"), "'it'\\''s'");
    assert.equal(shq(6379), "'6379'");
    assert.throws(() => shq("a\0b"), { message: "shq: a shell word cannot contain a NUL byte" });
});

test("stdinFields: NUL-terminates each field and refuses a NUL inside one", () => {
    assert.equal(stdinFields("a", "", "b\nc"), "a\0\0b\nc\0");
    assert.equal(stdinFields(), "");
    assert.throws(() => stdinFields("ok", "x\0y"), { message: "stdinFields: a field cannot contain a NUL byte" });
});

test("stdinFields: a bash `IFS= read -r -d ''` loop reads every field back exactly", () => {
    const next = prng(SEED + 1);
    const fields = [...NASTY, ...Array.from({ length: 200 }, () => randomString(next))];
    const script = `n=0; while IFS= read -r -d '' f; do printf '[%s]\\0' "$f"; n=$((n+1)); done; printf '%s' "$n"`;
    const out = bash(script, stdinFields(...fields)).split("\0");
    assert.equal(out.pop(), String(fields.length));
    assert.deepEqual(
        out,
        fields.map((f) => `[${f}]`),
    );
    assert.equal(fs.existsSync(canary), false);
});

test("stdinFields: the scripts' preamble reads OLD and NEW exactly and fails when one is missing", () => {
    const reader = `${preamble("OLD", "NEW")}printf '%s\\0%s\\0' "$OLD" "$NEW"\n`;
    for (const [old, nu] of [
        ["old'pw", "new\npw\n"],
        [" lead", "trail\\ "],
        [`$(touch ${canary})`, "\t"],
    ]) {
        assert.equal(bash(reader, stdinFields(old, nu)), `${old}\0${nu}\0`);
    }
    const r = spawnSync("bash", ["-c", reader], { input: stdinFields("only-old"), encoding: "utf8" });
    assert.equal(r.status, 2);
    assert.equal(r.stderr, "missing NEW on stdin\n");
    assert.equal(fs.existsSync(canary), false);
});
