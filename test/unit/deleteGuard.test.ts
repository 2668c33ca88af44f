// provider/deleteGuard.ts: the engine may take back (delete) generation K of a
// secret only once the audit log shows that secret's rotation past K, or the
// rollback of K, completed; otherwise the delete is refused with a message
// that names the secret, the generation, the audit log and the state URN.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { appendChained } from "../../adapters/auditChain";
import { deleteRefusal, noteAuditLog, takenBackAllowed } from "../../provider/deleteGuard";
import { STEP_TYPE } from "../../provider/types";

const STACK = "prod";
const SECRET = "app-redis";
const URN = `urn:pulumi:prod::secret-rotation::rotation:index:Rotation$rotation:index:SourceGrant$${STEP_TYPE}::app-redis-grant-g3`;

type Line = { stack?: string; secret?: string; generation?: unknown; mode?: string; phase?: string; outcome?: string };

/** An audit log holding `lines`, chained as the step provider writes them. */
function auditLog(lines: Line[]): string {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "delete-guard-")), "audit.log");
    fs.writeFileSync(file, "");
    for (const l of lines) appendChained(file, { time: "2025-01-01T00:00:00.000Z", reason: "scheduled", note: "r", operator: "o", consumers: 3, ...l });
    return file;
}

const line = (generation: unknown, phase: string, extra: Line = {}): Line => ({
    stack: STACK,
    secret: SECRET,
    generation,
    mode: phase === "rolled-back" ? "rollback" : "rotate",
    phase,
    outcome: "ok",
    ...extra,
});

/** The other lines one rotation of generation `g` writes, none of which completes it. */
const progress = (g: number): Line[] => ["generated", "staged", "granted", "rollout", "revoked", "promoted"].map((p) => line(g, p));

test("a completed rotation past generation K allows taking K back", () => {
    const log = auditLog([...progress(3), line(3, "completed"), ...progress(4), line(4, "completed")]);
    assert.equal(takenBackAllowed(log, STACK, SECRET, 3), true);
    assert.equal(takenBackAllowed(log, STACK, SECRET, 2), true);
    assert.equal(takenBackAllowed(log, STACK, SECRET, 0), true);
});

test("the completed rotation of K itself does not allow taking K back", () => {
    const log = auditLog([...progress(3), line(3, "completed")]);
    assert.equal(takenBackAllowed(log, STACK, SECRET, 3), false);
    assert.equal(takenBackAllowed(log, STACK, SECRET, 4), false);
    assert.equal(takenBackAllowed(log, STACK, SECRET, 2), true);
});

test("a rotation past K that only progressed (not completed) does not allow it", () => {
    const log = auditLog([...progress(4), line(4, "revoked")]);
    assert.equal(takenBackAllowed(log, STACK, SECRET, 3), false);
});

test("a completed rollback of K allows taking K back; a rollback of another generation does not", () => {
    const rolledBack = auditLog([...progress(4).slice(0, 4), line(4, "rollback-started"), line(4, "rolled-back")]);
    assert.equal(takenBackAllowed(rolledBack, STACK, SECRET, 4), true);
    assert.equal(takenBackAllowed(rolledBack, STACK, SECRET, 3), false, "the rollback restored generation 3: it stays");
    assert.equal(takenBackAllowed(rolledBack, STACK, SECRET, 5), false);
    assert.equal(takenBackAllowed(auditLog([line(5, "rolled-back")]), STACK, SECRET, 4), false);
    assert.equal(takenBackAllowed(auditLog([line(3, "rolled-back")]), STACK, SECRET, 4), false);
    // Only started: the consumers may still hold generation 4.
    assert.equal(takenBackAllowed(auditLog([line(4, "rollback-started")]), STACK, SECRET, 4), false);
});

test("failed outcome lines do not count", () => {
    const log = auditLog([line(4, "completed", { outcome: "failed" }), line(3, "rolled-back", { outcome: "failed" })]);
    assert.equal(takenBackAllowed(log, STACK, SECRET, 3), false);
    assert.equal(takenBackAllowed(auditLog([line(4, "completed", { outcome: undefined })]), STACK, SECRET, 3), false);
});

