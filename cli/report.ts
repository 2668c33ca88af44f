/**
 * The run report: one self-contained HTML file (inline CSS and SVG, no
 * script, nothing fetched) that the on-call engineer attaches to the change
 * ticket. Written from the RunRecord alone, so it never holds a secret value;
 * every string of the record is escaped, since step errors quote remote stderr.
 */
import * as fs from "fs";
import * as path from "path";
import { rotationPlan } from "../lib/plan";
import type { RunRecord, RunSecret, StepRecord } from "./runRecord";

/**
 * `rollout` (a consumer rolled out) and `shading` (the dual-active window)
 * are painted by nothing else, not even the legend (its swatches are
 * translucent), so a screenshot can count consumer bars and find the window.
 */
export const REPORT_COLORS = {
    rollout: "#1b9e77",
    shading: "#fdf0c2",
    ok: "#4a7fc1",
    failed: "#c8102e",
    running: "#e69f00",
    unchanged: "#8a96a3",
    text: "#1d2733",
    muted: "#5b6673",
    grid: "#e4e8ee",
    axis: "#9aa4b0",
} as const;
const C = REPORT_COLORS;

const PAD = 24;
const LABEL_W = 270;
const CHART_W = 860;
const STATUS_W = 130;
const SVG_W = LABEL_W + CHART_W + STATUS_W;
const AXIS_H = 30;
const GROUP_H = 26;
const ROW_H = 24;
const BAR_H = 14;
const GROUP_GAP = 10;
const LEGEND_H = 34;
/** A consumer's bar is never thinner than this: a 2 s rollout in a 10 min run would be a sliver nobody sees. */
const MIN_ROLLOUT_PX = 24;
const MIN_BAR_PX = 4;

