/**
 * The step provider: a Pulumi provider plugin of this project
 * (`pulumi-resource-rotation`, type STEP_TYPE of provider/types.ts) that runs the
 * rotation's steps. It replaces a dynamic provider, whose serialized code
 * (~16 KB) sat in every step's inputs and outputs and made each checkpoint
 * write grow with the fleet (issue 7).
 *
 * A change of `triggers` is an in-place update that runs the step again; no
 * step is replaced, so nothing is left for the engine to delete at the end.
 * The grants keep delete-to-withdraw: each generation's grant is its own
 * resource, and the engine deletes it (runs `deleteScript`) only when a
 * program no longer registers it.
 *
 * Why not @pulumi/command: its provider plugin cannot be had on these
 * machines (toolchain/README.md). This keeps its contract (create/delete
 * scripts, stdin, triggers, output never logged) and adds retries, redaction,
 * audit lines and connection reuse.
 */
import { createHash, randomUUID } from "node:crypto";
import type * as provider from "@pulumi/pulumi/provider";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { runAt, where } from "./exec";
import { checkDrift } from "./drift";
import { VerificationError, noteLogAnchors, runKeyOf, verifyConsumers, withFields } from "./authFailures";
import { preflightStep } from "./preflight";
import { deleteRefusal, noteAuditLog } from "./deleteGuard";
import { StepError, appendAudit, failure, failureMessage, redact, sleep, splitFields, undoPhase } from "./outcome";
import { randomSecret } from "../generators/random";
import { rollout } from "./rollout";
import { apiRollout } from "./apiConsumer";
import { PartialBatchError, batchFailure, pendingOf, runBatch } from "./batch";
import { vaultStep } from "../adapters/vault";
import { kubernetesStep } from "../stores/kubernetesSecret";
import { unpackStep } from "./wire";
import type { KubernetesStep, RolloutBatchStep, ScriptStep, StepField, StepOp, StepProps, VaultStep } from "./types";

/**
 * A step's inputs as the engine sends them: secrets unwrapped and its lists
 * of consumers as the program gave them (provider/wire.ts); what they are,
 * `check` has said (the caller names it).
 */
const inputsOf = <T>(v: unknown): T => unpackStep(unwrap<T>(v));

/** A value as the engine sends it, secrets unwrapped. */
function unwrap<T>(v: unknown): T {
    if (Array.isArray(v)) return v.map(unwrap) as T;
    if (v && typeof v === "object") {
        const o = v as Record<string, unknown>;
        if (o[specialSigKey] === specialSecretSig) return unwrap(o.value);
        return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unwrap(x)])) as T;
    }
    return v as T;
}

/** A value the engine keeps secret (the SDK's own marker). */
const secret = (value: unknown) => ({ [specialSigKey]: specialSecretSig, value });

/** Any step's fields, each optional: what `check` is given before it knows the inputs are a step. */
type StepFields = { [K in StepField]?: StepProps extends infer P ? (P extends { [Q in K]?: infer V } ? V : never) : never };

/**
 * Inputs whose change is recorded without running the step again. A
 * pre-flight's `preflight` is not among them: it is read afresh each time the
 * step runs, and checks nothing that later steps rely on having recorded.
 */
const RECORDED_KEYS: StepField[] = [
    "title",
    "target",
    "op",
    "script",
    "deleteScript",
    "captureStdout",
    "attempts",
    "retryDelaySeconds",
    "timeoutSeconds",
    "audit",
    "rollout",
    "hosts",
    "checks",
    "random",
    "vault",
];

/** Recorded inputs added since: part of the digest only when set, so that every earlier step's digest stays the one its state holds. */
const RECORDED_WHEN_SET: StepField[] = ["kubernetes", "api", "batch"];

/** A short digest of the recorded inputs: outputs keep this, not a second copy of them. */
export function recordedDigest(p: StepFields): string {
    const h = createHash("sha256");
    for (const k of RECORDED_KEYS) h.update(`${k}=${JSON.stringify(p[k] ?? null)}\n`);
    for (const k of RECORDED_WHEN_SET) if (p[k] !== undefined) h.update(`${k}=${JSON.stringify(p[k])}\n`);
    return h.digest("hex").slice(0, 16);
}

