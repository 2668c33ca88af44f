/**
 * One JSON request over HTTP(S), the transport the Vault client, the
 * Kubernetes store and the CI consumers share. Any HTTP answer resolves, its
 * body parsed as JSON (or undefined when empty or not JSON); not reaching the
 * server rejects with a TransportError whose `code` is the socket's
 * (ECONNREFUSED, a TLS code, ETIMEDOUT after `timeoutMs` without an answer).
 * Each caller words the failure for its own kind; no header or body is ever
 * in a message here.
 */
import * as http from "node:http";
import * as https from "node:https";

export interface JsonReply {
    status: number;
    // biome-ignore lint/suspicious/noExplicitAny: JSON of many shapes, each caller reads it field by field with checks
    body: any;
}

export interface JsonRequest {
    method: string;
    headers: Record<string, string>;
    /** The body, already serialized. */
    payload?: string;
    timeoutMs: number;
    /** TLS options: a CA, a client certificate and key. */
    tls?: Pick<https.RequestOptions, "ca" | "cert" | "key">;
}

/** Not reaching the server (`response`: the answer broke off after it began). */
export class TransportError extends Error {
    constructor(
        message: string,
        readonly code: string | undefined,
        readonly response = false,
        /** No answer within the request's timeoutMs (the message says so). */
        readonly timedOut = false,
    ) {
        super(message);
    }
}

/** A socket error code that says the server's certificate was not trusted. */
export const isTlsCode = (code: string | undefined) => /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(String(code));

export function jsonRequest(url: URL, r: JsonRequest): Promise<JsonReply> {
    return new Promise((resolve, reject) => {
        const mod = url.protocol === "https:" ? https : http;
        const req = mod.request(url, { method: r.method, headers: r.headers, timeout: r.timeoutMs, ...(r.tls ?? {}) }, (res) => {
            const chunks: Buffer[] = [];
            res.on("data", (x: Buffer) => chunks.push(x));
            res.on("end", () => {
                const text = Buffer.concat(chunks).toString("utf8");
                let body: unknown;
                try {
                    body = text ? JSON.parse(text) : undefined;
                } catch {
                    body = undefined;
                }
                resolve({ status: res.statusCode ?? 0, body });
            });
            res.on("error", (e: NodeJS.ErrnoException) => reject(new TransportError(e.message, e.code, true)));
        });
        let timedOut = false;
        req.on("timeout", () => {
            timedOut = true;
            req.destroy(Object.assign(new Error(`no answer within ${r.timeoutMs / 1000}s`), { code: "ETIMEDOUT" }));
        });
        req.on("error", (e: NodeJS.ErrnoException) => reject(new TransportError(e.message, e.code, false, timedOut)));
        req.end(r.payload);
    });
}
