/**
 * The report's timeline (a Gantt chart as inline SVG) and what the rest of
 * the report shares with it: colors, escaping, durations, the page's sizes.
 */
import { type RunRecord, type RunSecret, type StepRecord, planOfRun } from "./runRecord";

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
export const C = REPORT_COLORS;

export const PAD = 24;
const LABEL_W = 270;
const CHART_W = 860;
const STATUS_W = 130;
export const SVG_W = LABEL_W + CHART_W + STATUS_W;
const AXIS_H = 30;
const GROUP_H = 26;
const ROW_H = 24;
const BAR_H = 14;
const GROUP_GAP = 10;
const LEGEND_H = 34;
/** A consumer's bar is never thinner than this: a 2 s rollout in a 10 min run would be a sliver nobody sees. */
const MIN_ROLLOUT_PX = 24;
const MIN_BAR_PX = 4;

export const esc = (v: unknown): string =>
    (typeof v === "string" ? v : v !== null && typeof v === "object" ? JSON.stringify(v) : String(v)).replace(
        /[&<>"']/g,
        (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
    );
export const iso = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : "—");
export const seconds = (ms: number) => (ms / 1000).toFixed(1);
export function humanDuration(ms: number): string {
    if (ms < 60_000) return `${seconds(ms)} s`;
    const s = Math.round(ms / 1000);
    return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}
export const took = (s: StepRecord) => (s.start !== undefined && s.end !== undefined ? s.end - s.start : undefined);
export const failure = (run: RunRecord) => run.exitCode !== 0 || ["failed", "refused", "locked"].includes(run.outcome);
/** How many lines `text` wraps to in a column `px` wide (a generous guess: the page height is computed, not measured). */
export const lines = (text: string, px: number, charPx = 8) => text.split("\n").reduce((n, l) => n + Math.max(1, Math.ceil((l.length * charPx) / px)), 0);

export interface Group {
    name: string;
    secret?: RunSecret;
    rows: StepRecord[];
}

/** One group per secret; its rows in plan order, a plan step the engine never reached as "pending", then steps outside the plan. */
export function timelineGroups(run: RunRecord): Group[] {
    const byStart = (a: StepRecord, b: StepRecord) => (a.start ?? Infinity) - (b.start ?? Infinity);
    const groups: Group[] = run.secrets.map((secret) => {
        const mine = run.steps.filter((s) => s.secret === secret.name);
        const plan = planOfRun(secret);
        const rows = plan.flatMap((p): StepRecord[] => {
            const found = mine.filter((s) => s.step === p.id);
            return found.length
                ? found
                : [{ secret: secret.name, step: p.id, phase: p.phase, ...(p.consumer ? { consumer: p.consumer } : {}), resource: "", outcome: "pending" }];
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
    const until = (s: StepRecord | undefined, start: number): Window => (done(s) ? { start, end: s.end, open: false } : { start, end: run.ended, open: true });
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
    const tip = [s.resource, s.op, s.start !== undefined ? `${iso(s.start)} → ${s.end !== undefined ? iso(s.end) : "…"}` : "never started", s.error]
        .filter(Boolean)
        .join("\n");
    const by = y + (ROW_H - BAR_H) / 2;
    const rollout = s.phase === "rollout";
    let mark: string;
    if (s.outcome === "pending") {
        mark = `<text x="${LABEL_W + 8}" y="${y + 16}" class="muted" font-style="italic">not run</text>`;
    } else if (s.outcome === "unchanged") {
        mark = `<rect x="${sc.x(s.start ?? run.started)}" y="${by}" width="3" height="${BAR_H}" fill="${C.unchanged}"/>`;
    } else {
        const from = sc.x(s.start ?? run.started);
        const to = sc.x(s.end ?? (s.outcome === "running" ? run.ended : (s.start ?? run.started)));
        const w = Math.max(to - from, rollout ? MIN_ROLLOUT_PX : MIN_BAR_PX);
        const x = Math.min(from, LABEL_W + CHART_W - w);
        const fill = s.outcome === "ok" ? (rollout ? C.rollout : C.ok) : s.outcome === "failed" ? C.failed : C.running;
        mark = `<rect class="bar" x="${x}" y="${by}" width="${w}" height="${BAR_H}" fill="${fill}"/>`;
    }
    const word = s.outcome === "pending" ? "not run" : s.outcome;
    const status = d !== undefined && s.outcome !== "unchanged" ? `${word} · ${seconds(d)} s` : word;
    const attrs =
        `class="row" data-secret="${esc(s.secret)}" data-step="${esc(s.step)}" data-phase="${esc(s.phase)}" data-outcome="${s.outcome}"` +
        (s.consumer ? ` data-consumer="${esc(s.consumer)}"` : "");
    return (
        `<g ${attrs}><title>${esc(tip)}</title>` +
        `<text x="${LABEL_W - 10}" y="${y + 16}" text-anchor="end">${esc(shown)}</text>${mark}` +
        `<text x="${LABEL_W + CHART_W + 10}" y="${y + 16}" class="${s.outcome === "failed" ? "bad" : "muted"}">${esc(status)}</text></g>`
    );
}

function shade(name: string, w: Window, top: number, bottom: number, sc: Scale): string {
    const x = sc.x(w.start);
    const width = Math.max(sc.x(w.end) - x, 2);
    const label = w.open ? "dual-active · still open: old and new both valid" : "dual-active";
    const right = x > LABEL_W + CHART_W / 2;
    return (
        `<rect data-role="dual-active" data-secret="${esc(name)}" data-start-ms="${w.start - sc.t0}" data-end-ms="${w.end - sc.t0}" data-open="${w.open}" ` +
        `x="${x}" y="${top}" width="${width}" height="${bottom - top}" fill="${C.shading}"/>` +
        `<text x="${right ? x + width - 6 : x + 6}" y="${top + 17}" text-anchor="${right ? "end" : "start"}" class="${w.open ? "bad" : "muted"}">${label}</text>`
    );
}

function axis(sc: Scale, bottom: number): string {
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600].find((s) => sc.span / 1000 / s <= 12) ?? 7200;
    const out = [`<line x1="${LABEL_W}" x2="${LABEL_W + CHART_W}" y1="${AXIS_H - 0.5}" y2="${AXIS_H - 0.5}" stroke="${C.axis}"/>`];
    if (step > 1 && sc.span <= 180_000) {
        for (let t = 1000; t <= sc.span; t += 1000)
            out.push(`<line x1="${sc.x(sc.t0 + t) + 0.5}" x2="${sc.x(sc.t0 + t) + 0.5}" y1="${AXIS_H - 4}" y2="${AXIS_H}" stroke="${C.axis}"/>`);
    }
    for (let t = 0; t <= sc.span; t += step * 1000) {
        const x = sc.x(sc.t0 + t) + 0.5;
        const label = t < 60_000 ? `${t / 1000} s` : `${Math.floor(t / 60_000)} min${t % 60_000 ? ` ${(t % 60_000) / 1000} s` : ""}`;
        out.push(
            `<line x1="${x}" x2="${x}" y1="${AXIS_H - 8}" y2="${bottom}" stroke="${C.grid}"/>`,
            `<text x="${x}" y="14" text-anchor="middle" class="muted">${label}</text>`,
        );
    }
    return out.join("");
}

function legend(y: number): string {
    const items: [string, string][] = [
        [C.rollout, "consumer rolled out"],
        [C.ok, "step done"],
        [C.failed, "failed"],
        [C.running, "running when the run ended"],
        [C.unchanged, "unchanged (nothing to do)"],
        ["none", "not run"],
        [C.shading, "dual-active window"],
    ];
    let x = 8;
    return items
        .map(([color, text]) => {
            const s =
                `<rect x="${x}" y="${y + 11}" width="14" height="10" fill="${color}" fill-opacity="0.7" stroke="${C.axis}"/>` +
                `<text x="${x + 20}" y="${y + 20}" class="muted">${text}</text>`;
            x += 32 + text.length * 7.5;
            return s;
        })
        .join("");
}

/** The Gantt chart: one row per step, grouped by secret, the dual-active window shaded behind. */
export function timeline(run: RunRecord, groups: Group[]): Part {
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
    const html =
        `<svg width="${SVG_W}" height="${height}" viewBox="0 0 ${SVG_W} ${height}" role="img" aria-label="timeline of the run" ` +
        `data-chart-x="${LABEL_W}" data-chart-width="${CHART_W}" data-span-ms="${sc.span}" shape-rendering="crispEdges">` +
        shades.join("") +
        axis(sc, y - GROUP_GAP) +
        rows.join("") +
        legend(y) +
        `</svg>`;
    return { html, height };
}

/** A section's markup and a generous guess of its height: the page height is computed, not measured. */
export interface Part {
    html: string;
    height: number;
}