const sameTriggers = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Whether every check's host is a key of the step's hosts. */
const hostsFor = ({ hosts }: StepFields, checks: { host: string }[]) => hosts !== undefined && checks.every((c) => c.host in hosts);

/**
 * What each op cannot run without: the field (and what it must hold) a
 * step of that op lacks, or nothing. A program of this project never lacks one.
 */
const NEEDS: { [O in StepOp]: (p: StepFields) => string | undefined } = {
    script: (p) => (!p.target ? "target" : typeof p.script !== "string" ? "script" : undefined),
    rollout: (p) => (p.rollout ? undefined : "rollout"),
    "rollout-batch": (p) =>
        p.batch &&
        hostsFor(
            p,
            p.batch.flatMap((e) => (e.rollout ? [e.rollout] : [])),
        )
            ? undefined
            : "batch with its hosts",
    "api-rollout": (p) => (p.api ? undefined : "api"),
    health: (p) => (p.checks && hostsFor(p, p.checks) ? undefined : "checks with their hosts"),
    random: (p) => (p.random ? undefined : "random"),
    vault: (p) => (p.vault ? undefined : "vault"),
    kubernetes: (p) => (p.kubernetes ? undefined : "kubernetes"),
    preflight: (p) => (p.preflight && hostsFor(p, p.preflight.consumers) ? undefined : "preflight with its hosts"),
};
const isOp = (op: unknown): op is StepOp => typeof op === "string" && Object.hasOwn(NEEDS, op);

/** Why inputs are not a step that can run, or nothing. */
function malformed(p: StepFields): { property: string; reason: string } | undefined {
    if (!isOp(p.op)) {
        const given = p.op === undefined ? "" : ` (not ${JSON.stringify(p.op)})`;
        return { property: "op", reason: `a step needs op, one of ${Object.keys(NEEDS).join(", ")}${given}` };
    }
    const missing = NEEDS[p.op](p) ?? (p.drift && !hostsFor(p, p.drift) ? "hosts for its drift checks" : undefined);
    return missing ? { property: missing.split(" ")[0], reason: `a ${p.op} step needs ${missing}` } : undefined;
}

/** The step's own work, by op; returns stdout (a script's, a drawn or read secret) and the audit line's extra fields. */
async function run(props: StepProps, secrets: string[]): Promise<{ stdout?: string; found?: Record<string, string> }> {
    switch (props.op) {
        case "script":
            return { stdout: await runScript(props, props.script, props.title) };
        case "rollout":
            await rollout(props.rollout, props.stdin ?? "");
            return {};
        case "api-rollout":
            await apiRollout(props.api, props.stdin ?? "");
            return {};
        case "rollout-batch":
            // Run by runBatchStep (create and update), which records which consumers are done.
            throw new StepError(`${props.title}: a batch runs only as its own create or update`);
        case "health": {
            const hosts = props.hosts;
            const checks = props.checks.map(({ host, ...c }) => ({ ...c, target: hosts[host] }));
            return { found: await verifyConsumers(checks, props.title, runKeyOf(props), secrets) };
        }
        case "random":
            return { stdout: randomSecret(props.random) };
        case "vault": {
            const record = props.audit?.record ?? {};
            const extra = { previous: secrets[1], stack: String(record.stack ?? "<stack>"), secret: String(record.secret ?? "<secret>") };
            return { stdout: await vaultStep(props.vault, secrets[0], extra) };
        }
        case "kubernetes": {
            const record = props.audit?.record ?? {};
            const extra = { previous: secrets[1], stack: String(record.stack ?? "<stack>"), secret: String(record.secret ?? "<secret>") };
            return { stdout: await kubernetesStep(props.kubernetes, secrets[0], extra) };
        }
        case "preflight":
            await preflightStep(props.preflight, props.hosts, props.title);
            return {};
        default:
            return unknownOp(props);
    }
}

/** The compiler's check that every op is handled; at run time, inputs that `check` would have refused. */
function unknownOp(props: never): never {
    throw new StepError(`${(props as StepFields).title}: unknown op ${JSON.stringify((props as StepFields).op)}`);
}

