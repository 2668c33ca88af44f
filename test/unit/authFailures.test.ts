// Verification 3 (provider/authFailures.ts) with real bash on local logs: the
// gate notes each log's size, the verification counts the auth failures
// after it (0 included) and fails naming each consumer and its count; with
// no anchor (the gate ran in an earlier update) it counts only what its own
// window sees. Then the counts as the run record and the report show them.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { renderReport } from "../../cli/report";
import { authFailureRows, type RunRecord } from "../../cli/runRecord";
import { VerificationError, authFailureFields, noteLogAnchors, verifyConsumers, type RunKey } from "../../provider/authFailures";
import { gateOf, loggedConsumer } from "./verification3";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "auth-failures-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const TITLE = "app-redis: all 2 consumers healthy after revocation";
const PATTERN = "AUTH_FAILED|WRONGPASS";

const consumer = (name: string, log: string, windowSeconds = 1) => loggedConsumer(name, { path: log, pattern: PATTERN, windowSeconds });
const gate = (run: RunKey, logs: Record<string, string>) =>
    gateOf(dir, run, Object.fromEntries(Object.entries(logs).map(([name, log]) => [name, { path: log, pattern: PATTERN, windowSeconds: 1 }])));
const append = (f: string, ...lines: string[]) => fs.appendFileSync(f, lines.map((l) => `${l}\n`).join(""));

test("after the gate's anchor: each consumer's auth failures since the revocation are counted, 0 included; any count fails, naming consumer, count and log", async () => {
    const run = { stack: "dev", secret: "app-redis", generation: 4 };
    const [web1, web2] = ["web-1.log", "web-2.log"].map((n) => path.join(dir, n));
    append(web1, "AUTH_FAILED before the revocation", "ok");
    append(web2, "WRONGPASS before the revocation");
    await noteLogAnchors(gate(run, { "web-1": web1, "web-2": web2 }));
    append(web1, "served a request");
    append(web2, "AUTH_FAILED stale client", "ok", "WRONGPASS stale client");
    const started = Date.now();
    // A line written during the window still counts: the check waits windowSeconds before counting.
    setTimeout(() => append(web2, "AUTH_FAILED late"), 300);
    await assert.rejects(verifyConsumers([consumer("web-1", web1), consumer("web-2", web2)], TITLE, run, ["s3cret-value"]), (e: Error) => {
        assert.ok(e instanceof VerificationError);
        assert.equal(
            e.message,
            `${TITLE}: 1 of 2 consumers logged auth failures after the revocation: ` +
                `app-redis → consumer web-2: 3 auth failure(s) in ${web2} since the revocation. ` +
                "Something there still uses the revoked secret (or its log could not be searched); nothing is undone: the new secret stays current and the old one revoked",
        );
        assert.deepEqual(e.auditFields, { authFailures: "web-1=0 web-2=3" });
        return true;
    });
    assert.ok(Date.now() - started >= 1000, "the count waited for the consumer's window");
});

test("without an anchor (the gate ran in an earlier update) only the check's own window is counted, and the fields say so", async () => {
    const run = { stack: "dev", secret: "app-redis", generation: 5 };
    const log = path.join(dir, "resume.log");
    append(log, "AUTH_FAILED long before this check", "AUTH_FAILED fixed since");
    assert.deepEqual(await verifyConsumers([consumer("web-1", log)], TITLE, run, []), { authFailures: "web-1=0", authFailuresFromCheck: "web-1" });
    setTimeout(() => append(log, "AUTH_FAILED during the check"), 300);
    await assert.rejects(
        verifyConsumers([consumer("web-1", log)], TITLE, run, []),
        /app-redis → consumer web-1: 1 auth failure\(s\) in .*resume\.log since this check started 1s before \(the gate ran in an earlier update\)/,
    );
});

test("a log that does not exist counts 0; a pattern grep cannot use fails the check as not searched", async () => {
    const run = { stack: "dev", secret: "app-redis", generation: 6 };
    const missing = path.join(dir, "never-written.log");
    assert.deepEqual(await verifyConsumers([consumer("web-1", missing)], TITLE, run, []), { authFailures: "web-1=0", authFailuresFromCheck: "web-1" });
    const log = path.join(dir, "bad-pattern.log");
    append(log, "x");
    const bad = { ...consumer("web-1", log), logCheck: { path: log, pattern: "auth(", windowSeconds: 1 } };
    await assert.rejects(verifyConsumers([bad], TITLE, run, []), (e: Error) => {
        assert.match(
            e.message,
            /app-redis → consumer web-1: could not count auth failures in .*bad-pattern\.log \(grep exit 2: is the pattern a valid extended regular expression\?\)/,
        );
        assert.deepEqual((e as VerificationError).auditFields, { authFailures: "web-1=?", authFailuresFromCheck: "web-1" });
        return true;
    });
});

