/**
 * The generic webhook: one JSON document per event (HCP Vault Secrets'
 * envelope: resource_id, event_id, event_action, event_source,
 * event_version, event_payload), signed with HMAC-SHA256 of the exact body
 * under a key from a 0600 file or the environment. The receiver checks
 * `X-Rotation-Signature: sha256=<hex>` against the body it got, and may drop
 * a repeated `X-Rotation-Delivery` (a retry of a delivery keeps its id).
 */
import { createHmac } from "node:crypto";
import { z } from "zod";
import { localPath } from "../lib/fields";
import { EVENTS } from "./event";
import { checkUrl, defineSink, envName, readCredential } from "./kind";

export const SIGNATURE_HEADER = "X-Rotation-Signature";
export const DELIVERY_HEADER = "X-Rotation-Delivery";
export const EVENT_HEADER = "X-Rotation-Event";

/** `sha256=<hex>` of the body under the key: the header's value. */
export const signBody = (key: string, body: string) => `sha256=${createHmac("sha256", key).update(body, "utf8").digest("hex")}`;

export const webhookSink = defineSink({
    kind: "webhook",
    schema: z.strictObject({
        kind: z.literal("webhook"),
        urlFile: localPath.optional(),
        urlEnv: envName.optional(),
        /** The HMAC key: a file only its owner can read, or a variable. */
        keyFile: localPath.optional(),
        keyEnv: envName.optional(),
    }),
    defaultEvents: EVENTS,
    credentials(sink, baseDir, at, env) {
        const url = checkUrl(readCredential(sink, "url", baseDir, at, env), at);
        const key = readCredential(sink, "key", baseDir, at, env);
        const problems = [url.problem, key.problem].filter((p): p is string => !!p);
        return problems.length ? { problems } : { problems, credentials: { url: url.value!, key: key.value! } };
    },
    requests(_sink, credentials, event, deliveryId) {
        const { id, event: action, time, stack, secret, source, ...payload } = event;
        const body = JSON.stringify({
            resource_id: secret ? `${stack}/${secret}` : stack,
            event_id: id,
            event_action: action,
            event_source: "secret-rotation",
            event_version: "1",
            time,
            event_payload: { stack, ...(secret ? { secret } : {}), source, ...payload },
        });
        return [
            {
                action,
                url: credentials.url,
                headers: {
                    "Content-Type": "application/json",
                    [SIGNATURE_HEADER]: signBody(credentials.key!, body),
                    [DELIVERY_HEADER]: deliveryId,
                    [EVENT_HEADER]: action,
                },
                body,
            },
        ];
    },
});