/** Runs the step: its own work, after a gate's drift checks, and its audit line. Returns stdout when captured. */
export async function perform(props: StepProps): Promise<string | undefined> {
    const secrets = splitFields(props.stdin);
    try {
        // The gate asks every consumer first: nothing is committed while one is not on the new secret.
        // Then it notes each consumer log's anchor (a file's size, a journal's cursor): the verification counts auth failures from there.
        if (props.drift || props.apiDrift) {
            await noteLogAnchors(props, await checkDrift(props, secrets));
        }
        const { stdout, found } = await run(props, secrets);
        appendAudit(withFields(props.audit, found), "ok");
        return props.captureStdout ? stdout : undefined;
    } catch (e) {
        const message = failureMessage(e, props.title, secrets);
        appendAudit(withFields(props.audit, e instanceof VerificationError ? e.auditFields : undefined), "failed", message.split("\n")[0]);
        throw new StepError(message);
    }
}

/** What running a script needs, of a step or of its recorded undo. */
type ScriptRun = Pick<ScriptStep, "target" | "stdin" | "attempts" | "retryDelaySeconds" | "timeoutSeconds">;

async function runScript(props: ScriptRun, script: string, title: string): Promise<string> {
    const attempts = Math.max(1, props.attempts);
    const { target } = props;
    for (let attempt = 1; ; attempt++) {
        const r = await runAt(target, script, props.stdin ?? "", props.timeoutSeconds);
        if (r.code === 0 && !r.timedOut) return r.stdout;
        if (attempt >= attempts)
            throw failure(title, r, { where: where(target), timeoutSeconds: props.timeoutSeconds, attempts, secrets: splitFields(props.stdin) });
        await sleep(props.retryDelaySeconds);
    }
}

/** What state keeps for a step's delete to undo it: a delete script with where it runs, or a staged Vault or Kubernetes copy to remove. */
type ScriptUndo = ScriptRun & Pick<ScriptStep, "title" | "audit"> & { deleteScript: string; op?: undefined };
type UndoFields = "title" | "op" | "attempts" | "retryDelaySeconds" | "timeoutSeconds" | "audit" | "stdin";
type VaultUndo = Pick<VaultStep, UndoFields | "vault">;
type KubernetesUndo = Pick<KubernetesStep, UndoFields | "kubernetes">;
type StoreUndo = VaultUndo | KubernetesUndo;

/**
 * A step's state (its outputs): its triggers and a digest of the rest, its
 * captured stdout, and, for a step whose delete does something, what the
 * delete needs. A script step's undo does not record its op.
 */
type StepState = {
    triggers: StepProps["triggers"];
    recorded: string;
    stdout?: string;
} & Partial<Pick<StepProps, "guardDelete" | "audit" | "title">> &
    Partial<Omit<ScriptUndo, "op"> & Omit<VaultUndo, "op"> & Omit<KubernetesUndo, "op">> & { op?: "vault" | "kubernetes" };

/** What a step's delete undoes, or nothing (neither a delete script nor a staged Vault or Kubernetes copy). */
function undoOf(p: StepState): ScriptUndo | StoreUndo | undefined {
    if (p.op === "vault") return p.vault?.action === "stage" ? (p as VaultUndo) : undefined;
    if (p.op === "kubernetes") return p.kubernetes?.action === "stage" ? (p as KubernetesUndo) : undefined;
    return p.deleteScript ? (p as ScriptUndo) : undefined;
}

/** The undo a step records, by op: only a script step with a delete script, and a Vault or Kubernetes "stage", have one. */
function undoOfStep(props: StepProps): ScriptUndo | StoreUndo | undefined {
    const { title, attempts } = props;
    const timing = { retryDelaySeconds: props.retryDelaySeconds, timeoutSeconds: props.timeoutSeconds };
    if (props.op === "script" && props.deleteScript) return { title, target: props.target, deleteScript: props.deleteScript, attempts, ...timing };
    if (props.op === "vault" && props.vault.action === "stage") return { title, attempts, op: props.op, vault: props.vault, ...timing };
    if (props.op === "kubernetes" && props.kubernetes.action === "stage") return { title, attempts, op: props.op, kubernetes: props.kubernetes, ...timing };
    return undefined;
}

/**
 * What state keeps of a step: its triggers and a digest of the rest, plus,
 * for a step that can be undone, what its delete needs (a grant's withdrawal
 * gets the same stdin, kept secret).
 */
