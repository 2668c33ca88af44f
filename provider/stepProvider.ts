/**
 * The step provider: a Pulumi provider plugin of this project
 * (`pulumi-resource-rotation`, type `rotation:index:Step`) that runs the
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
import { createHash, randomUUID } from "crypto";
import type * as provider from "@pulumi/pulumi/provider";
import { runAt, where } from "./exec";
import { checkDrift } from "./drift";
import { VerificationError, noteLogSizes, runKeyOf, verifyConsumers, withFields } from "./authFailures";
import { preflightStep } from "./preflight";
import { deleteRefusal, noteAuditLog } from "./deleteGuard";
import { StepError, appendAudit, failure, redact, sleep, splitFields, undoPhase } from "./outcome";
import { randomSecret } from "../generators/random";
import { rollout } from "./rollout";
import { vaultStep } from "../adapters/vault";
import type { StepProps } from "./types";

export const STEP_TYPE = "rotation:index:Step";

/** The engine's marker of a secret value in provider RPCs. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

function unwrap(v: any): any {
    if (Array.isArray(v)) return v.map(unwrap);
    if (v && typeof v === "object") {
        if (v[SECRET_SIG] === SECRET_VALUE) return unwrap(v.value);
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
    }
    return v;
}

const secret = (value: unknown) => ({ [SECRET_SIG]: SECRET_VALUE, value });

/**
 * Inputs whose change is recorded without running the step again. A
 * pre-flight's `preflight` is not among them: it is read afresh each time the
 * step runs, and checks nothing that later steps rely on having recorded.
 */
const RECORDED_KEYS: (keyof StepProps)[] = ["title", "target", "op", "script", "deleteScript", "captureStdout", "attempts", "retryDelaySeconds", "timeoutSeconds", "audit", "rollout", "hosts", "checks", "random", "vault"];

/** A short digest of the recorded inputs: outputs keep this, not a second copy of them. */
export function recordedDigest(p: Partial<StepProps>): string {
    const h = createHash("sha256");
    for (const k of RECORDED_KEYS) h.update(`${k}=${JSON.stringify(p[k] ?? null)}\n`);
    return h.digest("hex").slice(0, 16);
}

const sameTriggers = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Runs the step: its script with retries, a consumer rollout, or health checks. Returns stdout when captured. */
export async function perform(props: StepProps): Promise<string | undefined> {
    const secrets = splitFields(props.stdin);
    try {
        let stdout: string | undefined;
        let found: Record<string, string> | undefined;
        // The gate asks every consumer first: nothing is committed while one is not on the new secret.
        // Then it notes each consumer log's size: the verification counts auth failures from there.
        if (props.drift) {
            await checkDrift(props, secrets);
            await noteLogSizes(props);
        }
        if (props.op === "rollout") {
            await rollout(props.rollout!, props.stdin ?? "");
        } else if (props.op === "random") {
            stdout = randomSecret(props.random!);
        } else if (props.op === "vault") {
            const record = props.audit?.record ?? {};
            stdout = await vaultStep(props.vault!, secrets[0], { previous: secrets[1], stack: String(record.stack ?? "<stack>"), secret: String(record.secret ?? "<secret>") });
        } else if (props.op === "preflight") {
            await preflightStep(props.preflight!, props.hosts!, props.title);
        } else if (props.op === "health") {
            const checks = (props.checks ?? []).map(({ host, ...c }) => ({ ...c, target: props.hosts![host] }));
            found = await verifyConsumers(checks, props.title, runKeyOf(props), secrets);
        } else {
            stdout = await runScript(props, props.script ?? "true", props.title);
        }
        appendAudit(withFields(props.audit, found), "ok");
        return props.captureStdout ? stdout : undefined;
    } catch (e) {
        const message = e instanceof StepError ? e.message : redact(`${props.title}: ${String((e as Error).message)}`, secrets);
        appendAudit(withFields(props.audit, e instanceof VerificationError ? e.auditFields : undefined), "failed", message.split("\n")[0]);
        throw new StepError(message);
    }
}