test("lines of another stack or another secret do not count", () => {
    const log = auditLog([
        line(9, "completed", { stack: "staging" }),
        line(3, "rolled-back", { stack: "staging" }),
        line(9, "completed", { secret: "app-redis-2" }),
        line(9, "completed", { secret: "app" }),
        line(3, "rolled-back", { secret: "app-pg" }),
        // app-redis named, but only as another field's value
        { stack: STACK, secret: "app-pg", generation: 9, phase: "completed", outcome: "ok", mode: SECRET },
    ]);
    assert.equal(takenBackAllowed(log, STACK, SECRET, 3), false);
    assert.equal(takenBackAllowed(log, "staging", SECRET, 3), true);
    assert.equal(takenBackAllowed(log, STACK, "app-pg", 3), true);
});

test("a generation that is not a number, or unparsable lines, do not count", () => {
    const log = auditLog([line("9", "completed")]);
    fs.appendFileSync(log, `{"stack":"${STACK}","secret":"${SECRET}","generation":9,"phase":"completed","outcome":"ok"\n`);
    fs.appendFileSync(log, `not json "${SECRET}"\n`);
    assert.equal(takenBackAllowed(log, STACK, SECRET, 3), false);
    // A plain (unchained) line, as 0.1 wrote them, counts.
    fs.appendFileSync(log, `${JSON.stringify(line(4, "completed"))}\n`);
    assert.equal(takenBackAllowed(log, STACK, SECRET, 3), true);
});

test("a missing or unreadable audit log refuses", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "delete-guard-"));
    assert.equal(takenBackAllowed(path.join(dir, "missing.log"), STACK, SECRET, 3), false);
    assert.equal(takenBackAllowed(dir, STACK, SECRET, 3), false, "a directory is no log");
    assert.equal(takenBackAllowed(auditLog([]), STACK, SECRET, 0), false, "an empty log");
});

test("deleteRefusal: undefined when allowed, otherwise a message naming the secret, the generation, the log and the URN", () => {
    const log = auditLog([...progress(3), line(3, "completed")]);
    const audit = { path: log, record: { stack: STACK, secret: SECRET, generation: 3, mode: "rotate", phase: "granted" } };
    const title = "app-redis: grant g3 at the redis-acl source";
    noteAuditLog(audit);
    assert.equal(deleteRefusal(audit, 2, "app-redis: grant g2 at the redis-acl source", URN.replace("g3", "g2")), undefined);
    const refusal = deleteRefusal(audit, 3, title, URN);
    assert.equal(
        refusal,
        `kept "${title}": generation 3 of app-redis may still be in use, so it is not taken back: ` +
            `no rotation of app-redis past generation 3 and no rollback of it has completed (audit log ${log}). ` +
            "If a step of app-redis failed in this run, fix it and resume; the next completed run takes it back. " +
            `If app-redis was removed from rotation:secrets, put it back, or stop managing it without withdrawing anything: bin/pulumi state delete '${URN}'`,
    );
    // The stack and secret come from the resource's own audit record; no step of stack staging named a log.
    const otherStack = deleteRefusal({ ...audit, record: { ...audit.record, stack: "staging" } }, 2, title, URN) ?? "";
    assert.match(otherStack, /^kept ".*": generation 2 of app-redis may still be in use/);
    assert.ok(otherStack.includes("(no step of stack staging in this run names an audit log to ask)"), otherStack);
    const missing = path.join(path.dirname(log), "gone.log");
    noteAuditLog({ ...audit, path: missing });
    const refused = deleteRefusal(audit, 0, title, URN)!;
    assert.ok(refused.includes(`(audit log ${missing})`));
    assert.ok(refused.includes("generation 0 of app-redis"));
    assert.ok(refused.endsWith(`bin/pulumi state delete '${URN}'`));
});

