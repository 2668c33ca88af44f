/**
 * The run report: one self-contained HTML file (inline CSS and SVG, no
 * script, nothing fetched) that the on-call engineer attaches to the change
 * ticket. Written from the RunRecord alone, so it never holds a secret value;
 * every string of the record is escaped, since step errors quote remote stderr.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { RunRecord, RunSecret } from "./runRecord";
import { C, PAD, SVG_W, esc, failure, humanDuration, iso, lines, seconds, timeline, timelineGroups, took, type Group, type Part } from "./reportTimeline";

export { REPORT_COLORS } from "./reportTimeline";

const CSS = `*{box-sizing:border-box}
body{margin:0;padding:${PAD}px;font:14px/20px "DejaVu Sans",Verdana,Arial,sans-serif;color:${C.text};background:#fff}
main{width:${SVG_W}px}
h1{font-size:22px;line-height:30px;margin:0 0 12px}
h2{font-size:17px;line-height:24px;margin:28px 0 8px}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid ${C.grid};vertical-align:top;overflow-wrap:anywhere}
th{background:#f2f4f7;font-weight:600}
.mono,code{font-family:"DejaVu Sans Mono",Menlo,monospace;font-size:12px}
.badge{display:inline-block;padding:0 10px;border-radius:4px;color:#fff;font-size:15px;vertical-align:2px;margin-left:8px}
.b-succeeded{background:#2e7d32}.b-failed,.b-refused,.b-locked{background:${C.failed}}.b-rolled-back{background:#9a5b00}
.bad{fill:${C.failed};color:${C.failed}}
.muted{fill:${C.muted};color:${C.muted}}
svg text{font-size:13px;fill:${C.text}}
svg text.muted{fill:${C.muted}}svg text.bad{fill:${C.failed}}
.next{border-left:4px solid ${C.failed};padding:4px 16px 8px;background:#fbf3f4;margin-top:24px}
.next h2{margin-top:8px}
h3{font-size:15px;line-height:22px;margin:12px 0 4px}
.next li{margin:4px 0}
pre{margin:4px 0;white-space:pre-wrap;overflow-wrap:anywhere}`;

const ROW_PX = 29;
const CMD = /^(bin\/|\.\/|pulumi |npm |node )/;
const outcomeCell = (o: unknown) => (o === "failed" ? `<span class="bad">failed</span>` : o === "pending" ? "not run" : esc(o));

function table(head: string[], widths: number[], rows: string[][], mono: number[] = []): Part {
    const cols = widths.map((w) => `<col style="width:${w}px">`).join("");
    const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${mono.includes(i) ? ` class="mono"` : ""}>${c}</td>`).join("")}</tr>`).join("");
    return {
        html: `<table><colgroup>${cols}</colgroup><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>${body}</table>`,
        height: ROW_PX * (rows.length + 1),
    };
}

function header(run: RunRecord): Part {
    const pairs = [
        ["Stack", esc(run.stack), "Command", esc(run.command), "Outcome", esc(run.outcome), "Exit code", String(run.exitCode)],
        ["Started", iso(run.started), "Ended", iso(run.ended), "Duration", humanDuration(run.ended - run.started), "Run", esc(run.id)],
    ];
    const cols = [100, 240, 100, 240, 100, 130, 100, 250].map((w) => `<col style="width:${w}px">`).join("");
    const rows = pairs.map((r) => `<tr>${r.map((c, i) => (i % 2 ? `<td>${c}</td>` : `<th>${c}</th>`)).join("")}</tr>`).join("");
    return {
        html:
            `<h1>Secret rotation · ${esc(run.stack)} · ${esc(run.command)}<span class="badge b-${esc(run.outcome)}">${esc(run.outcome)}</span></h1>\n` +
            `<table class="meta"><colgroup>${cols}</colgroup>${rows}</table>`,
        height: 42 + 2 * ROW_PX + 20,
    };
}

/** The reason, the note and the ceremony's witnesses, in words. */
export const whyOf = (s: RunRecord["secrets"][number]) =>
    [
        s.reason ?? "",
        s.note ? `"${s.note}"` : "",
        s.approval
            ? s.approval.requester
                ? `requested by ${s.approval.requester}, approved by ${s.approval.approver} (request ${s.approval.request})`
                : `ceremony request ${s.approval.request}`
            : "",
    ]
        .filter(Boolean)
        .join(" · ") || "—";

/** The consumers, each not on a host with its kind (a CI secret store): "web-1, ci (gitea-actions)". */
const consumerNames = (s: RunSecret) => s.consumers.map((c) => (s.consumerKinds?.[c] ? `${c} (${s.consumerKinds[c]})` : c)).join(", ");

