/**
 * Rotation windows: the days and hours (in one time zone) a secret may be
 * rotated. `bin/rotate start` refuses outside the window, naming the next
 * opening, unless the operator says `--outside-window` (which the audit
 * lines then record). A window whose end is before its start runs overnight:
 * it belongs to the day it opens.
 */
import { z } from "zod";

export const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;
const HHMM = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;

const validZone = (tz: string) => {
    try {
        new Intl.DateTimeFormat("en-US", { timeZone: tz });
        return true;
    } catch {
        return false;
    }
};

export const windowSchema = z
    .strictObject({
        days: z
            .array(z.enum(DAYS, { error: `each day is one of ${DAYS.join(", ")}` }))
            .min(1, "must list at least one day")
            .refine((d) => new Set(d).size === d.length, "lists a day twice"),
        start: z.string().regex(HHMM, 'must be a time "HH:MM" (00:00-23:59)'),
        end: z.string().regex(HHMM, 'must be a time "HH:MM" (00:00-23:59)'),
        timeZone: z.string().refine(validZone, "must be an IANA time zone such as Europe/Berlin or UTC"),
    })
    .refine((w) => w.start !== w.end, { message: "start and end must differ", path: ["end"] });

export type RotationWindow = z.output<typeof windowSchema>;

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));

/** The weekday and minute of the day at `t` in `timeZone`. */
const formats = new Map<string, Intl.DateTimeFormat>();
function local(t: Date, timeZone: string): { day: number; minute: number } {
    let f = formats.get(timeZone);
    if (!f) formats.set(timeZone, (f = new Intl.DateTimeFormat("en-US", { timeZone, weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })));
    const parts = f.formatToParts(t);
    const get = (k: string) => parts.find((p) => p.type === k)!.value;
    return { day: DAYS.indexOf(get("weekday").toLowerCase() as (typeof DAYS)[number]), minute: Number(get("hour")) * 60 + Number(get("minute")) };
}

/** Whether the window is open at `t`. */
export function isOpen(w: RotationWindow, t: Date): boolean {
    const { day, minute } = local(t, w.timeZone);
    const start = minutes(w.start);
    const end = minutes(w.end);
    const on = (d: number) => w.days.includes(DAYS[(d + 7) % 7]);
    if (start < end) return on(day) && minute >= start && minute < end;
    // Overnight: open from `start` on a listed day until `end` the next morning.
    return (minute >= start && on(day)) || (minute < end && on(day - 1));
}

/** The next moment (to the minute) the window opens after `t`; within 8 days, since every window opens weekly. */
export function nextOpening(w: RotationWindow, t: Date): Date {
    let at = new Date(Math.floor(t.getTime() / 60_000) * 60_000 + 60_000);
    for (let i = 0; i < 8 * 24 * 60; i++, at = new Date(at.getTime() + 60_000)) {
        if (isOpen(w, at)) return at;
    }
    throw new Error("the window never opens");
}

/** "mon-fri 09:00-17:00 Europe/Berlin" */
export const describeWindow = (w: RotationWindow) => `${w.days.join(",")} ${w.start}-${w.end} ${w.timeZone}`;
