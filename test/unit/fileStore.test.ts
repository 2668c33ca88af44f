// The file credential store's scripts, run for real by bash against a
// temporary store: a store written behind the rotation's back between stage
// and gate, and a new secret equal to one in use (issue 23, defects 1 and 2).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { stdinFields } from "../../lib/quote";
import { fileStoreScripts } from "../../stores/file";
import { type FileStorePart, fileStorePath } from "../../stores/fileLayout";

const NAME = "app-db";
const OLD = "old-secret-\u00e9-'q'-$x-\nline2";
const NEW = 'new-secret-\u65e5-"dq"-\\b-\nline2';
const BEFORE = "before-secret-0123456789";

function store(): { dir: string; scripts: ReturnType<typeof fileStoreScripts>; file: (part?: FileStorePart) => string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "file store '$x' "));
    fs.writeFileSync(path.join(dir, NAME), OLD, { mode: 0o600 });
    fs.writeFileSync(fileStorePath(dir, NAME, "previous"), BEFORE, { mode: 0o600 });
    return { dir, scripts: fileStoreScripts(dir, NAME, 2, "team-prod"), file: (part = "current") => fileStorePath(dir, NAME, part) };
}

function run(script: string, ...fields: string[]): { code: number; stderr: string } {
    const r = spawnSync("bash", ["-c", script], { input: stdinFields(...fields), encoding: "utf8" });
    const stderr = r.stderr ?? "";
    for (const v of [OLD, NEW, BEFORE]) assert.ok(!stderr.includes(v.split("\n")[0]), `no secret in the script's output: ${stderr}`);
    return { code: r.status ?? -1, stderr };
}

const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : undefined);

test("stage refuses a new secret equal to the one in use or the one before it, naming the way forward; nothing is staged", () => {
    const s = store();
    const same = run(s.scripts.stage, OLD, OLD);
    assert.equal(same.code, 1);
    assert.match(same.stderr, /the new secret of generation 2 is the same as the secret in use: once the old one is revoked/);
    assert.ok(same.stderr.includes("bin/rotate rollback --stack team-prod --secret app-db --yes"), same.stderr);
    assert.ok(same.stderr.includes("bin/rotate start --stack team-prod --secret app-db --yes"), same.stderr);
    const before = run(s.scripts.stage, BEFORE, OLD);
    assert.equal(before.code, 1);
    assert.ok(before.stderr.includes(`the same as ${s.file("previous")} (the secret before the one in use)`), before.stderr);
    assert.equal(read(s.file("staged")), undefined, "nothing was staged");
    // The store's current changed behind the back but equals the new one: taken as promoted already.
    const ok = run(s.scripts.stage, NEW, OLD);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(read(s.file("staged")), NEW);
});

test("the gate refuses when the staged copy went missing, stages it again, and the next run goes on", () => {
    const s = store();
    assert.equal(run(s.scripts.stage, NEW, OLD).code, 0);
    fs.rmSync(s.file("staged"));
    const refused = run(s.scripts.commit, NEW, OLD);
    assert.equal(refused.code, 1);
    assert.ok(
        refused.stderr.includes(
            `the staged copy of generation 2 was missing (${s.file("staged")}: removed behind this rotation's back after staging); it was staged again.`,
        ),
        refused.stderr,
    );
    assert.ok(refused.stderr.includes("bin/rotate resume --stack team-prod --yes. Nothing was revoked"), refused.stderr);
    assert.equal(read(s.file("committed")), undefined, "the revocation was not marked as started");
    assert.equal(read(s.file("staged")), NEW, "staged again, byte for byte");
    const resumed = run(s.scripts.commit, NEW, OLD);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(read(s.file("committed")), "2\n");
});

test("the gate refuses another secret in the staged file, or a replaced current one, and writes nothing", () => {
    const s = store();
    fs.writeFileSync(s.file("staged"), "somebody-else's-value", { mode: 0o600 });
    const other = run(s.scripts.commit, NEW, OLD);
    assert.equal(other.code, 1);
    assert.ok(other.stderr.includes(`${s.file("staged")} holds another secret than generation 2 (modified `), other.stderr);
    assert.equal(read(s.file("staged")), "somebody-else's-value");
    fs.rmSync(s.file("staged"));
    fs.writeFileSync(s.file(), "replaced-by-hand", { mode: 0o600 });
    const replaced = run(s.scripts.commit, NEW, OLD);
    assert.equal(replaced.code, 1);
    assert.ok(replaced.stderr.includes(`${s.file()} no longer holds the secret in use`), replaced.stderr);
    assert.equal(read(s.file("staged")), undefined);
    assert.equal(read(s.file("committed")), undefined);
});

test("promotion after the revocation rolls forward when the staged copy is gone: the new secret becomes current", () => {
    const s = store();
    assert.equal(run(s.scripts.stage, NEW, OLD).code, 0);
    assert.equal(run(s.scripts.commit, NEW, OLD).code, 0);
    fs.rmSync(s.file("staged"));
    const r = run(s.scripts.promote, NEW);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(read(s.file()), NEW);
    assert.equal(read(s.file("previous")), OLD);
    assert.equal((fs.statSync(s.file()).mode & 0o777).toString(8), "600");
    assert.equal(run(s.scripts.promote, NEW).code, 0, "promoting again changes nothing");
    assert.equal(read(s.file("previous")), OLD);
});
