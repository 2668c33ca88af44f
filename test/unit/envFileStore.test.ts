// The env-file credential store's scripts, run for real by bash against a
// temporary env file holding three secrets, comments, CR LF and unterminated
// lines: what one secret's phases leave of the other lines (byte for byte),
// the refusals (reused value, a staged line changed, the value in use
// changed), two secrets of the same file written at once, and the quoting
// read back by a shell and by the store's own reader.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { stdinFields } from "../../lib/quote";
import { envFileKey, envFileScripts, envFileStore } from "../../stores/envFile";

const OLD = "old-Secret-0123456789abcdef";
const NEW = "new-Secret-\u65e5-\"dq\" $HOME `x` \\n # = 'q'";
const BEFORE = "before-secret-0123456789";
const OTHER_A = "other-a-9f8e7d6c5b4a";
const OTHER_B = "other b with spaces";

/** Three secrets, comments, a blank line, a CR LF line, and a last line without its newline. */
const ORIGINAL = [
    "# service credentials\n",
    `DB_PASSWORD=${OTHER_A}\n`,
    "\n",
    `REDIS_PASSWORD=${OLD}\n`,
    `REDIS_PASSWORD_PREVIOUS='${BEFORE}'\n`,
    "; a systemd comment\r\n",
    `API_TOKEN="${OTHER_B}"`,
];

function envFile(lines = ORIGINAL): { file: string; dir: string; scripts: (key?: string, generation?: number) => ReturnType<typeof envFileScripts> } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "env file '$x' "));
    const file = path.join(dir, "app.env");
    fs.writeFileSync(file, lines.join(""), { mode: 0o644 });
    return { file, dir, scripts: (key = "REDIS_PASSWORD", generation = 2) => envFileScripts(file, key, "app-redis", generation, "team-prod") };
}

const SECRETS = [OLD, NEW, BEFORE, OTHER_A, OTHER_B];

function run(script: string, ...fields: string[]): { code: number; stdout: string; stderr: string } {
    const r = spawnSync("bash", ["-c", script], { input: stdinFields(...fields), encoding: "utf8" });
    const stderr = r.stderr ?? "";
    for (const v of [...SECRETS, ...fields]) assert.ok(!stderr.includes(v), `no secret in the script's messages: ${stderr}`);
    return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr };
}

const read = (f: string) => fs.readFileSync(f, "utf8");
/** The lines of the file that are not the secret's own, each with its ending. */
const othersOf = (text: string, key = "REDIS_PASSWORD") =>
    (text.match(/[^\n]*(\n|$)/g) ?? []).filter(
        (l) => l !== "" && !/^REDIS_PASSWORD(_NEW|_PREVIOUS|_COMMITTED)?=/.test(l) && !(key !== "REDIS_PASSWORD" && l.startsWith(`${key}`)),
    );
/** The value of `name` as a shell reads the file: `set -a; . file`. */
const shellValue = (file: string, name: string) =>
    spawnSync("bash", ["-c", `set -a; . "$1"; printf %s "\${${name}-<unset>}"`, "bash", file], { encoding: "utf8" }).stdout;

