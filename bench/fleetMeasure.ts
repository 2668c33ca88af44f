// What bin/bench reads from one rotation (bench/fleet.ts): the engine's
// event log (the dual-active window, the slowest rollout, what a no-op
// changed), bin/rotate's ROTATION_TRACE (the `up` inside a start), the
// checkpoint's size on either backend, and the first error of a failed run.
import * as fs from "node:fs";
import * as path from "node:path";
import { stateClient } from "../cli/backend";
import { type EngineEvent, type Fleet, lab, type RunResult, stepTimeline, urnName, type Workspace } from "../lab/driver";

/**
 * What went wrong, in one line: the first diagnostic `error:` line (not the
 * engine's generic "update failed"), with the lines after it while it only
 * leads in ("... failed with an unhandled exception:").
 */
export function firstError(r: RunResult): string {
    const lines = `${r.stdout}\n${r.stderr}`
        .replace(/\x1b\[[0-9;]*m/g, "")
        .split("\n")
        .map((l) => l.trim());
    const generic = /^error: ((update|preview) failed|\d+ errors? occurred)/i;
    let i = lines.findIndex((l) => /^error: ./i.test(l) && !generic.test(l));
    if (i < 0) i = lines.findIndex((l) => /\berror\b/i.test(l));
    if (i < 0) return `exit code ${r.code}`;
    let text = lines[i];
    for (let k = i + 1; text.endsWith(":") && lines[k] && k <= i + 3; k++) text += ` ${lines[k]}`;
    return text.slice(0, 300);
}

/** Resource operations other than "same": what a no-op up must not have. */
export const changedCount = (r: RunResult) => r.events.filter((e) => e.resourcePreEvent && e.resourcePreEvent.metadata.op !== "same").length;

/** Grant of generation g finished → revocation started, from the engine's event timestamps (whole seconds). */
export function engineWindow(r: RunResult, f: Fleet, g: number): number {
    const at = (seq?: number) => (r.events.find((e) => e.sequence === seq) as { timestamp?: number } | undefined)?.timestamp ?? NaN;
    return at(stepTimeline(r.events, `${f.secret}-revoke`).start) - at(stepTimeline(r.events, `${f.secret}-grant-g${g}`).end);
}

/**
 * The slowest rollout in an update, from the start of its first step to the
 * end of its last (engine event timestamps, whole seconds): one consumer's
 * (`<secret>-rollout-<consumer>`, four steps each before issue 7), or one
 * batch's (`<secret>-rollouts-<k>`, a large fleet's slice: its consumers run
 * at once, so its span is its slowest consumer's).
 */
export function slowestRollout(r: RunResult, f: Fleet): number {
    const one = `${f.secret}-rollout-`;
    const batch = new RegExp(`^${f.secret}-rollouts-(\\d+)$`);
    const spans = new Map<string, { start: number; end: number }>();
    for (const e of r.events as (EngineEvent & { timestamp?: number })[]) {
        const m = e.resourcePreEvent?.metadata ?? e.resOutputsEvent?.metadata;
        const name = m && urnName(m.urn);
        if (!name || m!.op === "same" || e.timestamp === undefined) continue;
        const k = batch.exec(name)?.[1];
        const key = k ? `batch ${k}` : name.startsWith(one) ? name.slice(one.length).replace(/-(deploy|reload|health|logcheck)$/, "") : undefined;
        if (!key) continue;
        const span = spans.get(key) ?? { start: Infinity, end: -Infinity };
        if (e.resourcePreEvent) span.start = Math.min(span.start, e.timestamp);
        else span.end = Math.max(span.end, e.timestamp);
        spans.set(key, span);
    }
    return Math.max(...[...spans.values()].map((s) => s.end - s.start));
}

/** A bin/rotate run's phases as ROTATION_TRACE prints them (cli/trace.ts): phase → seconds, summed where a phase repeats. */
export function tracePhases(stderr: string): Map<string, number> {
    const phases = new Map<string, number>();
    for (const m of stderr.matchAll(/^rotate: trace: (.+) (\d+\.\d+)s \(at \d+\.\d+s\)$/gm)) phases.set(m[1], (phases.get(m[1]) ?? 0) + Number(m[2]));
    return phases;
}

/** The console process's own CPU seconds, as ROTATION_TRACE prints them at its end. */
export const traceCpuSeconds = (stderr: string) => {
    const m = /^rotate: trace: cpu of the console's process (\d+\.\d+)s$/m.exec(stderr);
    return m ? Number(m[1]) : undefined;
};

/**
 * Bytes of the checkpoint the engine rewrites after every step operation:
 * the stack's file in a file:// backend, its row in a PostgreSQL one (stored
 * base64 in a JSON object).
 */
export async function checkpointBytes(ws: Workspace, pgTable?: string): Promise<number | undefined> {
    if (pgTable) {
        process.env.PGPASSFILE = lab().stateBackend.passfile;
        const c = stateClient(lab().stateBackend.url);
        await c.connect();
        try {
            const r = await c.query(`SELECT data::text AS data FROM ${pgTable} WHERE key LIKE $1`, [`%.pulumi/stacks/%/${ws.stack}.json`]);
            if (!r.rows.length) return undefined;
            const doc = JSON.parse(r.rows[0].data);
            return typeof doc?.data === "string" ? Buffer.from(doc.data, "base64").length : Buffer.byteLength(r.rows[0].data);
        } finally {
            await c.end();
        }
    }
    const stacks = path.join(ws.stateDir, ".pulumi", "stacks");
    for (const project of fs.existsSync(stacks) ? fs.readdirSync(stacks) : []) {
        const file = path.join(stacks, project, `${ws.stack}.json`);
        if (fs.existsSync(file)) return fs.statSync(file).size;
    }
    return undefined;
}
