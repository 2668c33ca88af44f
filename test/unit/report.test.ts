// The run report (cli/report.ts) from synthetic run records: what its markup
// claims (rows, the dual-active window's extent, escaping, no external
// resource), then, where Chromium is installed, what a real browser paints.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { REPORT_COLORS, renderReport, reportFileName, reportSize, writeReport } from "../../cli/report";
import type { RunRecord, StepRecord } from "../../cli/runRecord";
import { analyzePng, chromiumPath, screenshot } from "../browser";

const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);
const SECRET = "app-redis";
const NASTY = `health check on web-2 exited with code 1: <script>alert("x")</script> & 'quoted'`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "report-test-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Variant {
    consumers?: string[];
    /** This consumer's rollout fails, and nothing after the rollouts runs. */
    failConsumer?: string;
}

/** A rotation of app-redis to g2 as the console records it; times in s from T0. */
function rotateRun(v: Variant = {}): RunRecord {
    const consumers = v.consumers ?? ["web-1", "web-2", "web-3"];
    const steps: StepRecord[] = [];
    const audit: Record<string, unknown>[] = [];
    const step = (id: string, phase: StepRecord["phase"], resource: string, from: number, to: number, extra: Partial<StepRecord> = {}) => {
        const s: StepRecord = {
            secret: SECRET,
            step: id,
            phase,
            resource: `${SECRET}-${resource}`,
            op: "create",
            start: T0 + from * 1000,
            end: T0 + to * 1000,
            outcome: "ok",
            ...extra,
        };
        steps.push(s);
        return s;
    };
    const line = (at: number, phase: string, outcome: string, consumer?: string) =>
        audit.push({
            time: new Date(T0 + at * 1000).toISOString(),
            stack: "dev",
            secret: SECRET,
            generation: 2,
            mode: "rotate",
            phase,
            ...(consumer ? { consumer } : {}),
            reason: "scheduled",
            note: "quarterly",
            operator: "alice",
            consumers: consumers.length,
            outcome,
            prev: "a".repeat(64),
            hash: "b".repeat(64),
        });
    step("previous", "read-previous", "previous", 0.2, 0.6, { op: "same", outcome: "unchanged" });
    step("secret", "generate", "g2", 0.3, 0.9);
    line(0.9, "generated", "ok");
    step("stage", "stage", "stage", 1.0, 1.8);
    line(1.8, "staged", "ok");
    const grant = step("grant", "grant", "grant-g2", 1.9, 3.1);
    line(3.1, "granted", "ok");
    let lastRollout = 0;
    consumers.forEach((c, i) => {
        const from = 3.2 + 0.3 * i;
        const to = from + 2.5 + i;
        lastRollout = Math.max(lastRollout, to);
        const failed = c === v.failConsumer;
        step(`rollout/${c}`, "rollout", `rollout-${c}`, from, to, { consumer: c, ...(failed ? { outcome: "failed", error: NASTY } : {}) });
        line(to, "consumer-verified", failed ? "failed" : "ok", c);
    });
    if (v.failConsumer) {
        const ended = T0 + (lastRollout + 0.5) * 1000;
        return {
            id: "dev-20261126T120000Z-start",
            stack: "dev",
            command: "start",
            started: T0,
            ended,
            outcome: "failed",
            exitCode: 1,
            secrets: [{ name: SECRET, generation: 2, mode: "rotate", consumers, after: [] }],
            steps,
            audit,
            next: [`Fix ${v.failConsumer} & check its logs`, "bin/rotate resume --stack dev", "bin/rotate rollback --stack dev --secret app-redis"],
            errors: ["error: update failed <engine>"],
        };
    }
    let t = lastRollout + 0.1;
    const at = (d: number) => [t, (t += d)] as const;
    step("gate", "gate", "gate", ...at(0.4));
    line(t, "rolled-out", "ok");
    const revoke = step("revoke", "revoke", "revoke", ...at(1.3));
    line(t, "revoked", "ok");
    step("promote", "promote", "promote", ...at(0.6));
    step("verify/source", "verify", "verify-source", ...at(0.8));
    step("verify/consumers", "verify", "verify-consumers", ...at(1.1));
    line(t, "verified", "ok");
    step("audit", "audit", "audit", ...at(0.2));
    line(t, "completed", "ok");
    assert.ok(grant.end! < revoke.end!);
    return {
        id: "dev-20261126T120000Z-start",
        stack: "dev",
        command: "start",
        started: T0,
        ended: T0 + (t + 0.4) * 1000,
        outcome: "succeeded",
        exitCode: 0,
        secrets: [{ name: SECRET, generation: 2, mode: "rotate", consumers, after: [] }],
        steps,
        audit,
        next: [],
        errors: [],
    };
}