async function runScript(props: StepProps, script: string, title: string): Promise<string> {
    const attempts = Math.max(1, props.attempts);
    const target = props.target!;
    for (let attempt = 1; ; attempt++) {
        const r = await runAt(target, script, props.stdin ?? "", props.timeoutSeconds);
        if (r.code === 0 && !r.timedOut) return r.stdout;
        if (attempt >= attempts) throw failure(title, r, { where: where(target), timeoutSeconds: props.timeoutSeconds, attempts, secrets: splitFields(props.stdin) });
        await sleep(props.retryDelaySeconds);
    }
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
    if (undoable(props)) {
        Object.assign(outs, {
            title: props.title, target: props.target, deleteScript: props.deleteScript, attempts: props.attempts,
            ...(props.op === "vault" ? { op: props.op, vault: props.vault } : {}),
            retryDelaySeconds: props.retryDelaySeconds, timeoutSeconds: props.timeoutSeconds,
            ...(props.audit ? { audit: props.audit } : {}),
            ...(props.stdin !== undefined ? { stdin: secret(props.stdin) } : {}),
        });
    }
    // State keeps no undefined values (a vault step has neither target nor deleteScript).
    return Object.fromEntries(Object.entries(outs).filter(([, v]) => v !== undefined));
}

/** A step whose delete does something: a delete script, or a staged copy in Vault to remove. */
function undoable(p: StepProps): boolean {
    return Boolean(p.deleteScript) || (p.op === "vault" && p.vault?.action === "stage");
}

export const stepProvider: provider.Provider = {
    version: "0.2.0",
    async check(_urn, _olds, news) {
        // What each op cannot run without; a program of this project never gets here.
        const p = news as Partial<StepProps>;
        // The delete guard asks the audit log the current program names, never one recorded in old state.
        noteAuditLog(unwrap(p.audit));
        const needs: Record<string, string | undefined> = {
            script: p.target ? undefined : "target",
            rollout: p.rollout ? undefined : "rollout",
            health: p.checks && p.hosts && p.checks.every((c) => c.host in p.hosts!) ? undefined : "checks with their hosts",
            random: p.random ? undefined : "random",
            vault: p.vault ? undefined : "vault",
            preflight: p.preflight && p.hosts && p.preflight.consumers.every((c) => c.host in p.hosts!) ? undefined : "preflight with its hosts",
        };
        if (p.drift && !(p.hosts && p.drift.every((c) => c.host in p.hosts!))) needs[String(p.op)] = "hosts for its drift checks";
        const missing = needs[String(p.op)] ?? (p.op ? undefined : "op");
        return missing ? { inputs: news, failures: [{ property: missing.split(" ")[0], reason: `a ${p.op ?? "step"} step needs ${missing}` }] } : { inputs: news };
    },
    async diff(_id, _urn, olds, news) {
        if (!sameTriggers(olds.triggers, news.triggers)) return { changes: true };
        return { changes: olds.recorded !== recordedDigest(unwrap(news)) };
    },
    async create(_urn, inputs) {
        const props = unwrap(inputs) as StepProps;
        const stdout = await perform(props);
        return { id: randomUUID(), outs: outputs(props, stdout) };
    },
    async update(_id, _urn, olds, news) {
        const props = unwrap(news) as StepProps;
        const old = unwrap(olds) as { triggers: unknown; stdout?: string };
        // New triggers run the step again; anything else is only recorded.
        const stdout = sameTriggers(old.triggers, props.triggers) ? old.stdout : await perform(props);
        return { outs: outputs(props, props.captureStdout ? stdout : undefined) };
    },
    async delete(_id, urn, props) {
        const p = unwrap(props) as StepProps;
        // Under continue-on-error the engine deletes what the program no longer
        // registers even after a step failed: never take back a generation
        // that the secret's consumers may still use.
        if (p.guardDelete && p.audit) {
            const refused = deleteRefusal(p.audit, p.guardDelete.generation, p.title, urn, p.guardDelete.kind ?? "grant");
            if (refused) throw new StepError(refused);
        }
        if (!undoable(p)) return;
        const audit = p.audit && { ...p.audit, record: { ...p.audit.record, phase: undoPhase(p.audit.record.phase) } };
        try {
            if (p.op === "vault") {
                const fields = splitFields(p.stdin);
                try {
                    await vaultStep({ ...p.vault!, action: "unstage" }, fields[0]);
                } catch (e) {
                    throw new StepError(redact(`${p.title} (undo): ${(e as Error).message}`, fields));
                }
            } else {
                await runScript({ ...p, attempts: Math.max(1, p.attempts) }, p.deleteScript!, `${p.title} (undo)`);
            }
        } catch (e) {
            appendAudit(audit, "failed", String((e as Error).message).split("\n")[0]);
            throw e;
        }
        appendAudit(audit, "ok");
    },
};
