/** Rotation schedules such as "90d" or "12w": when the next rotation is due. */

const DAY_MS = 24 * 60 * 60 * 1000;

export function intervalMs(schedule: string): number {
    const m = /^([1-9][0-9]{0,3})([dw])$/.exec(schedule);
    if (!m) throw new Error(`invalid schedule "${schedule}": expected an interval such as "90d" or "12w"`);
    return Number(m[1]) * (m[2] === "w" ? 7 : 1) * DAY_MS;
}

/** The last completed rotation of `secret` in audit log lines (JSON), if any. */
export function lastCompleted(auditLines: string[], secret: string): Date | undefined {
    let last: Date | undefined;
    for (const line of auditLines) {
        let rec: { secret?: string; phase?: string; outcome?: string; time?: string };
        try {
            rec = JSON.parse(line);
        } catch {
            continue;
        }
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
