// What the tests of Verification 3 (provider/authFailures.ts) hand it: the
// local machine standing in for every consumer's host, consumers with a log
// check, and a gate's props whose drift notes each log's anchor.
import * as path from "node:path";
import type { RunKey } from "../../provider/authFailures";
import type { DriftCheck, HealthCheck, LogCheck, SshTarget } from "../../provider/types";

/** The local machine stands in for the consumers' hosts (runAt runs a local target with bash). */
export const LOCAL = { kind: "local" } as unknown as SshTarget;

/** A consumer of app-redis on the local machine, healthy, with this log check. */
export function loggedConsumer(name: string, logCheck: LogCheck): HealthCheck & { consumer: string; logCheck: LogCheck } {
    return {
        label: `app-redis → consumer ${name}`,
        target: LOCAL,
        health: { command: "true" },
        retries: 0,
        retryDelaySeconds: 0,
        timeoutSeconds: 10,
        consumer: name,
        logCheck,
    };
}

/** A gate's props (its audit record names the run) whose drift checks note each consumer's log anchor. */
export const gateOf = (dir: string, run: RunKey, logs: Record<string, LogCheck>) => ({
    audit: { path: path.join(dir, "audit.jsonl"), record: { stack: run.stack, secret: run.secret, generation: run.generation } },
    hosts: { h0: LOCAL },
    drift: Object.entries(logs).map(
        ([name, log]): DriftCheck => ({
            host: "h0",
            consumer: name,
            label: `app-redis → consumer ${name}`,
            configPath: "/unused",
            write: { format: "env-line", key: "K" },
            timeoutSeconds: 10,
            ...("unit" in log ? { logJournal: { unit: log.unit, ...(log.priority ? { priority: log.priority } : {}) } } : { logPath: log.path }),
        }),
    ),
});