test("an unhealthy consumer and a consumer with auth failures: one error names both; a secret in the output is redacted", async () => {
    const run = { stack: "dev", secret: "app-redis", generation: 7 };
    const log = path.join(dir, "both.log");
    await noteLogAnchors(gate(run, { "web-2": log }));
    append(log, "AUTH_FAILED for user with password hunter2-secret");
    const sick = { ...consumer("web-1", path.join(dir, "none.log")), health: { command: "echo 'hunter2-secret refused' >&2; exit 3" } };
    await assert.rejects(verifyConsumers([sick, consumer("web-2", log)], TITLE, run, ["hunter2-secret"]), (e: Error) => {
        assert.match(
            e.message,
            /^app-redis: all 2 consumers healthy after revocation: 1 of 2 consumers failed: app-redis → consumer web-1: healthy after revocation: exited with code 3.*; and 1 of 2 consumers logged auth failures after the revocation: app-redis → consumer web-2: 1 auth failure\(s\) in .*both\.log since the revocation\./,
        );
        assert.ok(!e.message.includes("hunter2-secret"), e.message);
        return true;
    });
});

test("the audit fields become the run record's rows (a resume's line replaces the first) and the report's table, 0 included", () => {
    const fields = authFailureFields([
        { consumer: "web-1", label: "l", where: "/l", noun: "auth failure(s)", journal: false, count: 0, since: "revocation" },
        { consumer: "web-2", label: "l", where: "/l", noun: "auth failure(s)", journal: false, count: 3, since: "revocation" },
        { consumer: "web-3", label: "l", where: "the journal of unit app1", noun: "error(s)", journal: true, count: 1, since: "revocation" },
    ]);
    assert.deepEqual(fields, { authFailures: "web-1=0 web-2=3 web-3=1", authFailuresInJournal: "web-3" });
    const line = (generation: number, f: Record<string, string>, outcome: string) => ({
        secret: "app-redis",
        generation,
        phase: "consumers-verified",
        outcome,
        ...f,
    });
    const rows = authFailureRows([
        line(4, fields, "failed"),
        { secret: "app-redis", generation: 4, phase: "verified", outcome: "ok" },
        line(3, { authFailures: "web-1=0" }, "ok"),
        line(4, { authFailures: "web-1=0 web-2=0 web-3=?", authFailuresFromCheck: "web-2 web-3" }, "ok"),
    ]);
    assert.deepEqual(rows, [
        { secret: "app-redis", generation: 4, consumer: "web-1", count: 0, since: "revocation", journal: false },
        { secret: "app-redis", generation: 4, consumer: "web-2", count: 0, since: "check", journal: false },
        { secret: "app-redis", generation: 4, consumer: "web-3", count: null, since: "check", journal: false },
        { secret: "app-redis", generation: 3, consumer: "web-1", count: 0, since: "revocation", journal: false },
    ]);
    const failed = authFailureRows([line(4, fields, "failed")]);
    const run: RunRecord = {
        id: "dev-x-start",
        stack: "dev",
        command: "start",
        started: 0,
        ended: 1000,
        outcome: "failed",
        exitCode: 5,
        secrets: [{ name: "app-redis", generation: 4, mode: "rotate", consumers: ["web-1", "web-2"], after: [] }],
        steps: [],
        audit: [],
        next: [],
        errors: [],
        authFailures: failed,
    };
    const html = renderReport(run);
    assert.match(html, /After the revocation: auth failures in consumer logs/);
    assert.match(html, /<td>web-1<\/td><td>0<\/td><td>the revocation \(the gate noted the log's size\)<\/td>/);
    assert.match(html, /<td>web-2<\/td><td><span class="bad">3<\/span><\/td>/);
    assert.match(
        html,
        /<td>web-3<\/td><td><span class="bad">1<\/span><\/td><td>the revocation \(the gate noted the journal's cursor\)<\/td><td>unit journal<\/td>/,
    );
    assert.doesNotMatch(renderReport({ ...run, authFailures: undefined }), /auth failures in consumer logs/, "no section without counts");
});