// A staged copy or a generated value of K (kind "value") is in the store once a rotation of K completed,
// or was never promoted once a rollback of K completed: from then on it may go.
test("a value of K may go once a rotation or rollback of K or later completed", () => {
    const completedK = auditLog([...progress(3), line(3, "completed")]);
    assert.equal(takenBackAllowed(completedK, STACK, SECRET, 3, "value"), true, "completed rotation of K itself");
    assert.equal(takenBackAllowed(completedK, STACK, SECRET, 2, "value"), true);
    assert.equal(takenBackAllowed(completedK, STACK, SECRET, 4, "value"), false, "a later generation's value");
    assert.equal(takenBackAllowed(completedK, STACK, SECRET, 3, "grant"), false, "the grant of K stays");
    assert.equal(takenBackAllowed(completedK, STACK, SECRET, 3), false, "grant is the default kind");
    const rolledBack = auditLog([line(4, "rolled-back")]);
    assert.equal(takenBackAllowed(rolledBack, STACK, SECRET, 4, "value"), true);
    assert.equal(takenBackAllowed(rolledBack, STACK, SECRET, 3, "value"), true, "a rollback of a later generation");
    assert.equal(takenBackAllowed(rolledBack, STACK, SECRET, 5, "value"), false);
    // Progress, failures, other stacks and other secrets do not count for values either.
    const noise = auditLog([
        ...progress(5),
        line(5, "completed", { outcome: "failed" }),
        line(5, "rolled-back", { outcome: "failed" }),
        line(5, "completed", { stack: "staging" }),
        line(5, "completed", { secret: "app-pg" }),
        line("5", "completed"),
    ]);
    assert.equal(takenBackAllowed(noise, STACK, SECRET, 3, "value"), false);
    assert.equal(takenBackAllowed(path.join(path.dirname(noise), "missing.log"), STACK, SECRET, 0, "value"), false);
});

test("deleteRefusal of a value: undefined once allowed, otherwise it names the secret, the generation, the log and the URN", () => {
    const log = auditLog([...progress(3), line(3, "completed")]);
    const audit = { path: log, record: { stack: STACK, secret: SECRET, generation: 4, mode: "rotate", phase: "staged" } };
    const urn = URN.replace("SourceGrant", "StoreStaging").replace("app-redis-grant-g3", "app-redis-stage");
    noteAuditLog(audit);
    assert.equal(deleteRefusal(audit, 3, "app-redis: stage g3 in the store", urn, "value"), undefined);
    assert.notEqual(deleteRefusal(audit, 3, "app-redis: grant g3 at the redis-acl source", URN, "grant"), undefined);
    const refused = deleteRefusal(audit, 4, "app-redis: stage g4 in the store", urn, "value");
    assert.ok(refused);
    assert.ok(refused.startsWith('kept "app-redis: stage g4 in the store": generation 4 of app-redis may still be in use'), refused);
    assert.ok(refused.includes(`(audit log ${log})`), refused);
    assert.ok(refused.endsWith(`bin/pulumi state delete '${urn}'`), refused);
});

// Issue 23, defect 3: two checkouts (or a changed rotation:auditLog) write their completions to different
// logs. The path recorded in the deleted resource's state is never asked; the current program's log is.
test("the delete guard asks the audit log the current program names, not the one recorded in the old state", () => {
    const earlier = auditLog([...progress(1), line(1, "completed")]);
    const current = auditLog([...progress(1), line(1, "completed"), ...progress(2), line(2, "completed")]);
    const recorded = { path: earlier, record: { stack: STACK, secret: SECRET, generation: 1, mode: "rotate", phase: "granted" } };
    const title = "app-redis: grant g1 at the redis-acl source";
    noteAuditLog({ path: current, record: { stack: STACK, secret: SECRET, generation: 2, mode: "rotate", phase: "completed" } });
    assert.equal(deleteRefusal(recorded, 1, title, URN), undefined, "the current log shows generation 2 completed");
    // The other way round: the recorded log shows a completion the current one does not: refused, naming the current log.
    noteAuditLog({ path: earlier, record: { stack: STACK, secret: SECRET, generation: 2, mode: "rotate", phase: "completed" } });
    const refused = deleteRefusal({ ...recorded, path: current }, 1, title, URN) ?? "";
    assert.ok(refused.includes(`(audit log ${earlier})`), refused);
    // A secret no step names falls back to its stack's log (a secret removed from rotation:secrets).
    noteAuditLog({ path: current, record: { stack: STACK, secret: "app-pg", generation: 2, mode: "rotate", phase: "completed" } });
    assert.ok((deleteRefusal({ ...recorded, record: { ...recorded.record, secret: "gone" } }, 1, title, URN) ?? "").includes(`(audit log ${current})`));
});
