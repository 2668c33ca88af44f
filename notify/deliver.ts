/**
 * Delivery: each event goes to the sinks its route names, each sink's
 * requests on their own, in the background. A try that times out, loses its
 * connection or gets a 5xx or 429 is tried again after a backoff, up to the
 * configured tries; a delivery that fails for good is reported (to the audit
 * log, by the caller's `onFailed`) and announced to the other sinks as
 * `notification-failed`. Nothing here throws into a rotation or waits in its
 * way: the caller only waits at the end (settle), for a bounded time.
 */
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import * as os from "node:os";
import { type EventName, type NotifyEvent, severityOf, summaryOf } from "./event";
import { type DeliveryOptions, type NotifyConfig, type Routes, sinkOf, sinksFor } from "./index";
import type { SinkCredentials, SinkRequest } from "./kind";

/** One delivery: one request of one sink for one event, with every try. */
export interface Delivery {
    /** Sent as the webhook's delivery id; the same on every try. */
    id: string;
    sink: string;
    kind: string;
    event: EventName;
    /** What the request was (trigger, resolve, change, or the event's name). */
    action: string;
    secret?: string;
    generation?: number;
    outcome: "delivered" | "failed";
    attempts: number;
    /** The last answer's HTTP status, if any came. */
    status?: number;
    /** Why each failed try failed ("HTTP 500, HTTP 500, timed out after 5s"). Never the URL. */
    error?: string;
    /** From the first try to the verdict. */
    seconds: number;
}

export interface NotifierOptions {
    stack: string;
    config: NotifyConfig;
    /** Each sink's URL and key, read beforehand (cli/notify.ts). */
    credentials: Record<string, SinkCredentials>;
    /** A secret's own routes (rotation:secrets.<name>.notify.routes). */
    secretRoutes?: (secret: string) => Routes | undefined;
    /** Called once per delivery that failed for good (the audit line). */
    onFailed?: (d: Delivery, e: NotifyEvent) => void;
    fetch?: typeof fetch;
}

/** An event as emitted: what happened; the notifier adds its id, time, summary, severity and source. */
export type EventInput = Omit<NotifyEvent, "id" | "time" | "summary" | "severity" | "source">;

const ABANDONED = "given up: the run ended before an answer came";

/** Why a try failed, in words that name no URL. */
export function describeFailure(e: unknown, timeoutSeconds: number): string {
    const err = e as { name?: string; cause?: { code?: string } };
    if (err.name === "TimeoutError") return `timed out after ${timeoutSeconds}s`;
    const code = err.cause?.code;
    if (code === "ECONNREFUSED") return "connection refused";
    if (code === "UND_ERR_SOCKET" || code === "ECONNRESET" || code === "EPIPE") return "connection closed before an answer";
    if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "host name not found";
    if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return "host unreachable";
    return `request failed${code ? ` (${code})` : ""}`;
}

const retryable = (status: number) => status >= 500 || status === 429;

export class Notifier {
    readonly deliveries: Delivery[] = [];
    private readonly pending = new Set<Promise<void>>();
    /** Sinks whose failure was announced: once per sink and run, the rest are in the audit log and the report. */
    private readonly announced = new Set<string>();
    private readonly stop = new AbortController();
    private readonly opts: DeliveryOptions;
    private readonly fetch: typeof fetch;

    constructor(private readonly o: NotifierOptions) {
        this.opts = o.config.delivery;
        this.fetch = o.fetch ?? fetch;
        // Every try and every backoff listens for the end of the run.
        setMaxListeners(0, this.stop.signal);
    }

