import assert from "node:assert/strict";
import { test } from "node:test";
import { parseAuditLog } from "../../lib/auditLine";
import { intervalMs, lastCompleted, nextDue } from "../../lib/schedule";

test("schedules in days and weeks", () => {
    assert.equal(intervalMs("90d"), 90 * 86400000);
    assert.equal(intervalMs("2w"), 14 * 86400000);
    assert.throws(() => intervalMs("0d"), /invalid schedule "0d"/);
    assert.throws(() => intervalMs("3m"), /invalid schedule "3m"/);
});

test("the next rotation is due one interval after the last completed one, or now if never", () => {
    const lines = [
        JSON.stringify({ time: "2026-01-01T00:00:00Z", secret: "a", phase: "completed", outcome: "ok" }),
        JSON.stringify({ time: "2026-03-01T00:00:00Z", secret: "a", phase: "completed", outcome: "ok" }),
        JSON.stringify({ time: "2026-05-01T00:00:00Z", secret: "a", phase: "revoked", outcome: "ok" }),
        JSON.stringify({ time: "2026-06-01T00:00:00Z", secret: "b", phase: "completed", outcome: "ok" }),
        JSON.stringify({ time: "2026-07-01T00:00:00Z", secret: "a", phase: "completed", outcome: "failed" }),
        "not json",
    ];
    const last = lastCompleted(parseAuditLog(lines.join("\n")), "a");
    assert.equal(last?.toISOString(), "2026-03-01T00:00:00.000Z");
    assert.equal(nextDue(last, "30d", new Date()).toISOString(), "2026-03-31T00:00:00.000Z");
    const now = new Date("2026-11-25T00:00:00Z");
    assert.equal(nextDue(lastCompleted(parseAuditLog(lines.join("\n")), "c"), "30d", now), now);
});