/** A rollback of app-redis g2: the consumers get g1 back, then Pulumi deletes g2's grant. */
function rollbackRun(): RunRecord {
    const consumers = ["web-1", "web-2", "web-3"];
    const s = (step: string, phase: StepRecord["phase"], resource: string, from: number, to: number, extra: Partial<StepRecord> = {}): StepRecord => ({
        secret: SECRET,
        step,
        phase,
        resource: `${SECRET}-${resource}`,
        op: "update",
        start: T0 + from * 1000,
        end: T0 + to * 1000,
        outcome: "ok",
        ...extra,
    });
    return {
        id: "dev-20261126T130000Z-rollback",
        stack: "dev",
        command: "rollback",
        started: T0,
        ended: T0 + 14_000,
        outcome: "rolled-back",
        exitCode: 0,
        secrets: [{ name: SECRET, generation: 2, mode: "rollback", consumers, after: [] }],
        steps: [
            s("previous", "read-previous", "previous", 0.2, 0.5, { op: "same", outcome: "unchanged" }),
            s("guard", "guard", "rollback-guard", 0.6, 1.2),
            s("grant-previous", "grant", "grant-g1", 1.3, 1.4, { op: "same", outcome: "unchanged" }),
            ...consumers.map((c, i) => s(`rollout/${c}`, "rollout", `rollout-${c}`, 1.5 + 0.2 * i, 5 + i, { consumer: c })),
            s("audit", "audit", "audit", 8.1, 8.4),
            s("other", "other", "grant-g2", 8.5, 11.2, { op: "delete" }),
            s("other", "other", "stage", 11.3, 12.0, { op: "delete" }),
        ],
        audit: [
            { time: new Date(T0 + 1200).toISOString(), secret: SECRET, generation: 2, phase: "rollback-started", outcome: "ok" },
            { time: new Date(T0 + 11_200).toISOString(), secret: SECRET, generation: 2, phase: "withdrawn", outcome: "ok" },
        ],
        next: [],
        errors: [],
    };
}

/** Every start tag carrying `marker`, as attribute maps. */
function tags(html: string, marker: string): Record<string, string>[] {
    return [...html.matchAll(/<[a-z]+\s([^>]*)>/g)]
        .filter((m) => m[1].includes(marker))
        .map((m) => Object.fromEntries([...m[1].matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])));
}

/** The `<g class="row">` of a step and the bar inside it. */
function row(html: string, step: string): { attrs: Record<string, string>; bar?: { x: number; width: number } } {
    const m = new RegExp(`<g class="row"[^>]*data-step="${step}"[^>]*>([\\s\\S]*?)</g>`).exec(html);
    assert.ok(m, `no timeline row for ${step}`);
    const bar = /<rect class="bar" x="(\d+)" y="[\d.]+" width="(\d+)"/.exec(m[1]);
    return { attrs: tags(m[0], 'class="row"')[0], ...(bar ? { bar: { x: Number(bar[1]), width: Number(bar[2]) } } : {}) };
}

function chart(html: string) {
    const svg = tags(html, "data-chart-x")[0];
    return { x0: Number(svg["data-chart-x"]), width: Number(svg["data-chart-width"]), span: Number(svg["data-span-ms"]) };
}

const stepOf = (run: RunRecord, id: string) => run.steps.find((s) => s.step === id)!;

