/**
 * What a rotation step is, as the program registers it and the step provider
 * (provider/stepProvider.ts) receives it: one type per operation, told apart
 * by `op`. Shared by both sides (components/exec/step.ts derives the
 * program's arguments from these), so the compiler checks both against one
 * declaration; types and the step's type token only.
 */
import type { SshTarget } from "../lib/configSchema";
import type { JournalLogCheck, LogCheck } from "../lib/logCheck";
import type { VaultStepSpec } from "../adapters/vault";
import type { KubernetesStepSpec } from "../stores/kubernetesApi";
import type { RandomSpec } from "../generators/random";
import type { WriteSpec } from "../writers";
import type { ApiConsumerEntry } from "../consumers";

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

/** A consumer's log file or unit journal and what marks its auth failures, searched for `windowSeconds` after a change (lib/logCheck.ts). */
export type { LogCheck };

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
    /** Or its unit's journal (`logCheck.unit` and `priority`): the cursor of its last entry is the anchor. */
    logJournal?: Pick<JournalLogCheck, "unit" | "priority">;
}

/** A consumer behind an API (consumers/): what its kind's methods get, in the step provider (provider/apiConsumer.ts). */
export interface ApiConsumerSpec {
    /** e.g. "app-redis → consumer ci"; starts every error about this consumer. */
    label: string;
    /** The generation its rollout gives it (the previous one in a rollback). */
    generation: number;
    /** The consumer as configured, its local files absolute; no secret. */
    consumer: ApiConsumerEntry;
}

/** In a step with `apiDrift` (the gate): one consumer behind an API, asked what it holds (a write-only one answers so). */
export interface ApiDriftCheck {
    consumer: string;
    label: string;
    api: ApiConsumerEntry;
}

/** In a "preflight" step: what one rotation needs, checked before anything of it runs (provider/preflight.ts). */
export interface PreflightSpec {
    secret: string;
    /** Each consumer's config, write format and reload command; its host a key of the step's `hosts`. */
    consumers: {
        name: string;
        host: string;
        configPath: string;
        write: WriteSpec;
        reload: string;
        timeoutSeconds: number;
        /** A log check in this unit's journal: journalctl must be there and read it. */
        logJournal?: Pick<JournalLogCheck, "unit">;
    }[];
    /** The source's admin credential check and where it runs (none for a command source). */
    source?: { target: StepTarget; script: string };
    /** A file store's check, run on the operator's machine (a Vault store is asked before the program registers anything). */
    store?: string;
    /** The consumers behind an API, asked by their kind (only when there are any). */
    apis?: { name: string; consumer: ApiConsumerEntry }[];
}

/** Type token of every step, served by this project's plugin `pulumi-resource-rotation` (provider/). */
export const STEP_TYPE = "rotation:index:Step";

/** What every step has, whatever its op. */
export interface StepBase {
    /** What this step does, in the runbook's words; starts every error and appears in the audit log. */
    title: string;
    /** Secret payload: NUL-terminated fields (lib/quote.ts stdinFields). Never logged. */
    stdin?: string;
    /** A change here runs the step again (in place); other changes are only recorded. */
    triggers: (string | number)[];
    /** Keep stdout as the secret output `stdout` (a generated or stored secret). */
    captureStdout?: boolean;
    /** Tries before the step fails. */
    attempts: number;
    /** Pause between tries. */
    retryDelaySeconds: number;
    /** Budget of one try. */
    timeoutSeconds: number;
    /** Appends one audit line with the step's outcome. */
    audit?: AuditSpec;
    /**
     * The secret generation this step belongs to: its delete (a withdrawal,
     * an unstaging, dropping a generated value) runs only once the audit log
     * shows that secret's rotation past it, or its rollback, completed
     * (provider/deleteGuard.ts).
     */
    guardDelete?: { generation: number; kind?: "grant" | "value" };
    /** The consumers' hosts, each once, by key: for a "health" or "preflight" step, and for a gate's `drift`. */
    hosts?: Record<string, SshTarget>;
    /**
     * The gate: before the step's own work (the store's commit), every
     * consumer is asked for an HMAC of what its config holds
     * (lib/scripts/check.ts); stdin is the new secret, then the previous.
     */
    drift?: DriftCheck[];
    /** With `drift`: the logins a template renders with (postgres-role). */
    users?: { current: string; previous: string };
    /** The gate: the consumers behind an API, asked too (none: the field is absent). */
    apiDrift?: ApiDriftCheck[];
}

