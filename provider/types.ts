/**
 * What a rotation step is, as the program registers it and the step provider
 * (provider/stepProvider.ts) receives it. Shared by both sides; types only.
 */
import type { SshTarget } from "../lib/configSchema";
import type { VaultStepSpec } from "../adapters/vault";
import type { RandomSpec } from "../generators/random";
import type { WriteSpec } from "../writers";

export type { SshTarget };
/** Where a step runs: the operator's machine, or a host over SSH with its host key pinned. */
export type StepTarget = { kind: "local" } | SshTarget;

/** One JSON line appended to the audit log with the step's outcome; never a secret. */
export interface AuditSpec {
    path: string;
    record: Record<string, string | number>;
}

export type HealthSpec = { url: string; expectStatus: number } | { command: string };

/** How a consumer's health is checked: an URL fetched from the operator's machine, or a command on its host. */
export interface HealthPolicy {
    /** e.g. "app-redis → consumer web-1"; starts every error about this consumer. */
    label: string;
    health: HealthSpec;
    retries: number;
    retryDelaySeconds: number;
    timeoutSeconds: number;
}

/** A consumer's health check with the host it runs on. */
export interface HealthCheck extends HealthPolicy {
    target: SshTarget;
}

/** A consumer's log and the pattern (grep -E) of its auth failures, searched for `windowSeconds` after a change. */
export interface LogCheck {
    path: string;
    pattern: string;
    windowSeconds: number;
}

/** In a "health" step: the host is a key of the step's `hosts` (each host once, not per consumer). */
export interface ConsumerCheck extends HealthPolicy {
    host: string;
    /** The consumer's name; with `logCheck`, its auth failures since the revocation are counted (provider/authFailures.ts). */
    consumer?: string;
    logCheck?: LogCheck;
}

/** Everything one consumer's rollout needs: write (with .bak), reload, health, log check. */
export interface RolloutSpec extends HealthCheck {
    generation: number;
    configPath: string;
    write: WriteSpec;
    /** The operator's reload command, run on the host as written. */
    reload: string;
    logCheck?: LogCheck;
}

export type StepOp = "script" | "rollout" | "health" | "random" | "vault" | "preflight";

/** In a step with `drift` (the gate): one consumer whose config must hold the new secret (its host a key of the step's `hosts`). */
export interface DriftCheck {
    host: string;
    /** The consumer's name (for the way forward: bin/rotate resume --redeploy <name>). */
    consumer: string;
    /** e.g. "app-redis → consumer web-1". */
    label: string;
    configPath: string;
    write: WriteSpec;
    timeoutSeconds: number;
    /** The consumer's log (its `logCheck.path`): its size is noted as the anchor of the count after the revocation. */
    logPath?: string;
}

/** In a "preflight" step: what one rotation needs, checked before anything of it runs (provider/preflight.ts). */
export interface PreflightSpec {
    secret: string;
    /** Each consumer's config, write format and reload command; its host a key of the step's `hosts`. */
    consumers: { name: string; host: string; configPath: string; write: WriteSpec; reload: string; timeoutSeconds: number }[];
    /** The source's admin credential check and where it runs (none for a command source). */
    source?: { target: StepTarget; script: string };
    /** A file store's check, run on the operator's machine (a Vault store is asked before the program registers anything). */
    store?: string;
}

export interface StepProps {
    /** What this step does, in the runbook's words; starts every error. */
    title: string;
    /** Where a "script" step runs (a rollout runs on its consumer's host, `rollout.target`). */
    target?: StepTarget;
    /**
     * "script": run `script` at `target`. "rollout": deploy the secret on stdin
     * to one consumer (`rollout`). "health": check every consumer in `checks`.
     * "random": draw a secret. "vault": a Vault store phase (`vault`).
     */
    op: StepOp;
    script?: string;
    /** Runs when the step is deleted (withdraw a grant, remove a staged copy); gets the same stdin. */
    deleteScript?: string;
    /** Secret payload: NUL-terminated fields (lib/quote.ts stdinFields). Never logged. */
    stdin?: string;
    /** A change here runs the step again (in place); other changes are only recorded. */
    triggers: (string | number)[];
    /** Keep stdout as the secret output `stdout` (a generated or stored secret). */
    captureStdout?: boolean;
    attempts: number;
    retryDelaySeconds: number;
    timeoutSeconds: number;
    audit?: AuditSpec;
    /**
     * The secret generation this step belongs to: its delete (a withdrawal,
     * an unstaging, dropping a generated value) runs only once the audit log
     * shows that secret's rotation past it, or its rollback, completed
     * (provider/deleteGuard.ts).
     */
    guardDelete?: { generation: number; kind?: "grant" | "value" };
    rollout?: RolloutSpec;
    /** For op "random": the secret to draw (provider/random.ts); its stdout is the secret. */
    random?: RandomSpec;
    /**
     * For op "vault": a store phase against a Vault KV v2 secret (lib/vault.ts);
     * the new secret is the first stdin field, "read" returns the previous as
     * stdout. Deleting a "stage" step removes the staged copy.
     */
    vault?: VaultStepSpec;
    /** For op "preflight": every consumer (its host a key of `hosts`), the source and the store. */
    preflight?: PreflightSpec;
    /** For op "health": the consumers' hosts, by key, and what to check per consumer. */
    hosts?: Record<string, SshTarget>;
    checks?: ConsumerCheck[];
    /**
     * Before the step's own work (the gate's commit): every consumer, asked for an HMAC of what its config
     * holds (lib/scripts/check.ts); stdin is the new secret, then the previous.
     * `users` are the logins a template renders with (postgres-role).
     */
    drift?: DriftCheck[];
    users?: { current: string; previous: string };
}