test("renderReport: a completed rotation has one timeline row per consumer and a window from the grant's end to the revocation's end", () => {
    const run = rotateRun();
    const html = renderReport(run);
    const rollouts = tags(html, 'data-phase="rollout"');
    assert.deepEqual(
        rollouts.map((r) => r["data-consumer"]),
        ["web-1", "web-2", "web-3"],
    );
    assert.ok(rollouts.every((r) => r["data-outcome"] === "ok"));
    // Plan order: generate before stage before grant before the rollouts before the revocation.
    const order = tags(html, 'class="row"').map((r) => r["data-step"]);
    assert.deepEqual(order, [
        "preflight",
        "previous",
        "secret",
        "stage",
        "grant",
        "rollout/web-1",
        "rollout/web-2",
        "rollout/web-3",
        "gate",
        "revoke",
        "promote",
        "verify/source",
        "verify/consumers",
        "audit",
    ]);

    const [shade] = tags(html, 'data-role="dual-active"');
    assert.ok(shade, "the dual-active window is shaded");
    const grant = stepOf(run, "grant");
    const revoke = stepOf(run, "revoke");
    assert.equal(Number(shade["data-start-ms"]), grant.end! - run.started);
    assert.equal(Number(shade["data-end-ms"]), revoke.end! - run.started);
    assert.equal(shade["data-open"], "false");
    const c = chart(html);
    const px = (ms: number) => c.x0 + Math.round(((ms - run.started) / c.span) * c.width);
    assert.equal(Number(shade.x), px(grant.end!));
    assert.equal(Number(shade.x) + Number(shade.width), px(revoke.end!));
    // The shading starts where the grant's bar ends and stops where the revocation's does.
    const g = row(html, "grant").bar!;
    const r = row(html, "revoke").bar!;
    assert.equal(Number(shade.x), g.x + g.width);
    assert.equal(Number(shade.x) + Number(shade.width), r.x + r.width);
    assert.equal(shade.fill, REPORT_COLORS.shading);
    assert.match(html, />dual-active</);
    assert.doesNotMatch(html, /still open/);
});

test("renderReport: the header, the consumers and the audit lines are shown; no next steps on success", () => {
    const run = rotateRun();
    const html = renderReport(run);
    for (const text of ["dev", "start", "succeeded", "2026-11-26T12:00:00.000Z", new Date(run.ended).toISOString(), "g2", "rotate", "web-1, web-2, web-3"]) {
        assert.ok(html.includes(text), `header shows ${text}`);
    }
    assert.match(html, /<th>Exit code<\/th><td>0<\/td>/);
    for (const line of run.audit) {
        assert.ok(html.includes(`>${line.time}<`), `audit line at ${line.time}`);
        assert.ok(html.includes(`>${line.phase}<`), `audit phase ${line.phase}`);
    }
    assert.ok(html.includes(`Audit lines appended by this run (${run.audit.length})`));
    assert.match(html, /operator=alice/);
    // The consumers' table: one row each with the duration of its rollout.
    for (const c of ["web-1", "web-2", "web-3"]) {
        const s = stepOf(run, `rollout/${c}`);
        assert.ok(html.includes(`<td>${SECRET}</td><td>${c}</td><td>ok</td><td>${((s.end! - s.start!) / 1000).toFixed(1)}</td>`), c);
    }
    assert.doesNotMatch(html, /What to do next/);
});