test("stage, commit and promote of one secret change only its own lines; every other line stays byte for byte", async () => {
    const s = envFile();
    const before = read(s.file);
    const st = run(s.scripts().stage, NEW, OLD);
    assert.equal(st.code, 0, st.stderr);
    assert.deepEqual(othersOf(read(s.file)), othersOf(before));
    assert.equal((await envFileStore.values({ kind: "env-file", path: s.file, key: "REDIS_PASSWORD" }, "app-redis")).staged, NEW);
    const cm = run(s.scripts().commit, NEW, OLD);
    assert.equal(cm.code, 0, cm.stderr);
    assert.equal(envFileStore.localCommitted!({ kind: "env-file", path: s.file, key: "REDIS_PASSWORD" }, "app-redis"), 2);
    const pr = run(s.scripts().promote, NEW);
    assert.equal(pr.code, 0, pr.stderr);
    const after = read(s.file);
    assert.deepEqual(othersOf(after), othersOf(before), "the other lines, their order and endings unchanged");
    assert.ok(after.endsWith(`API_TOKEN="${OTHER_B}"`), "still no newline at the end");
    assert.equal((fs.statSync(s.file).mode & 0o777).toString(8), "600");
    assert.deepEqual(await envFileStore.values({ kind: "env-file", path: s.file, key: "REDIS_PASSWORD" }, "app-redis"), {
        current: NEW,
        previous: OLD,
        staged: undefined,
    });
    assert.equal(shellValue(s.file, "REDIS_PASSWORD"), NEW, "a shell reads the new secret back exactly");
    assert.equal(shellValue(s.file, "REDIS_PASSWORD_PREVIOUS"), OLD);
    assert.equal(shellValue(s.file, "REDIS_PASSWORD_COMMITTED"), "2");
    assert.equal(run(s.scripts().readCurrent).stdout, NEW);
    assert.equal(run(s.scripts().promote, NEW).code, 0, "promoting again changes nothing");
    assert.equal(read(s.file), after);
    assert.equal(run(s.scripts().rollbackGuard).code, 1, "rollback of the committed generation is refused");
    assert.equal(run(s.scripts(undefined, 3).rollbackGuard).code, 0);
    assert.deepEqual(fs.readdirSync(s.dir).sort(), ["app.env", "app.env.lock"], "no temporary file is left");
});

test("a secret whose line is the unterminated last one: its new lines go after it and the file still ends without a newline", () => {
    const s = envFile(["# head\n", "A=1\n", `REDIS_PASSWORD=${OLD}`]);
    assert.equal(run(s.scripts().stage, NEW, OLD).code, 0);
    assert.ok(read(s.file).startsWith(`# head\nA=1\nREDIS_PASSWORD=${OLD}\nREDIS_PASSWORD_NEW="`));
    assert.ok(!read(s.file).endsWith("\n"));
    assert.equal(run(s.scripts().unstage, NEW).code, 0);
    assert.equal(read(s.file), `# head\nA=1\nREDIS_PASSWORD=${OLD}`, "unstaging gives back the file byte for byte");
});

test("stage refuses a new secret equal to the one in use or the one before, naming the file, the key and the way forward; nothing is staged", () => {
    const s = envFile();
    const before = read(s.file);
    const same = run(s.scripts().stage, OLD, OLD);
    assert.equal(same.code, 1);
    assert.match(same.stderr, /the new secret of generation 2 is the same as the secret in use: once the old one is revoked/);
    assert.ok(same.stderr.includes("bin/rotate rollback --stack team-prod --secret app-redis --yes"), same.stderr);
    const prev = run(s.scripts().stage, BEFORE, OLD);
    assert.equal(prev.code, 1);
    assert.ok(prev.stderr.includes(`the same as REDIS_PASSWORD_PREVIOUS in ${s.file} (the secret before the one in use)`), prev.stderr);
    assert.equal(read(s.file), before, "nothing was staged");
});

test("stage refuses a value the file cannot hold (a line break, not UTF-8), never printing it", () => {
    const s = envFile();
    const before = read(s.file);
    for (const bad of [`line1-${OTHER_A}\nline2`, `cr-${OTHER_A}\rx`, Buffer.from([0x61, 0xff, 0x62]).toString("latin1")]) {
        const r = spawnSync("bash", ["-c", s.scripts().stage], {
            input: Buffer.concat([Buffer.from(bad, "latin1"), Buffer.from([0]), Buffer.from(`${OLD}\0`)]),
            encoding: "utf8",
        });
        assert.equal(r.status, 1);
        assert.ok(r.stderr.includes(`so ${s.file} cannot hold it as REDIS_PASSWORD_NEW. Nothing was staged or granted.`), r.stderr);
        assert.ok(!r.stderr.includes(OTHER_A), "the value is not printed");
    }
    assert.equal(read(s.file), before);
});