function secretsTable(run: RunRecord): Part {
    const t = table(
        ["Secret", "Generation", "Mode", "Consumers", "Why", "After"],
        [200, 100, 90, 420, 360, 90],
        run.secrets.map((s) => [
            esc(s.name),
            s.mode === "rollback" ? `g${s.generation} (taken back)` : `g${s.generation}`,
            esc(s.mode),
            `${s.consumers.length}: ${esc(consumerNames(s))}`,
            esc(whyOf(s)),
            esc(s.after.join(", ") || "—"),
        ]),
    );
    return {
        html: t.html,
        height: t.height + run.secrets.reduce((n, s) => n + 20 * (Math.max(lines(consumerNames(s), 400), lines(whyOf(s), 340)) - 1), 0),
    };
}

function nextSteps(run: RunRecord): Part {
    const failed = run.steps.filter((s) => s.outcome === "failed").map((s) => `${s.secret} · ${s.step} (${s.resource}): ${s.error ?? "no error recorded"}`);
    const item = (t: string) => `<li>${CMD.test(t) ? `<code>${esc(t)}</code>` : esc(t)}</li>`;
    const pre = (t: string) => `<pre class="mono">${esc(t)}</pre>`;
    const html =
        (run.next.length ? `<ol>${run.next.map(item).join("")}</ol>` : `<p>No next step recorded.</p>`) +
        (failed.length ? `<h3>Failed steps</h3>${failed.map(pre).join("")}` : "") +
        (run.errors.length ? `<h3>Errors</h3>${run.errors.map(pre).join("")}` : "");
    const textLines = [...run.next, ...failed, ...run.errors].reduce((n, t) => n + lines(t, SVG_W - 80), 0);
    return { html, height: 40 + 26 * textLines + 60 * (Number(failed.length > 0) + Number(run.errors.length > 0)) };
}

function consumersTable(groups: Group[]): Part {
    const rollouts = groups.flatMap((g) => g.rows.filter((s) => s.phase === "rollout"));
    const t = table(
        ["Secret", "Consumer", "Outcome", "Duration (s)", "Error"],
        [180, 180, 110, 130, 660],
        rollouts.map((s) => [
            esc(s.secret),
            esc(s.consumer ?? s.step),
            outcomeCell(s.outcome),
            took(s) === undefined ? "—" : seconds(took(s)!),
            esc(s.error ?? ""),
        ]),
        [4],
    );
    return { html: t.html, height: t.height + rollouts.reduce((n, s) => n + 20 * (lines(s.error ?? "", 640, 7.5) - 1), 0) };
}

/** Verification 3: each logged consumer's auth failures (a journal's errors) after the revocation, 0 included. */
function authFailuresTable(rows: NonNullable<RunRecord["authFailures"]>): Part {
    const since = (r: (typeof rows)[number]) =>
        r.since === "revocation"
            ? `the revocation (the gate noted the ${r.journal ? "journal's cursor" : "log's size"})`
            : "the check's start (the gate ran in an earlier run)";
    const count = (r: (typeof rows)[number]) =>
        r.count === null ? `<span class="bad">not searched</span>` : r.count > 0 ? `<span class="bad">${r.count}</span>` : "0";
    return table(
        ["Secret", "Generation", "Consumer", "Auth failures", "Counted since", "In"],
        [200, 100, 230, 130, 450, 150],
        rows.map((r) => [esc(r.secret), `g${r.generation}`, esc(r.consumer), count(r), since(r), r.journal ? "unit journal" : "log file"]),
    );
}

/** rotation:notify: every delivery of the run's events; a failed one in red, with why each try failed. */
function notificationsTable(rows: NonNullable<RunRecord["notifications"]>): Part {
    const t = table(
        ["Sink", "Event", "Request", "Secret", "Outcome", "Tries", "Seconds", "Why a try failed"],
        [130, 170, 130, 170, 100, 60, 80, 450],
        rows.map((d) => [
            esc(d.sink),
            esc(d.event),
            esc(d.action),
            esc(d.secret ? `${d.secret} g${d.generation}` : "—"),
            d.outcome === "failed" ? `<span class="bad">failed</span>` : "delivered",
            String(d.attempts),
            d.seconds.toFixed(1),
            esc(d.error ?? ""),
        ]),
    );
    return { html: t.html, height: t.height + rows.reduce((n, d) => n + 20 * (lines(d.error ?? "", 430, 7.5) - 1), 0) };
}

const AUDIT_COLUMNS = ["time", "secret", "generation", "phase", "outcome", "consumer"];

/** Every field of an audit line the columns do not show, the chain's hashes shortened. */
function otherFields(line: Record<string, unknown>): string {
    return Object.entries(line)
        .filter(([k]) => !AUDIT_COLUMNS.includes(k))
        .map(([k, v]) => {
            const text = typeof v === "string" ? v : JSON.stringify(v);
            return `${k}=${(k === "prev" || k === "hash") && text.length > 14 ? `${text.slice(0, 12)}…` : text}`;
        })
        .join("  ");
}

