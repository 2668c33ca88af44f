/**
 * The registry of notification sink kinds (one line per kind), and the
 * `rotation:notify` config: the sinks by name, which events go to which
 * (per stack, overridable per secret), and how hard delivery tries.
 */
import { z } from "zod";
import { wholeNumber } from "../lib/fields";
import { EVENTS, type EventName } from "./event";
import type { SinkKind } from "./kind";
import { pagerdutySink } from "./pagerduty";
import { slackSink } from "./slack";
import { webhookSink } from "./webhook";

export const SINKS = [webhookSink, slackSink, pagerdutySink] as const;

type Kind = (typeof SINKS)[number];
/** A sink as written in the stack config. */
export type SinkConfig = z.output<Kind["schema"]>;

export const sinkSchema = z.discriminatedUnion("kind", SINKS.map((s) => s.schema) as unknown as [Kind["schema"], ...Kind["schema"][]]);

/** The kind of a sink; every kind the schema admits is registered. */
export function sinkOf(kind: string): SinkKind {
    const k = SINKS.find((s) => s.kind === kind);
    if (!k) throw new Error(`unknown sink kind ${JSON.stringify(kind)}: must be one of ${SINKS.map((s) => JSON.stringify(s.kind)).join(", ")}`);
    return k as unknown as SinkKind;
}

const sinkName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be 1-63 lowercase letters, digits or '-', starting with a letter or digit");

/** Event → the sinks it goes to; an event not listed goes to every sink whose kind takes it. */
const routesSchema = z.partialRecord(z.enum(EVENTS, { error: `must be one of ${EVENTS.join(", ")}` }), z.array(sinkName));
export type Routes = z.output<typeof routesSchema>;

const seconds = (min: number, max: number) => z.number().min(min, `must be ${min}-${max}`).max(max, `must be ${min}-${max}`);

export const deliverySchema = z.strictObject({
    /** Tries per delivery, the first included (a 5xx, 429, timeout or lost connection is tried again). */
    attempts: wholeNumber().min(1, "must be 1-10").max(10, "must be 1-10").default(4),
    /** How long one try may take. */
    timeoutSeconds: seconds(0.1, 60).default(5),
    /** The wait before the second try; doubled before each further one. */
    backoffSeconds: seconds(0, 60).default(1),
    /** How long bin/rotate waits, once the run is over, for deliveries still under way before giving them up. */
    settleSeconds: seconds(0, 300).default(15),
});
export type DeliveryOptions = z.output<typeof deliverySchema>;

/** `rotation:notify`. */
export const notifySchema = z.strictObject({
    sinks: z.record(sinkName, sinkSchema),
    routes: routesSchema.optional(),
    delivery: deliverySchema.default({ attempts: 4, timeoutSeconds: 5, backoffSeconds: 1, settleSeconds: 15 }),
});
export type NotifyConfig = z.output<typeof notifySchema>;

/** `rotation:secrets.<name>.notify`: this secret's events go where these routes say (events not listed: as the stack's). */
export const secretNotifySchema = z.strictObject({ routes: routesSchema });
export type SecretNotifyConfig = z.output<typeof secretNotifySchema>;

/** Routes naming a sink the stack does not have; each problem is `[path, message]` under `rotation:`. */
export function routeProblems(
    notify: NotifyConfig | undefined,
    secrets: Record<string, { notify?: SecretNotifyConfig }>,
): { path: (string | number)[]; message: string }[] {
    const names = Object.keys(notify?.sinks ?? {});
    const out: { path: (string | number)[]; message: string }[] = [];
    const check = (routes: Routes | undefined, at: (string | number)[]) => {
        for (const [event, sinks] of Object.entries(routes ?? {}))
            (sinks ?? []).forEach((s, i) => {
                if (!names.includes(s))
                    out.push({
                        path: [...at, event, i],
                        message: names.length
                            ? `no sink ${JSON.stringify(s)} in rotation:notify.sinks (it has: ${names.join(", ")})`
                            : "rotation:notify lists no sinks",
                    });
            });
    };
    check(notify?.routes, ["notify", "routes"]);
    for (const [n, s] of Object.entries(secrets)) check(s.notify?.routes, ["secrets", n, "notify", "routes"]);
    return out;
}

/** The sinks an event goes to: the secret's route for it, else the stack's, else every sink whose kind takes it. */
export function sinksFor(notify: NotifyConfig, event: EventName, secretRoutes?: Routes): string[] {
    const routed = secretRoutes?.[event] ?? notify.routes?.[event];
    if (routed) return [...new Set(routed)];
    return Object.entries(notify.sinks)
        .filter(([, s]) => sinkOf(s.kind).defaultEvents.includes(event))
        .map(([n]) => n);
}

export { EVENTS, ESCALATIONS, dedupKey, type EventName, type NotifyEvent } from "./event";