const esc = (v: unknown): string =>
    (typeof v === "string" ? v : v !== null && typeof v === "object" ? JSON.stringify(v) : String(v)).replace(
        /[&<>"']/g,
        (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
    );
const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : "—");
const seconds = (ms: number) => (ms / 1000).toFixed(1);
function humanDuration(ms: number): string {
    if (ms < 60_000) return `${seconds(ms)} s`;
    const s = Math.round(ms / 1000);
    return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}
const took = (s: StepRecord) => (s.start !== undefined && s.end !== undefined ? s.end - s.start : undefined);
const failure = (run: RunRecord) => run.exitCode !== 0 || ["failed", "refused", "locked"].includes(run.outcome);
/** How many lines `text` wraps to in a column `px` wide (a generous guess: the page height is computed, not measured). */
const lines = (text: string, px: number, charPx = 8) =>
    text.split("\n").reduce((n, l) => n + Math.max(1, Math.ceil((l.length * charPx) / px)), 0);

interface Group {
    name: string;
    secret?: RunSecret;
    rows: StepRecord[];
}

/** One group per secret; its rows in plan order, a plan step the engine never reached as "pending", then steps outside the plan. */
function timelineGroups(run: RunRecord): Group[] {
    const byStart = (a: StepRecord, b: StepRecord) => (a.start ?? Infinity) - (b.start ?? Infinity);
    const groups: Group[] = run.secrets.map((secret) => {
        const mine = run.steps.filter((s) => s.secret === secret.name);
        const plan = rotationPlan({ mode: secret.mode, consumers: secret.consumers.map((name) => ({ name })) });
        const rows = plan.flatMap((p): StepRecord[] => {
            const found = mine.filter((s) => s.step === p.id);
            return found.length ? found : [{ secret: secret.name, step: p.id, phase: p.phase, ...(p.consumer ? { consumer: p.consumer } : {}), resource: "", outcome: "pending" }];
        });
        const ids = new Set(plan.map((p) => p.id));
        return { name: secret.name, secret, rows: [...rows, ...mine.filter((s) => !ids.has(s.step)).sort(byStart)] };
    });
    for (const s of run.steps) {
        if (groups.some((g) => g.name === s.secret)) continue;
        groups.push({ name: s.secret, rows: run.steps.filter((x) => x.secret === s.secret).sort(byStart) });
    }
    return groups;
}

interface Scale {
    t0: number;
    span: number;
    x: (ms: number) => number;
}

function scaleOf(run: RunRecord): Scale {
    const t0 = run.started;
    const last = Math.max(run.ended, ...run.steps.map((s) => s.end ?? s.start ?? t0));
    const span = Math.max(last - t0, 1000);
    return { t0, span, x: (ms) => LABEL_W + Math.round((Math.min(Math.max(ms - t0, 0), span) / span) * CHART_W) };
}

interface Window {
    start: number;
    end: number;
    open: boolean;
}

/**
 * When old and new were both valid during this run: in a rotation from the
 * grant to the revocation, in a rollback from the start until the newer
 * grant is withdrawn. Undefined when the window never opened here.
 */
function dualActive(run: RunRecord, secret: RunSecret, steps: StepRecord[]): Window | undefined {
    const done = (s: StepRecord | undefined): s is StepRecord & { end: number } => s?.outcome === "ok" && s.end !== undefined;
    const until = (s: StepRecord | undefined, start: number): Window =>
        done(s) ? { start, end: s.end, open: false } : { start, end: run.ended, open: true };
    if (secret.mode === "rollback") {
        const withdrawals = steps.filter((s) => s.phase === "other" && s.op === "delete" && s.resource.includes("-grant-g"));
        return until(withdrawals.find((s) => s.resource.endsWith(`-grant-g${secret.generation}`)) ?? withdrawals[0], run.started);
    }
    const grant = steps.find((s) => s.step === "grant");
    const revoke = steps.find((s) => s.step === "revoke");
    if (revoke?.outcome === "unchanged") return undefined; // revoked by an earlier run
    if (grant?.outcome === "unchanged") return until(revoke, run.started);
    if (done(grant)) return until(revoke, grant.end);
    // An interrupted grant may have reached the source: assume the window opened.
    if (grant?.outcome === "running" && grant.start !== undefined) return until(revoke, grant.start);
    return undefined;
}

function stepRow(run: RunRecord, s: StepRecord, y: number, sc: Scale): string {
    const name = s.phase === "other" ? `${s.op ?? "change"} ${s.resource}` : s.step;
    const shown = name.length > 34 ? `${name.slice(0, 33)}…` : name;
    const d = took(s);
    const tip = [s.resource, s.op, s.start !== undefined ? `${iso(s.start)} → ${s.end !== undefined ? iso(s.end) : "…"}` : "never started", s.error].filter(Boolean).join("\n");
    const by = y + (ROW_H - BAR_H) / 2;
    const rollout = s.phase === "rollout";
    let mark: string;
    if (s.outcome === "pending") {
        mark = `<text x="${LABEL_W + 8}" y="${y + 16}" class="muted" font-style="italic">not run</text>`;
    } else if (s.outcome === "unchanged") {
        mark = `<rect x="${sc.x(s.start ?? run.started)}" y="${by}" width="3" height="${BAR_H}" fill="${C.unchanged}"/>`;
    } else {
        const from = sc.x(s.start ?? run.started);
        const to = sc.x(s.end ?? (s.outcome === "running" ? run.ended : s.start ?? run.started));
        const w = Math.max(to - from, rollout ? MIN_ROLLOUT_PX : MIN_BAR_PX);
        const x = Math.min(from, LABEL_W + CHART_W - w);
        const fill = s.outcome === "ok" ? (rollout ? C.rollout : C.ok) : s.outcome === "failed" ? C.failed : C.running;
        mark = `<rect class="bar" x="${x}" y="${by}" width="${w}" height="${BAR_H}" fill="${fill}"/>`;
    }
    const word = s.outcome === "pending" ? "not run" : s.outcome;
    const status = d !== undefined && s.outcome !== "unchanged" ? `${word} · ${seconds(d)} s` : word;
    const attrs = `class="row" data-secret="${esc(s.secret)}" data-step="${esc(s.step)}" data-phase="${esc(s.phase)}" data-outcome="${s.outcome}"` +
        (s.consumer ? ` data-consumer="${esc(s.consumer)}"` : "");
    return `<g ${attrs}><title>${esc(tip)}</title>` +
        `<text x="${LABEL_W - 10}" y="${y + 16}" text-anchor="end">${esc(shown)}</text>${mark}` +
        `<text x="${LABEL_W + CHART_W + 10}" y="${y + 16}" class="${s.outcome === "failed" ? "bad" : "muted"}">${esc(status)}</text></g>`;
}

function shade(name: string, w: Window, top: number, bottom: number, sc: Scale): string {
    const x = sc.x(w.start);
    const width = Math.max(sc.x(w.end) - x, 2);
    const label = w.open ? "dual-active · still open: old and new both valid" : "dual-active";
    const right = x > LABEL_W + CHART_W / 2;
    return `<rect data-role="dual-active" data-secret="${esc(name)}" data-start-ms="${w.start - sc.t0}" data-end-ms="${w.end - sc.t0}" data-open="${w.open}" ` +
        `x="${x}" y="${top}" width="${width}" height="${bottom - top}" fill="${C.shading}"/>` +
        `<text x="${right ? x + width - 6 : x + 6}" y="${top + 17}" text-anchor="${right ? "end" : "start"}" class="${w.open ? "bad" : "muted"}">${label}</text>`;
}

function axis(sc: Scale, bottom: number): string {
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].find((s) => sc.span / 1000 / s <= 12) ?? 7200;
    const out = [`<line x1="${LABEL_W}" x2="${LABEL_W + CHART_W}" y1="${AXIS_H - 0.5}" y2="${AXIS_H - 0.5}" stroke="${C.axis}"/>`];
    if (step > 1 && sc.span <= 180_000) {
        for (let t = 1000; t <= sc.span; t += 1000) out.push(`<line x1="${sc.x(sc.t0 + t) + 0.5}" x2="${sc.x(sc.t0 + t) + 0.5}" y1="${AXIS_H - 4}" y2="${AXIS_H}" stroke="${C.axis}"/>`);
    }
    for (let t = 0; t <= sc.span; t += step * 1000) {
        const x = sc.x(sc.t0 + t) + 0.5;
        const label = t < 60_000 ? `${t / 1000} s` : `${Math.floor(t / 60_000)} min${t % 60_000 ? ` ${(t % 60_000) / 1000} s` : ""}`;
        out.push(`<line x1="${x}" x2="${x}" y1="${AXIS_H - 8}" y2="${bottom}" stroke="${C.grid}"/>`,
            `<text x="${x}" y="14" text-anchor="middle" class="muted">${label}</text>`);
    }
    return out.join("");
}