function auditTable(run: RunRecord): Part {
    if (!run.audit.length) return { html: "<p>None.</p>", height: 20 };
    const t = table(
        [...AUDIT_COLUMNS.map((k) => k[0].toUpperCase() + k.slice(1)), "Other fields"],
        [200, 130, 110, 170, 90, 110, 450],
        run.audit.map((line) => [
            ...AUDIT_COLUMNS.map((k) => (line[k] === undefined ? "" : k === "outcome" ? outcomeCell(line[k]) : esc(line[k]))),
            esc(otherFields(line)),
        ]),
        [0, 6],
    );
    const wraps = run.audit.reduce((n, l) => n + Math.max(lines(otherFields(l), 430, 7.5), lines(String(l.phase ?? ""), 150)) - 1, 0);
    return { html: t.html, height: t.height + 20 * wraps };
}

/** What the pre-flight steps (the first of each rotation that ran) checked before anything of it ran. */
function preflightPart(p: NonNullable<RunRecord["preflight"]>): Part {
    const verdict = p.ok ? "all clear" : `<span class="bad">${p.problems.length} problem(s)</span>`;
    const head = `<p>${p.consumers} consumer(s) (host key, config file and key, reload program, free space), the source's admin credential and the store: ${verdict} in ${p.seconds.toFixed(1)} s.</p>`;
    if (p.ok) return { html: head, height: 30 };
    const t = table(
        ["Secret", "Where", "Problem"],
        [200, 250, 800],
        p.problems.map((x) => [esc(x.secret), esc(x.at), esc(x.problem)]),
    );
    return { html: head + t.html, height: 30 + t.height };
}

/** The stack's last `bin/rotate check`: when, and every consumer that was not on the current secret. */
function lastCheck(run: RunRecord): Part {
    const c = run.lastCheck;
    if (!c) return { html: `<p class="muted">none yet (bin/rotate check --stack ${esc(run.stack)})</p>`, height: 30 };
    if (c.ok) return { html: `<p>${esc(c.time)}: every consumer held the current secret, and the source rejected the previous one.</p>`, height: 30 };
    const t = table(
        ["Secret", "Consumer", "Holds"],
        [300, 400, 300],
        c.off.map((o) => [esc(o.secret), esc(o.consumer), `<span class="bad">${esc(o.holds)}</span>`]),
    );
    return { html: `<p>${esc(c.time)}: drift found.</p>${t.html}`, height: 30 + t.height };
}

/** The report and the window size that shows all of it. */
function build(run: RunRecord): { html: string; width: number; height: number } {
    const groups = timelineGroups(run);
    const section = (title: string, p: Part, cls = ""): Part => ({ html: `<section${cls}><h2>${title}</h2>${p.html}</section>`, height: 60 + p.height });
    const parts = [
        header(run),
        section("Secrets", secretsTable(run)),
        ...(run.preflight ? [section("Pre-flight", preflightPart(run.preflight))] : []),
        ...(failure(run) ? [section("What to do next", nextSteps(run), ` class="next"`)] : []),
        section("Timeline", timeline(run, groups)),
        section("Consumers", consumersTable(groups)),
        ...(run.authFailures ? [section("After the revocation: auth failures in consumer logs", authFailuresTable(run.authFailures))] : []),
        ...(run.notifications ? [section("Notifications", notificationsTable(run.notifications))] : []),
        section(`Audit lines appended by this run (${run.audit.length})`, auditTable(run)),
        section("Last drift check", lastCheck(run)),
    ];
    const width = SVG_W + 2 * PAD;
    const height = Math.ceil((2 * PAD + parts.reduce((n, p) => n + p.height, 0)) * 1.05) + 40;
    const html =
        `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>${esc(`${run.stack} ${run.command}: ${run.outcome}`)}</title>` +
        `<style>${CSS}</style></head>\n<body data-width="${width}" data-height="${height}"><main>\n${parts.map((p) => p.html).join("\n")}\n</main></body></html>\n`;
    return { html, width, height };
}

export function renderReport(run: RunRecord): string {
    return build(run).html;
}

/** The window a screenshot needs to show every row of the report (also on `<body>` as data-width/data-height). */
export function reportSize(run: RunRecord): { width: number; height: number } {
    const { width, height } = build(run);
    return { width, height };
}

/** "<stack>-<UTC start, compact>-<command>.html", e.g. "dev-20261126T120000Z-start.html". */
export function reportFileName(run: RunRecord): string {
    const when = new Date(run.started)
        .toISOString()
        .replace(/\.\d+Z$/, "Z")
        .replace(/[-:]/g, "");
    const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, "_");
    return `${safe(run.stack)}-${when}-${safe(run.command)}.html`;
}

/** Writes the report into `dir` (created 0700 if missing) as a 0600 file; returns its path. */
export function writeReport(run: RunRecord, dir: string): string {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, reportFileName(run));
    fs.writeFileSync(file, renderReport(run), { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    return file;
}
