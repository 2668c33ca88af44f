// The one reader of the audit log (adapters/auditLog.ts over lib/auditLine.ts):
// the lines as the writer chained them, a torn last line skipped, an empty or
// missing log read as no lines, and a log that cannot be read refused.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { readAuditLog } from "../../adapters/auditLog";
import { appendChained } from "../../adapters/auditChain";
import { parseAuditLog } from "../../lib/auditLine";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "audit-log-"));
const record = (phase: string, secret = "app-redis") => ({
    time: "2026-12-05T10:00:00.000Z",
    stack: "prod",
    secret,
    generation: 3,
    mode: "rotate",
    phase,
    outcome: "ok",
});

/** A log written by the product's own writer, with `tail` appended as raw text. */
function log(name: string, phases: string[], tail = ""): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, "");
    for (const p of phases) appendChained(file, record(p));
    fs.appendFileSync(file, tail);
    return file;
}

test("reads every line the writer chained, in order, with its fields", () => {
    const lines = readAuditLog(log("whole.log", ["generated", "staged", "completed"]));
    assert.deepEqual(
        lines.map((l) => l.phase),
        ["generated", "staged", "completed"],
    );
    assert.equal(lines[2].generation, 3);
    assert.equal(typeof lines[2].hash, "string", "fields beyond the named ones ride along");
});

test("a torn last line (a writer killed mid-append) is skipped, the lines before it kept", () => {
    const whole = JSON.stringify({ ...record("completed"), prev: "0", hash: "1" });
    const file = log("torn.log", ["generated", "staged"], whole.slice(0, whole.length / 2));
    assert.deepEqual(
        readAuditLog(file).map((l) => l.phase),
        ["generated", "staged"],
    );
    // Torn after its newline was written, or before: the same lines.
    fs.appendFileSync(file, "\n");
    assert.deepEqual(
        readAuditLog(file).map((l) => l.phase),
        ["generated", "staged"],
    );
});

test("an empty log and a missing log are no lines", () => {
    assert.deepEqual(readAuditLog(log("empty.log", [])), []);
    assert.deepEqual(readAuditLog(path.join(dir, "missing.log")), []);
    assert.deepEqual(readAuditLog(path.join(dir, "no-such-dir", "audit.log")), []);
});

test("a log that exists but cannot be read throws (the delete guard counts that as no completion)", () => {
    assert.throws(() => readAuditLog(dir), /EISDIR/);
});

test("only JSON objects are lines: blank lines, garbage, arrays and scalars are skipped", () => {
    const text = ['{"phase":"a"}', "", "   ", "not json", "[1,2]", "42", "null", '"text"', '{"phase":"b"}'].join("\n");
    assert.deepEqual(
        parseAuditLog(text).map((l) => l.phase),
        ["a", "b"],
    );
    assert.deepEqual(parseAuditLog(""), []);
});

test("`mentioning` parses only the lines that contain it", () => {
    const file = path.join(dir, "two-secrets.log");
    fs.writeFileSync(file, "");
    for (const s of ["app-redis", "app-pg", "app-redis"]) appendChained(file, record("completed", s));
    assert.deepEqual(
        readAuditLog(file, { mentioning: '"app-pg"' }).map((l) => l.secret),
        ["app-pg"],
    );
    assert.equal(readAuditLog(file).length, 3);
});
