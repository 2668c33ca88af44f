/**
 * Consumer health checks, with retries: an URL fetched from the operator's
 * machine (Node's fetch, no process per try) or the operator's command on the
 * consumer's host (one session over the host's shared connection per try).
 */
import { runAt, where } from "./exec";
import { StepError, failure, redact, sleep } from "./outcome";
import type { HealthCheck } from "./types";

async function fetchStatus(url: string, timeoutSeconds: number): Promise<string> {
    try {
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutSeconds * 1000), redirect: "manual" });
        await res.arrayBuffer().catch(() => undefined);
        return String(res.status);
    } catch (e) {
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        return (e as Error).name === "TimeoutError"
            ? `no answer within ${timeoutSeconds}s`
            : `no answer (${cause?.code ?? cause?.message ?? (e as Error).message})`;
    }
}

/** Resolves when the consumer is healthy; throws a titled, redacted StepError otherwise. */
export async function checkHealth(c: HealthCheck, title: string, secrets: string[]): Promise<void> {
    const attempts = c.retries + 1;
    for (let attempt = 1; attempt <= attempts; attempt++) {
        let error: StepError;
        if ("url" in c.health) {
            const got = await fetchStatus(c.health.url, c.timeoutSeconds);
            if (got === String(c.health.expectStatus)) return;
            error = new StepError(
                `${title}: ${c.health.url} answered ${got}, expected ${c.health.expectStatus}${attempts > 1 ? ` (after ${attempts} attempts)` : ""}`,
            );
        } else {
            const r = await runAt(c.target, c.health.command, "", c.timeoutSeconds);
            if (r.code === 0 && !r.timedOut) return;
            error = failure(title, r, { where: where(c.target), timeoutSeconds: c.timeoutSeconds, attempts, secrets });
        }
        if (attempt === attempts) throw new StepError(redact(error.message, secrets));
        await sleep(c.retryDelaySeconds);
    }
}

/** Checks every consumer at once; the error names each one that failed. */
export async function checkAll(checks: HealthCheck[], title: string, secrets: string[]): Promise<void> {
    const results = await Promise.allSettled(checks.map((c) => checkHealth(c, `${c.label}: healthy after revocation`, secrets)));
    const failed = results.flatMap((r) => (r.status === "rejected" ? [String((r.reason as Error).message)] : []));
    if (failed.length) {
        throw new StepError(`${title}: ${failed.length} of ${checks.length} consumers failed: ${failed.join("; ")}`);
    }
}