function outputs(props: StepProps, stdout: string | undefined): Record<string, unknown> {
    const outs: Record<string, unknown> = { triggers: props.triggers, recorded: recordedDigest(props) };
    if (stdout !== undefined) outs.stdout = secret(stdout);
    if (props.guardDelete && props.audit) Object.assign(outs, { guardDelete: props.guardDelete, audit: props.audit, title: props.title });
    const undo = undoOfStep(props);
    if (undo) {
        Object.assign(outs, undo, {
            ...(props.audit ? { audit: props.audit } : {}),
            ...(props.stdin !== undefined ? { stdin: secret(props.stdin) } : {}),
        });
    }
    return outs;
}

/**
 * A batch's create or update: runs its consumers not done at these triggers,
 * and records every one done. If any failed, the resource is still recorded
 * (a partial failure, batch.ts), so the next run continues with the others.
 */
async function runBatchStep(id: string, props: RolloutBatchStep, doneBefore: readonly string[]): Promise<provider.CreateResult> {
    const outcome = await runBatch(props, doneBefore);
    const outs = { ...outputs(props, undefined), done: outcome.done };
    if (outcome.failures.length) throw new PartialBatchError(batchFailure(props, outcome), id, outs);
    return { id, outs };
}

/** The consumers a batch's state says are done at its triggers (none for any other step). */
const doneOf = (olds: Record<string, unknown>): string[] => (Array.isArray(olds.done) ? (olds.done as string[]) : []);

export const stepProvider: provider.Provider = {
    version: "0.2.0",
    async check(_urn, _olds, news) {
        const p = inputsOf<StepFields>(news);
        // The delete guard asks the audit log the current program names, never one recorded in old state.
        noteAuditLog(p.audit);
        const refused = malformed(p);
        return refused ? { inputs: news, failures: [refused] } : { inputs: news };
    },
    async diff(_id, _urn, olds, news) {
        if (!sameTriggers(olds.triggers, news.triggers)) return { changes: true };
        const p = inputsOf<StepFields>(news);
        // A batch with a consumer not done yet (one that failed, or one added since) runs for it.
        if (p.op === "rollout-batch" && p.batch && pendingOf(p.batch, doneOf(olds)).length) return { changes: true };
        return { changes: olds.recorded !== recordedDigest(p) };
    },
    async create(_urn, inputs) {
        const props = inputsOf<StepProps>(inputs);
        if (props.op === "rollout-batch") return runBatchStep(randomUUID(), props, []);
        const stdout = await perform(props);
        return { id: randomUUID(), outs: outputs(props, stdout) };
    },
    async update(id, _urn, olds, news) {
        const props = inputsOf<StepProps>(news);
        const old = unwrap<StepState>(olds);
        if (props.op === "rollout-batch") return runBatchStep(id, props, sameTriggers(old.triggers, props.triggers) ? doneOf(olds) : []);
        // New triggers run the step again; anything else is only recorded.
        const stdout = sameTriggers(old.triggers, props.triggers) ? old.stdout : await perform(props);
        return { outs: outputs(props, props.captureStdout ? stdout : undefined) };
    },
    async delete(_id, urn, props) {
        const p = unwrap<StepState>(props);
        // Under continue-on-error the engine deletes what the program no longer
        // registers even after a step failed: never take back a generation
        // that the secret's consumers may still use.
        if (p.guardDelete && p.audit) {
            const refused = deleteRefusal(p.audit, p.guardDelete.generation, p.title ?? "", urn, p.guardDelete.kind ?? "grant");
            if (refused) throw new StepError(refused);
        }
        const undo = undoOf(p);
        if (!undo) return;
        const audit = undo.audit && { ...undo.audit, record: { ...undo.audit.record, phase: undoPhase(undo.audit.record.phase) } };
        try {
            if (undo.op === "vault" || undo.op === "kubernetes") {
                const fields = splitFields(undo.stdin);
                try {
                    if (undo.op === "vault") await vaultStep({ ...undo.vault, action: "unstage" }, fields[0]);
                    else await kubernetesStep({ ...undo.kubernetes, action: "unstage" }, fields[0]);
                } catch (e) {
                    throw new StepError(redact(`${undo.title} (undo): ${(e as Error).message}`, fields));
                }
            } else {
                await runScript(undo, undo.deleteScript, `${undo.title} (undo)`);
            }
        } catch (e) {
            appendAudit(audit, "failed", String((e as Error).message).split("\n")[0]);
            throw e;
        }
        appendAudit(audit, "ok");
    },
};