test("the gate refuses a staged line changed or removed, or a value in use changed, naming the file, the key and the resume command", () => {
    const s = envFile();
    const cfg = { kind: "env-file" as const, path: s.file, key: "REDIS_PASSWORD" };
    assert.equal(run(s.scripts().stage, NEW, OLD).code, 0);
    const staged = read(s.file);
    // Changed behind the rotation's back.
    fs.writeFileSync(s.file, staged.replace(/^REDIS_PASSWORD_NEW=.*$/m, "REDIS_PASSWORD_NEW=somebody-elses-value"));
    const other = run(s.scripts().commit, NEW, OLD);
    assert.equal(other.code, 1);
    assert.ok(other.stderr.includes(`REDIS_PASSWORD_NEW in ${s.file} holds another secret than generation 2 (file modified `), other.stderr);
    assert.ok(other.stderr.includes("bin/rotate resume --stack team-prod --yes. Nothing was revoked"), other.stderr);
    assert.ok(!other.stderr.includes("somebody-elses-value"));
    assert.equal(envFileStore.localCommitted!(cfg, "app-redis"), 0);
    // Removed: staged again, still refused; the next run goes on.
    fs.writeFileSync(s.file, staged.replace(/^REDIS_PASSWORD_NEW=.*\n/m, ""));
    const missing = run(s.scripts().commit, NEW, OLD);
    assert.equal(missing.code, 1);
    assert.ok(
        missing.stderr.includes(
            `the staged copy of generation 2 was missing (REDIS_PASSWORD_NEW in ${s.file}: removed behind this rotation's back after staging); it was staged again.`,
        ),
        missing.stderr,
    );
    assert.equal(read(s.file), staged, "staged again, byte for byte as before");
    // The value in use changed.
    fs.writeFileSync(s.file, staged.replace(`REDIS_PASSWORD=${OLD}`, "REDIS_PASSWORD=replaced-by-hand"));
    const replaced = run(s.scripts().commit, NEW, OLD);
    assert.equal(replaced.code, 1);
    assert.ok(replaced.stderr.includes(`REDIS_PASSWORD in ${s.file} no longer holds the secret in use (file modified `), replaced.stderr);
    assert.ok(!replaced.stderr.includes("replaced-by-hand"));
    assert.equal(envFileStore.localCommitted!(cfg, "app-redis"), 0, "the revocation was not marked as started");
    fs.writeFileSync(s.file, staged);
    assert.equal(run(s.scripts().commit, NEW, OLD).code, 0);
    assert.match(read(s.file), /^REDIS_PASSWORD_COMMITTED=2\n/m);
});

test("unstage removes only its own staged value", () => {
    const s = envFile();
    assert.equal(run(s.scripts().stage, NEW, OLD).code, 0);
    const staged = read(s.file);
    assert.equal(run(s.scripts().unstage, "another-generations-value").code, 0);
    assert.equal(read(s.file), staged);
    assert.equal(run(s.scripts().unstage, NEW).code, 0);
    assert.equal(read(s.file), ORIGINAL.join(""));
});