function legend(y: number): string {
    const items: [string, string][] = [
        [C.rollout, "consumer rolled out"], [C.ok, "step done"], [C.failed, "failed"], [C.running, "running when the run ended"],
        [C.unchanged, "unchanged (nothing to do)"], ["none", "not run"], [C.shading, "dual-active window"],
    ];
    let x = 8;
    return items.map(([color, text]) => {
        const s = `<rect x="${x}" y="${y + 11}" width="14" height="10" fill="${color}" fill-opacity="0.7" stroke="${C.axis}"/>` +
            `<text x="${x + 20}" y="${y + 20}" class="muted">${text}</text>`;
        x += 32 + text.length * 7.5;
        return s;
    }).join("");
}

function timeline(run: RunRecord, groups: Group[]): Part {
    const sc = scaleOf(run);
    const shades: string[] = [];
    const rows: string[] = [];
    let y = AXIS_H + 4;
    for (const g of groups) {
        const top = y;
        const title = g.secret ? `${g.name} · g${g.secret.generation} · ${g.secret.mode}` : `${g.name} (not in this run's plan)`;
        rows.push(`<text x="8" y="${y + 18}" font-weight="bold">${esc(title)}</text>`);
        y += GROUP_H;
        for (const s of g.rows) {
            rows.push(stepRow(run, s, y, sc));
            y += ROW_H;
        }
        const w = g.secret && dualActive(run, g.secret, g.rows);
        if (w) shades.push(shade(g.name, w, top, y, sc));
        y += GROUP_GAP;
    }
    const height = y + LEGEND_H;
    const html = `<svg width="${SVG_W}" height="${height}" viewBox="0 0 ${SVG_W} ${height}" role="img" aria-label="timeline of the run" ` +
        `data-chart-x="${LABEL_W}" data-chart-width="${CHART_W}" data-span-ms="${sc.span}" shape-rendering="crispEdges">` +
        shades.join("") + axis(sc, y - GROUP_GAP) + rows.join("") + legend(y) + `</svg>`;
    return { html, height };
}

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

/** A section's markup and a generous guess of its height: the page height is computed, not measured. */
interface Part {
    html: string;
    height: number;
}

function table(head: string[], widths: number[], rows: string[][], mono: number[] = []): Part {
    const cols = widths.map((w) => `<col style="width:${w}px">`).join("");
    const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${mono.includes(i) ? ` class="mono"` : ""}>${c}</td>`).join("")}</tr>`).join("");
    return { html: `<table><colgroup>${cols}</colgroup><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>${body}</table>`, height: ROW_PX * (rows.length + 1) };
}

function header(run: RunRecord): Part {
    const pairs = [["Stack", esc(run.stack), "Command", esc(run.command), "Outcome", esc(run.outcome), "Exit code", String(run.exitCode)],
        ["Started", iso(run.started), "Ended", iso(run.ended), "Duration", humanDuration(run.ended - run.started), "Run", esc(run.id)]];
    const cols = [100, 240, 100, 240, 100, 130, 100, 250].map((w) => `<col style="width:${w}px">`).join("");
    const rows = pairs.map((r) => `<tr>${r.map((c, i) => (i % 2 ? `<td>${c}</td>` : `<th>${c}</th>`)).join("")}</tr>`).join("");
    return {
        html: `<h1>Secret rotation · ${esc(run.stack)} · ${esc(run.command)}<span class="badge b-${esc(run.outcome)}">${esc(run.outcome)}</span></h1>\n` +
            `<table class="meta"><colgroup>${cols}</colgroup>${rows}</table>`,
        height: 42 + 2 * ROW_PX + 20,
    };
}

