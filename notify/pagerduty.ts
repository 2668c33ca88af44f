/**
 * PagerDuty's Events API v2: an escalation triggers an incident whose
 * dedup_key is the rotation's (stack, secret, generation), so a failure
 * repeated by a resume is the same incident; the completion of that
 * generation resolves it, and every completed rotation is also a change
 * event (a non-problem, shown beside incidents). The routing key is the
 * credential (a 0600 file or a variable); the API's address defaults to
 * PagerDuty's and may be set (urlFile/urlEnv: a proxy, or the lab's
 * receiver), then `/v2/enqueue` and `/v2/change/enqueue` are below it.
 */
import { z } from "zod";
import { localPath } from "../lib/fields";
import { ESCALATIONS, dedupKey } from "./event";
import { checkUrl, defineSink, envName, readCredential, type SinkRequest } from "./kind";

export const PAGERDUTY_API = "https://events.pagerduty.com";

/** PagerDuty's limit on a summary. */
const SUMMARY_MAX = 1024;

export const pagerdutySink = defineSink({
    kind: "pagerduty",
    schema: z.strictObject({
        kind: z.literal("pagerduty"),
        /** The integration's routing key: a file only its owner can read, or a variable. */
        routingKeyFile: localPath.optional(),
        routingKeyEnv: envName.optional(),
        /** The Events API's base address (default https://events.pagerduty.com). */
        urlFile: localPath.optional(),
        urlEnv: envName.optional(),
    }),
    defaultEvents: [...ESCALATIONS, "completed"],
    credentials(sink, baseDir, at, env) {
        const key = readCredential(sink, "routingKey", baseDir, at, env);
        const url = checkUrl(readCredential(sink, "url", baseDir, at, env, PAGERDUTY_API), at);
        const problems = [key.problem, url.problem].filter((p): p is string => !!p);
        return problems.length ? { problems } : { problems, credentials: { url: url.value!.replace(/\/+$/, ""), key: key.value! } };
    },
    requests(_sink, credentials, e) {
        const post = (action: string, p: string, doc: object): SinkRequest => ({
            action,
            url: `${credentials.url}${p}`,
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify(doc),
        });
        const routing_key = credentials.key!;
        const details = {
            stack: e.stack,
            ...(e.secret ? { secret: e.secret, generation: e.generation } : {}),
            ...(e.consumer ? { consumer: e.consumer, unreachable: e.unreachable } : {}),
            ...(e.consumers !== undefined ? { consumers: e.consumers } : {}),
            ...(e.error ? { error: e.error } : {}),
            ...(e.next?.length ? { next: e.next } : {}),
            event: e.event,
            event_id: e.id,
        };
        if (!e.secret || e.generation === undefined) return [];
        const dedup_key = dedupKey(e.stack, e.secret, e.generation);
        if (ESCALATIONS.includes(e.event))
            return [
                post("trigger", "/v2/enqueue", {
                    routing_key,
                    event_action: "trigger",
                    dedup_key,
                    client: "secret-rotation",
                    payload: {
                        summary: e.summary.slice(0, SUMMARY_MAX),
                        source: e.source,
                        severity: e.severity,
                        timestamp: e.time,
                        component: e.secret,
                        group: e.stack,
                        class: e.event,
                        custom_details: details,
                    },
                }),
            ];
        if (e.event !== "completed") return [];
        const change = post("change", "/v2/change/enqueue", {
            routing_key,
            payload: { summary: e.summary.slice(0, SUMMARY_MAX), timestamp: e.time, source: e.source, custom_details: details },
        });
        return e.escalated ? [post("resolve", "/v2/enqueue", { routing_key, event_action: "resolve", dedup_key }), change] : [change];
    },
});