test("two secrets of the same file staged, committed and promoted at once by parallel processes: both updates are kept", async () => {
    const keys = Array.from({ length: 6 }, (_, i) => `SECRET_${i}`);
    const s = envFile(["# many\n", ...keys.map((k, i) => `${k}=old-value-${i}\n`), "TAIL=kept"]);
    const bash = (script: string, ...fields: string[]) =>
        new Promise<{ code: number; stderr: string }>((resolve) => {
            const c = spawn("bash", ["-c", script]);
            let stderr = "";
            c.stderr.on("data", (d) => (stderr += d));
            c.on("close", (code) => resolve({ code: code ?? 1, stderr }));
            c.stdin.end(stdinFields(...fields));
        });
    const phases = async (k: string, i: number) => {
        const sc = s.scripts(k, 2);
        const fresh = `new value ${i} "$x"`;
        for (const [script, fields] of [
            [sc.stage, [fresh, `old-value-${i}`]],
            [sc.commit, [fresh, `old-value-${i}`]],
            [sc.promote, [fresh]],
        ] as const) {
            const r = await bash(script, ...fields);
            assert.equal(r.code, 0, `${k}: ${r.stderr}`);
        }
    };
    await Promise.all(keys.map(phases));
    for (const [i, k] of keys.entries()) {
        assert.equal(shellValue(s.file, k), `new value ${i} "$x"`, `${k} was promoted`);
        assert.equal(shellValue(s.file, envFileKey(k, "previous")), `old-value-${i}`);
        assert.equal(shellValue(s.file, envFileKey(k, "committed")), "2");
        assert.equal(shellValue(s.file, envFileKey(k, "staged")), "<unset>");
    }
    assert.ok(read(s.file).startsWith("# many\n") && read(s.file).endsWith("\nTAIL=kept"));
});

test("quoting: awkward values read back exactly by a shell (set -a; . file) and by the store", async () => {
    const awkward = [
        "with spaces",
        "single'quote",
        'double"quote',
        "dollar$HOME${x}$(id)",
        "back\\slash\\",
        "hash # not a comment",
        "a=b=c",
        "`id`",
        "tab\there",
        " lead and trail ",
        "caf\u00e9 \u65e5\u672c",
        "!bang",
        "~tilde",
        "*glob?[x]",
        "semi;colon|pipe&amp",
    ];
    for (const [i, v] of awkward.entries()) {
        const s = envFile([`REDIS_PASSWORD=${OLD}\n`]);
        assert.equal(run(s.scripts().stage, v, OLD).code, 0, `stage ${i}`);
        assert.equal(run(s.scripts().commit, v, OLD).code, 0, `commit ${i}`);
        assert.equal(run(s.scripts().promote, v).code, 0, `promote ${i}`);
        assert.equal(shellValue(s.file, "REDIS_PASSWORD"), v, `a shell reads value ${i} back`);
        assert.equal(run(s.scripts().readCurrent).stdout, v, `the store reads value ${i} back`);
    }
    // Forms an operator writes by hand are read as a shell reads them.
    const s = envFile([`A=plain-1.2:3\n`, `B='it is "single"'\n`, `C="x\\"y\\\\z\\$w\\q"\n`, `REDIS_PASSWORD=${OLD}\n`]);
    for (const k of ["A", "B", "C"]) assert.equal(run(s.scripts(k).readCurrent).stdout, shellValue(s.file, k), k);
    // A form it does not read is refused, naming the line, not the value.
    const odd = envFile([`REDIS_PASSWORD=${OLD} # trailing comment\n`]);
    const r = run(odd.scripts().readCurrent);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the line REDIS_PASSWORD= in .* is in a form this store does not read/);
});

test("pre-flight names the missing file, the missing key, and an unreadable line", () => {
    const problems = (file: string, key = "REDIS_PASSWORD") => {
        const script = `set -uo pipefail\nproblem() { printf 'PREFLIGHT %s\\n' "$*"; }\n${envFileStore.preflight!({ kind: "env-file", path: file, key }, "app-redis")}\n`;
        const r = spawnSync("bash", ["-c", script], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout;
    };
    const s = envFile();
    assert.equal(problems(s.file), "");
    assert.equal(problems(path.join(s.dir, "nope.env")), `PREFLIGHT no env file ${path.join(s.dir, "nope.env")} (the env-file store of REDIS_PASSWORD)\n`);
    assert.equal(problems(s.file, "MISSING_KEY"), `PREFLIGHT no line MISSING_KEY= in ${s.file}\n`);
    fs.appendFileSync(s.file, "\nREDIS_PASSWORD_NEW=bad value\n");
    assert.match(problems(s.file), /^PREFLIGHT the line REDIS_PASSWORD_NEW= in .* is in a form this store does not read/);
});