function secretsTable(run: RunRecord): Part {
    const t = table(["Secret", "Generation", "Mode", "Consumers", "After"], [220, 110, 110, 520, 300],
        run.secrets.map((s) => [esc(s.name), s.mode === "rollback" ? `g${s.generation} (taken back)` : `g${s.generation}`, esc(s.mode), esc(s.consumers.join(", ")), esc(s.after.join(", ") || "—")]));
    return { html: t.html, height: t.height + run.secrets.reduce((n, s) => n + 20 * (lines(s.consumers.join(", "), 500) - 1), 0) };
}

function nextSteps(run: RunRecord): Part {
    const failed = run.steps.filter((s) => s.outcome === "failed").map((s) => `${s.secret} · ${s.step} (${s.resource}): ${s.error ?? "no error recorded"}`);
    const item = (t: string) => `<li>${CMD.test(t) ? `<code>${esc(t)}</code>` : esc(t)}</li>`;
    const pre = (t: string) => `<pre class="mono">${esc(t)}</pre>`;
    const html = (run.next.length ? `<ol>${run.next.map(item).join("")}</ol>` : `<p>No next step recorded.</p>`) +
        (failed.length ? `<h3>Failed steps</h3>${failed.map(pre).join("")}` : "") +
        (run.errors.length ? `<h3>Errors</h3>${run.errors.map(pre).join("")}` : "");
    const textLines = [...run.next, ...failed, ...run.errors].reduce((n, t) => n + lines(t, SVG_W - 80), 0);
    return { html, height: 40 + 26 * textLines + 60 * (Number(failed.length > 0) + Number(run.errors.length > 0)) };
}

function consumersTable(groups: Group[]): Part {
    const rollouts = groups.flatMap((g) => g.rows.filter((s) => s.phase === "rollout"));
    const t = table(["Secret", "Consumer", "Outcome", "Duration (s)", "Error"], [180, 180, 110, 130, 660],
        rollouts.map((s) => [esc(s.secret), esc(s.consumer ?? s.step), outcomeCell(s.outcome), took(s) === undefined ? "—" : seconds(took(s)!), esc(s.error ?? "")]), [4]);
    return { html: t.html, height: t.height + rollouts.reduce((n, s) => n + 20 * (lines(s.error ?? "", 640, 7.5) - 1), 0) };
}

const AUDIT_COLUMNS = ["time", "secret", "generation", "phase", "outcome", "consumer"];

/** Every field of an audit line the columns do not show, the chain's hashes shortened. */
function otherFields(line: Record<string, unknown>): string {
    return Object.entries(line).filter(([k]) => !AUDIT_COLUMNS.includes(k)).map(([k, v]) => {
        const text = typeof v === "string" ? v : JSON.stringify(v);
        return `${k}=${(k === "prev" || k === "hash") && text.length > 14 ? `${text.slice(0, 12)}…` : text}`;
    }).join("  ");
}

function auditTable(run: RunRecord): Part {
    if (!run.audit.length) return { html: "<p>None.</p>", height: 20 };
    const t = table([...AUDIT_COLUMNS.map((k) => k[0].toUpperCase() + k.slice(1)), "Other fields"], [200, 130, 110, 170, 90, 110, 450],
        run.audit.map((line) => [...AUDIT_COLUMNS.map((k) => (line[k] === undefined ? "" : k === "outcome" ? outcomeCell(line[k]) : esc(line[k]))), esc(otherFields(line))]), [0, 6]);
    const wraps = run.audit.reduce((n, l) => n + Math.max(lines(otherFields(l), 430, 7.5), lines(String(l.phase ?? ""), 150)) - 1, 0);
    return { html: t.html, height: t.height + 20 * wraps };
}

/** The report and the window size that shows all of it. */
function build(run: RunRecord): { html: string; width: number; height: number } {
    const groups = timelineGroups(run);
    const section = (title: string, p: Part, cls = ""): Part => ({ html: `<section${cls}><h2>${title}</h2>${p.html}</section>`, height: 60 + p.height });
    const parts = [
        header(run),
        section("Secrets", secretsTable(run)),
        ...(failure(run) ? [section("What to do next", nextSteps(run), ` class="next"`)] : []),
        section("Timeline", timeline(run, groups)),
        section("Consumers", consumersTable(groups)),
        section(`Audit lines appended by this run (${run.audit.length})`, auditTable(run)),
    ];
    const width = SVG_W + 2 * PAD;
    const height = Math.ceil((2 * PAD + parts.reduce((n, p) => n + p.height, 0)) * 1.05) + 40;
    const html = `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>${esc(`${run.stack} ${run.command}: ${run.outcome}`)}</title>` +
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
    const when = new Date(run.started).toISOString().replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "");
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