test("renderReport: a failed consumer's error is escaped, the next steps are shown and the window is still open", () => {
    const run = rotateRun({ failConsumer: "web-2" });
    const html = renderReport(run);
    assert.ok(!html.includes("<script"), "no script tag gets through");
    assert.ok(html.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;"));
    assert.ok(html.includes("Fix web-2 &amp; check its logs"));
    assert.ok(html.includes("error: update failed &lt;engine&gt;"));
    assert.match(html, /What to do next/);
    assert.ok(html.includes("<code>bin/rotate resume --stack dev</code>"));
    assert.equal(row(html, "rollout/web-2").attrs["data-outcome"], "failed");
    for (const id of ["gate", "revoke", "promote", "audit"]) {
        assert.equal(row(html, id).attrs["data-outcome"], "pending", id);
        assert.match(new RegExp(`data-step="${id}"[\\s\\S]*?</g>`).exec(html)![0], /not run/);
    }
    const [shade] = tags(html, 'data-role="dual-active"');
    assert.equal(Number(shade["data-start-ms"]), stepOf(run, "grant").end! - run.started);
    assert.equal(Number(shade["data-end-ms"]), run.ended - run.started);
    assert.equal(shade["data-open"], "true");
    assert.match(html, /still open: old and new both valid/);
});

test("renderReport: a rollback is shaded from the start to the withdrawal of the newer grant", () => {
    const run = rollbackRun();
    const html = renderReport(run);
    const [shade] = tags(html, 'data-role="dual-active"');
    const withdrawal = run.steps.find((s) => s.resource === `${SECRET}-grant-g2`)!;
    assert.equal(Number(shade["data-start-ms"]), 0);
    assert.equal(Number(shade["data-end-ms"]), withdrawal.end! - run.started);
    const c = chart(html);
    assert.equal(Number(shade.x), c.x0);
    assert.equal(Number(shade.x) + Number(shade.width), c.x0 + Math.round(((withdrawal.end! - run.started) / c.span) * c.width));
    assert.deepEqual(
        tags(html, 'data-phase="rollout"').map((r) => r["data-consumer"]),
        ["web-1", "web-2", "web-3"],
    );
    assert.match(html, /delete app-redis-grant-g2/);
    assert.equal(row(html, "grant-previous").attrs["data-outcome"], "unchanged");
    assert.doesNotMatch(html, /What to do next/);
});

test("renderReport: the file is self-contained and names its size", () => {
    for (const run of [rotateRun(), rotateRun({ failConsumer: "web-2" }), rollbackRun()]) {
        const html = renderReport(run);
        assert.doesNotMatch(html, /http|src=|url\(|@import|<link|<img|<script|<iframe/i);
        const body = tags(html, "data-width")[0];
        assert.deepEqual({ width: Number(body["data-width"]), height: Number(body["data-height"]) }, reportSize(run));
    }
});

test("renderReport: the stack's last drift check, or that there was none", () => {
    const none = renderReport(rotateRun());
    assert.match(none, /Last drift check<\/h2><p class="muted">none yet \(bin\/rotate check --stack dev\)/);
    const drift = renderReport({
        ...rotateRun(),
        lastCheck: {
            time: "2026-11-26T11:00:00.000Z",
            ok: false,
            off: [
                { secret: SECRET, consumer: "web-2", holds: "previous" },
                { secret: SECRET, consumer: "web-<3>", holds: "unreachable" },
            ],
        },
    });
    assert.match(drift, /2026-11-26T11:00:00\.000Z: drift found\./);
    assert.match(drift, /<td>web-2<\/td><td><span class="bad">previous<\/span><\/td>/);
    assert.ok(drift.includes("web-&lt;3&gt;") && !drift.includes("web-<3>"), "escaped");
    const clean = renderReport({ ...rotateRun(), lastCheck: { time: "2026-11-26T11:00:00.000Z", ok: true, off: [] } });
    assert.match(clean, /every consumer held the current secret/);
});

test("reportFileName and writeReport: a private file named by stack, start and command", () => {
    const run = rotateRun();
    assert.equal(reportFileName(run), "dev-20261126T120000Z-start.html");
    assert.equal(reportFileName({ ...run, stack: "../prod x" }), ".._prod_x-20261126T120000Z-start.html");
    const target = path.join(dir, "reports", "nested");
    const file = writeReport(run, target);
    assert.equal(file, path.join(target, "dev-20261126T120000Z-start.html"));
    assert.equal(fs.statSync(target).mode & 0o777, 0o700);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(file, "utf8"), renderReport(run));
});

const chromium = chromiumPath();
const noChromium = chromium ? false : "chromium is not installed (apt-get install -y --no-install-recommends chromium)";

function paint(run: RunRecord, name: string) {
    const file = writeReport(run, path.join(dir, name));
    const png = path.join(dir, `${name}.png`);
    const size = reportSize(run);
    screenshot(file, png, size);
    const seen = analyzePng(png, REPORT_COLORS);
    assert.deepEqual({ width: seen.width, height: seen.height }, size);
    return seen;
}

test("screenshot: Chromium paints one rollout band per consumer and the dual-active window", { skip: noChromium }, () => {
    const three = paint(rotateRun(), "three");
    assert.equal(three.rolloutBands, 3);
    assert.ok(three.shadingPixels > 0);
    const five = paint(rotateRun({ consumers: ["web-1", "web-2", "web-3", "web-4", "web-5"] }), "five");
    assert.equal(five.rolloutBands, 5);
    assert.ok(five.shadingPixels > 0);
});

test("screenshot: a failed consumer is not painted as rolled out; a rollback shows its window", { skip: noChromium }, () => {
    const failed = paint(rotateRun({ failConsumer: "web-2" }), "failed");
    assert.equal(failed.rolloutBands, 2);
    assert.ok(failed.shadingPixels > 0);
    const rollback = paint(rollbackRun(), "rollback");
    assert.equal(rollback.rolloutBands, 3);
    assert.ok(rollback.shadingPixels > 0);
});