    /** Sends an event to its sinks in the background; returns it as sent. Never throws. */
    emit(input: EventInput, except?: string): NotifyEvent | undefined {
        if (this.stop.signal.aborted) return undefined;
        const event: NotifyEvent = {
            id: randomUUID(),
            time: new Date().toISOString(),
            ...input,
            severity: severityOf(input),
            summary: summaryOf(input),
            source: os.hostname(),
        };
        const routes = input.secret ? this.o.secretRoutes?.(input.secret) : undefined;
        for (const name of sinksFor(this.o.config, input.event, routes)) {
            if (name === except) continue;
            const sink = this.o.config.sinks[name];
            const credentials = this.o.credentials[name];
            if (!sink || !credentials) continue;
            const id = randomUUID();
            let requests: SinkRequest[];
            try {
                requests = sinkOf(sink.kind).requests(sink as never, credentials, event, id);
            } catch {
                continue;
            }
            // A sink's second request for the same event (PagerDuty's resolve, then its change event) is a delivery of its own.
            requests.forEach((r, i) => {
                const p = this.deliver(name, sink.kind, event, r, i ? `${id}-${i + 1}` : id).finally(() => this.pending.delete(p));
                this.pending.add(p);
            });
        }
        return event;
    }

    private async deliver(sink: string, kind: string, event: NotifyEvent, r: SinkRequest, id: string): Promise<void> {
        const t0 = Date.now();
        const errors: string[] = [];
        let status: number | undefined;
        let attempts = 0;
        let delivered = false;
        for (; attempts < this.opts.attempts && !this.stop.signal.aborted; ) {
            if (attempts > 0) await this.sleep(this.opts.backoffSeconds * 1000 * 2 ** (attempts - 1));
            if (this.stop.signal.aborted) break;
            attempts++;
            try {
                const signal = AbortSignal.any([AbortSignal.timeout(this.opts.timeoutSeconds * 1000), this.stop.signal]);
                const res = await this.fetch(r.url, { method: "POST", headers: r.headers, body: r.body, signal, redirect: "manual" });
                status = res.status;
                await res.arrayBuffer().catch(() => undefined);
                if (res.status >= 200 && res.status < 300) {
                    delivered = true;
                    break;
                }
                errors.push(`HTTP ${res.status}`);
                if (!retryable(res.status)) break;
            } catch (e) {
                errors.push(this.stop.signal.aborted ? ABANDONED : describeFailure(e, this.opts.timeoutSeconds));
            }
        }
        if (!delivered && this.stop.signal.aborted && errors.at(-1) !== ABANDONED) errors.push(ABANDONED);
        const d: Delivery = {
            id,
            sink,
            kind,
            event: event.event,
            action: r.action,
            ...(event.secret ? { secret: event.secret, generation: event.generation } : {}),
            outcome: delivered ? "delivered" : "failed",
            attempts,
            ...(status !== undefined ? { status } : {}),
            ...(errors.length ? { error: errors.join(", ") } : {}),
            seconds: (Date.now() - t0) / 1000,
        };
        this.deliveries.push(d);
        if (delivered) return;
        try {
            this.o.onFailed?.(d, event);
        } catch {
            // The audit line could not be written: the delivery record still says so in the report.
        }
        // The others hear of it, once per failing sink; a failed announcement of a failure is not announced again.
        if (event.event !== "notification-failed" && !this.announced.has(sink)) {
            this.announced.add(sink);
            this.emit(
                {
                    event: "notification-failed",
                    stack: event.stack,
                    ...(event.secret ? { secret: event.secret, generation: event.generation } : {}),
                    failed: { sink, event: event.event, attempts, error: d.error ?? "failed" },
                },
                sink,
            );
        }
    }

    private sleep(ms: number): Promise<void> {
        return new Promise((resolve) => {
            const signal = this.stop.signal;
            const t = setTimeout(done, ms);
            function done() {
                clearTimeout(t);
                signal.removeEventListener("abort", done);
                resolve();
            }
            signal.addEventListener("abort", done, { once: true });
        });
    }

    /**
     * Waits for every delivery under way (and the announcements of those that
     * fail) at most `settleSeconds`, then gives up the rest, each recorded as
     * failed. Returns every delivery of this notifier.
     */
    async settle(): Promise<Delivery[]> {
        const deadline = Date.now() + this.opts.settleSeconds * 1000;
        while (this.pending.size && Date.now() < deadline) {
            let timer: NodeJS.Timeout | undefined;
            await Promise.race([Promise.allSettled([...this.pending]), new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
            clearTimeout(timer);
        }
        this.stop.abort();
        await Promise.allSettled([...this.pending]);
        return this.deliveries;
    }
}