/** Runs a bash script at `target`, with retries. */
export interface ScriptStep extends StepBase {
    op: "script";
    /** The operator's machine or a host over SSH. */
    target: StepTarget;
    /** Bash script; values from config inside it must pass through shq(). */
    script: string;
    /** Runs when the step is deleted (withdraw a grant, remove a staged copy); gets the same stdin. */
    deleteScript?: string;
}

/** Deploys the secret on stdin to one consumer: write (with .bak), reload, health, log check (provider/rollout.ts). */
export interface RolloutStep extends StepBase {
    op: "rollout";
    /** The consumer, on its own host (`rollout.target`), and how to deploy to it. */
    rollout: RolloutSpec;
}

/** One consumer of a batch: a host consumer's rollout (its host a key of the step's `hosts`) or one behind an API. */
export type BatchEntry =
    | { consumer: string; rollout: Omit<RolloutSpec, "target"> & { host: string }; api?: undefined }
    | { consumer: string; api: ApiConsumerSpec; rollout?: undefined };

/**
 * Deploys the secret on stdin to a batch of consumers at once, each as a
 * "rollout" or "api-rollout" step would (provider/batch.ts), with one audit
 * line per consumer. Its state keeps which consumers are done at its
 * triggers: a batch that failed for some runs only the others again.
 */
export interface RolloutBatchStep extends StepBase {
    op: "rollout-batch";
    hosts: Record<string, SshTarget>;
    batch: BatchEntry[];
}

/** Gives the secret on stdin to one consumer behind an API and waits for its confirmation (provider/apiConsumer.ts). */
export interface ApiRolloutStep extends StepBase {
    op: "api-rollout";
    api: ApiConsumerSpec;
}

/** Checks every consumer in `checks`, in parallel; its error names each one that failed. */
export interface HealthStep extends StepBase {
    op: "health";
    hosts: Record<string, SshTarget>;
    /** What to check per consumer (its host a key of `hosts`). */
    checks: ConsumerCheck[];
}

/** Draws a secret in the step provider (provider/random.ts); its stdout is the secret. */
export interface RandomStep extends StepBase {
    op: "random";
    random: RandomSpec;
}

/**
 * A store phase against a Vault KV v2 secret (lib/vault.ts): the new secret
 * is the first stdin field, "read" returns the previous as stdout. Deleting a
 * "stage" step removes the staged copy.
 */
export interface VaultStep extends StepBase {
    op: "vault";
    vault: VaultStepSpec;
}

/**
 * A store phase against a Kubernetes Secret (stores/kubernetesSecret.ts): the
 * new secret is the first stdin field, the secret in use the second; "read"
 * returns the previous as stdout. Deleting a "stage" step removes the staged
 * copy.
 */
export interface KubernetesStep extends StepBase {
    op: "kubernetes";
    kubernetes: KubernetesStepSpec;
}

/** What one rotation needs, checked before anything of it runs (provider/preflight.ts). */
export interface PreflightStep extends StepBase {
    op: "preflight";
    hosts: Record<string, SshTarget>;
    /** Every consumer (its host a key of `hosts`), the source and the store. */
    preflight: PreflightSpec;
}

/** A step as the provider receives it (defaults filled in by components/exec/step.ts). */
export type StepProps = ScriptStep | RolloutStep | RolloutBatchStep | ApiRolloutStep | HealthStep | RandomStep | VaultStep | KubernetesStep | PreflightStep;

export type StepOp = StepProps["op"];

/** The step of one op. */
export type StepOfOp<O extends StepOp> = Extract<StepProps, { op: O }>;

/** Every field name any step has. */
export type StepField = StepProps extends infer P ? (P extends StepProps ? keyof P : never) : never;
