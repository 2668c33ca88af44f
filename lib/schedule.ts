/** Rotation schedules such as "90d" or "12w": when the next rotation is due. */
import type { AuditLine } from "./auditLine";

const DAY_MS = 24 * 60 * 60 * 1000;
const UNIT_MS = { s: 1000, m: 60 * 1000, h: 60 * 60 * 1000, d: DAY_MS, w: 7 * DAY_MS } as const;

/** A duration such as "30m", "4h", "90d" or "12w" in milliseconds (which units a field allows is its schema's call). */
export function durationMs(d: string): number {
    const m = /^([0-9]+)([smhdw])$/.exec(d);
    if (!m) throw new Error(`invalid duration "${d}": expected a number and one of s, m, h, d, w`);
    return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

export function intervalMs(schedule: string): number {
    if (!/^[1-9][0-9]{0,3}[dw]$/.test(schedule)) throw new Error(`invalid schedule "${schedule}": expected an interval such as "90d" or "12w"`);
    return durationMs(schedule);
}

/** The last completed rotation of `secret` in the audit log's lines, if any. */
export function lastCompleted(auditLines: AuditLine[], secret: string): Date | undefined {
    let last: Date | undefined;
    for (const rec of auditLines) {
        if (rec.secret === secret && rec.phase === "completed" && rec.outcome === "ok" && rec.time) {
            const t = new Date(rec.time);
            if (!last || t > last) last = t;
        }
    }
    return last;
}

/** When the next rotation is due: now if there never was one. */
export function nextDue(last: Date | undefined, schedule: string, now: Date): Date {
    return last ? new Date(last.getTime() + intervalMs(schedule)) : now;
}
