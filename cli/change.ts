/**
 * The commands that change things: start, resume, rollback. Without --yes
 * each says what it would do and changes nothing; with it, the config as it
 * will be is checked first, the lock too, and only then is anything written.
 * An update the engine refuses before it runs a step (a lock taken in the
 * meantime) puts the stack file back as it was: still nothing changed.
 */
import type { Stack } from "./pulumiCli";
import type { EnvironmentConfig } from "../lib/config";
import { RotationRefusedError } from "../lib/errors";
import { checkStores, resolveEnvironment, type ResolvedRotation } from "../adapters/resolve";
import { type Reason, secretEntry } from "../lib/configSchema";
import { type SecretChange, ceremonyOfStart, envAfter } from "./approve";
import { planSteps, planTable } from "./planGraph";
import { type Mutating, auditLines, auditLogOf, committedOf, dueInfo, isDue, load, pick, printJson, runSecret, say } from "./common";
import { EXIT, runUpdate } from "./run";
import { type RunRecord, type RunSecret, failedRunLine, planOfRun } from "./runRecord";
import { describeWindow, isOpen, nextOpening } from "../lib/window";
import { assertUnlocked } from "./backend";
import { LockedError, PROJECT, UsageError, setSecretKeys, type StackConfig } from "./stack";
import type { FileCopy } from "./stackFile";
import { runBy } from "../provider/outcome";
import { STEP_TYPE } from "../provider/types";
import { rolloutResourceNames } from "../lib/plan";
import { openNotifier, sinkCredentials } from "./notify";
import { enterValues, wantedEntries } from "./entry";
import { mark } from "./trace";

/**
 * Checks the config as it will be after the change (generations bumped,
 * mode set) the way the program will, before anything is written: every
 * local file, each Vault store's server, the forward-only rule.
 */
export async function checkBeforeChange(stackName: string, config: StackConfig, changes: Record<string, SecretChange>): Promise<ResolvedRotation[]> {
    const env = envAfter(config.env, changes);
    const rotations = resolveEnvironment(stackName, env, PROJECT, config.inventory);
    await checkStores(stackName, rotations);
    // rotation:notify's URLs and keys: a missing or group-readable file stops the command here, not mid-run.
    sinkCredentials(stackName, env);
    return rotations;
}

export function viewOf(o: Mutating): "live" | "plain" | "engine" {
    if (o.engineOutput) return "engine";
    return !o.plain && !o.json && process.stdout.isTTY && process.env.TERM !== "dumb" ? "live" : "plain";
}

/** A run's --json document. */
function runJson(o: Mutating, command: string, record: RunRecord, report: string) {
    const steps = record.steps.map((s) => ({
        secret: s.secret,
        step: s.step,
        phase: s.phase,
        consumer: s.consumer,
        wave: s.wave,
        outcome: s.outcome,
        seconds: s.start && s.end ? (s.end - s.start) / 1000 : undefined,
        error: s.error,
    }));
    return {
        stack: o.stack,
        command,
        outcome: record.outcome,
        exitCode: record.exitCode,
        seconds: (record.ended - record.started) / 1000,
        ended: new Date(record.ended).toISOString(),
        report,
        secrets: record.secrets,
        ...(record.preflight ? { preflight: record.preflight } : {}),
        steps,
        audit: record.audit,
        next: record.next,
        errors: record.errors,
        ...(record.notifications ? { notifications: record.notifications } : {}),
    };
}

/** How a failed run's closing line starts when it names each secret's outcome. */
const LEAD = { start: "rotation of ", resume: "resume of ", rollback: "rollback of " } as const;

/**
 * Runs the update, says how it went (unless --json: the caller prints the
 * document), returns its record. `written`: the stack file before the
 * command wrote it, put back if the engine runs nothing (cli/run.ts).
 */
export async function update(
    o: Mutating,
    stack: Stack,
    config: StackConfig,
    command: "start" | "resume" | "rollback",
    secrets: RunSecret[],
    what: string,
    replace?: string[],
    written?: FileCopy,
): Promise<{ record: RunRecord; report: string }> {
    const { env } = config;
    const { record, report } = await runUpdate({
        stack,
        command,
        secrets,
        what,
        replace,
        auditLog: auditLogOf(env),
        view: viewOf(o),
        out: o.json ? process.stderr : process.stdout,
        committed: (n) => committedOf(n, env.secrets[n]),
        written,
        notify: openNotifier(o.stack, env),
    });
    const secs = ((record.ended - record.started) / 1000).toFixed(1);
    if (record.outcome === "refused") {
        // Its pre-flight refused the rotation (said on stderr with --json too, as every refusal is).
        record.errors.forEach((e, i) => console.error(`rotate: ${i ? "  " : ""}${e}`));
        for (const n of record.next) console.error(`rotate: next: ${n}`);
    }
    const failedDeliveries = (record.notifications ?? []).filter((d) => d.outcome === "failed");
    if (record.notifications?.length)
        say(
            o,
            `rotate: notified: ${record.notifications.length - failedDeliveries.length} delivered${failedDeliveries.length ? `, ${failedDeliveries.length} FAILED (${failedDeliveries.map((d) => `${d.sink} ${d.event}: ${d.error}`).join("; ")}; in the audit log and the report)` : ""}`,
        );
    if (o.json) return { record, report };
    if (record.outcome === "awaiting-person") {
        console.log(`rotate: ${what}: stopped after ${secs}s at a step only a person can do (exit ${record.exitCode})`);
        for (const n of record.next) console.log(`rotate: next: ${n}`);
    } else if (record.outcome !== "failed") {
        if (record.outcome !== "refused") console.log(`rotate: ${what}: ${record.outcome} in ${secs}s`);
    } else {
        console.error(`rotate: ${failedRunLine(LEAD[command], record, secs) ?? `${what}: FAILED after ${secs}s`}`);
        for (const s of record.steps.filter((x) => x.outcome === "failed"))
            console.error(`rotate:   ${s.secret} ${s.consumer ? `consumer ${s.consumer}` : s.step}: ${s.error ?? "failed"}`);
        for (const e of record.errors) console.error(`rotate:   ${e}`);
        for (const n of record.next) console.error(`rotate: next: ${n}`);
    }
    console.log(`rotate: report: ${report}`);
    return { record, report };
}

/** update() for a command that ends with it: prints the --json document, returns the exit code. */
async function finalUpdate(
    o: Mutating,
    stack: Stack,
    config: StackConfig,
    command: "resume" | "rollback",
    secrets: RunSecret[],
    what: string,
    replace?: string[],
    written?: FileCopy,
): Promise<number> {
    const { record, report } = await update(o, stack, config, command, secrets, what, replace, written);
    if (o.json) printJson(runJson(o, command, record, report));
    return record.exitCode;
}

/**
 * The window check of `start`: a secret whose window is closed is refused
 * (naming the next opening), or with `--due` left for later; with
 * `--outside-window` it goes ahead and its audit lines say so.
 */
function windowVerdicts(
    o: Mutating & { outsideWindow?: string; due?: boolean },
    env: EnvironmentConfig,
    names: string[],
    now: Date,
): { go: string[]; outside: string[] } {
    const closed = names.filter((n) => env.secrets[n].window && !isOpen(env.secrets[n].window!, now));
    const why = (n: string) => {
        const w = env.secrets[n].window!;
        return `${n}: outside its rotation window (${describeWindow(w)}); it next opens ${nextOpening(w, now).toISOString()}`;
    };
    if (!closed.length || o.outsideWindow) {
        for (const n of closed)
            say(o, `rotate: ${why(n)}; going ahead (--outside-window "${o.outsideWindow}", recorded in every audit line of the generation)`);
        return { go: names, outside: closed };
    }
    if (o.due) {
        for (const n of closed) say(o, `rotate: due but not now: ${why(n)}`);
        return { go: names.filter((n) => !closed.includes(n)), outside: [] };
    }
    throw new RotationRefusedError(
        `${closed.map(why).join("; ")}. Nothing was changed. Start it then, or pass --outside-window "<why>" (recorded in the audit log)`,
    );
}

/** The config keys of leave to rotate generation `generation` of `n` outside its window: who (this user) and why. */
function leave(n: string, generation: number, why: string): { secret: string; key: string; value: string }[] {
    const who = runBy();
    const by = who.operatorClaimed ? `${who.operatorClaimed} (${who.runBy})` : who.runBy;
    return [
        ["generation", String(generation)],
        ["by", by.slice(0, 100)],
        ["why", why],
    ].map(([k, value]) => ({ secret: n, key: `outsideWindow.${k}`, value }));
}

/** Unfinished or not: every secret with a generation, as the stack's next `up` will run it. */
export const stackSecrets = (env: EnvironmentConfig) =>
    Object.keys(env.secrets)
        .filter((n) => env.secrets[n].generation > 0)
        .map((n) => runSecret(env, n, env.secrets[n].generation, env.secrets[n].mode));

/** --note as the config will hold it: one line, at most 200 characters (checked before anything is written). */
function checkNote(note: string | undefined): void {
    const r = secretEntry.shape.note.safeParse(note);
    if (!r.success) throw new UsageError(`--note ${r.error.issues[0].message}`);
}

export async function start(
    o: Mutating & { secret?: string[]; due?: boolean; all?: boolean; outsideWindow?: string; reason?: Reason; note?: string; request?: string; key?: string },
): Promise<number> {
    if ([!!o.secret?.length, !!o.due, !!o.all].filter(Boolean).length !== 1) {
        throw new UsageError("start: say which secrets: --secret <name> (repeatable), --due (those whose schedule says so) or --all");
    }
    checkNote(o.note);
    if (o.outsideWindow !== undefined && !/^[^\r\n]{1,200}$/.test(o.outsideWindow.trim()))
        throw new UsageError('--outside-window says why, in one line of at most 200 characters, e.g. --outside-window "incident 4711: key leaked"');
    const { stack, config } = await load(o, !!o.yes);
    mark("config parsed");
    // Another operator's run is named at once, before anything else; checked again just before writing.
    if (o.yes) await assertUnlocked(o.stack);
    mark("lock check");
    const { env } = config;
    let names: string[];
    if (o.all) names = Object.keys(env.secrets);
    else if (o.due) {
        const lines = auditLines(env);
        names = Object.keys(env.secrets).filter((n) => isDue(dueInfo(env, lines, n)));
        const notDue = Object.keys(env.secrets).filter((n) => !names.includes(n));
        if (notDue.length) say(o, `rotate: not due: ${notDue.join(", ")}`);
        if (!names.length) {
            say(o, `rotate: stack ${o.stack}: no secret is due; nothing to do`);
            if (o.json) printJson({ stack: o.stack, command: "start", outcome: "nothing-due", exitCode: 0, secrets: [] });
            return EXIT.done;
        }
        say(o, `rotate: due: ${names.join(", ")}`);
    } else names = pick(env, o.stack, o.secret);
    const { go, outside } = windowVerdicts(o, env, names, new Date());
    if (!go.length) {
        say(o, `rotate: stack ${o.stack}: no due secret's window is open; nothing to do`);
        if (o.json) printJson({ stack: o.stack, command: "start", outcome: "outside-window", exitCode: 0, secrets: [] });
        return EXIT.done;
    }
    names = go;

    for (const n of names) {
        const s = env.secrets[n];
        // Advisory only: a store that cannot be asked is reported by the check below.
        const committed = s.mode === "rotate" && s.generation > 0 ? await committedOf(n, s).catch(() => undefined) : undefined;
        if (committed !== undefined && committed < s.generation) {
            say(
                o,
                `rotate: note: ${n} generation ${s.generation} never reached its revocation; generation ${s.generation + 1} replaces it (its grant is withdrawn at the end).`,
            );
            say(o, `rotate: to finish generation ${s.generation} instead: bin/rotate resume --stack ${o.stack} --yes`);
        }
    }
    mark("committed generations");
    const secrets = names.map((n) => runSecret(env, n, env.secrets[n].generation + 1, "rotate"));
    const planned = secrets.map((s) => `${s.name} ${s.generation - 1} -> ${s.generation}`).join(", ");
    // Every start says why (the runbook's reasons); a note of an earlier rotation does not carry over.
    const reason: Reason = o.reason ?? "scheduled";
    const changes = Object.fromEntries(
        secrets.map((s): [string, SecretChange] => [s.name, { generation: s.generation, mode: "rotate", reason, note: o.note }]),
    );
    // The pre-flight (every host, config, reload program, disk, the source, the store) is the first step
    // of each rotation's update; one that fails puts the stack file back (cli/run.ts), so it is not run here too.
    await checkBeforeChange(o.stack, config, changes);
    mark("checks before the change (files, stores, notify)");
    const ceremony = ceremonyOfStart(o, envAfter(env, changes), names);
    mark("ceremony");
    if (ceremony.kind === "stop") {
        if (ceremony.request) await announceRequest(o, env, secrets, ceremony.request);
        return ceremony.exitCode;
    }
    const approval = ceremony.kind === "approved" ? ceremony.approval : undefined;
    for (const s of secrets) Object.assign(s, { reason, note: o.note, approval });
    if (!o.yes) {
        say(o, planTable(secrets, { color: false }));
        say(o, `rotate: would rotate ${planned}; nothing was changed. Re-run with --yes to rotate`);
        if (o.json) printJson({ stack: o.stack, command: "start", outcome: "not-confirmed", exitCode: 0, secrets, steps: planSteps(secrets) });
        return EXIT.done;
    }
    await assertUnlocked(o.stack);
    // A typed value (generator kind "manual") is asked for now: after every check, before anything is written.
    const entry = await enterValues(
        env,
        o.stack,
        wantedEntries(env, o.stack, auditLogOf(env), names, (n) => env.secrets[n].generation + 1),
    );
    mark("lock check again, typed values");
    try {
        return await startUpdate(o, stack, config, names, secrets, outside, reason, planned, approval);
    } finally {
        entry?.close();
    }
}

/** start's update once everything is checked: the stack file written, the run, an automatic rollback where configured. */
async function startUpdate(
    o: Mutating & { outsideWindow?: string; note?: string },
    stack: Stack,
    config: StackConfig,
    names: string[],
    secrets: RunSecret[],
    outside: string[],
    reason: Reason,
    planned: string,
    approval: RunSecret["approval"],
): Promise<number> {
    const { env } = config;
    const written = await setSecretKeys(
        stack,
        names.flatMap((n) => [
            { secret: n, key: "generation", value: String(env.secrets[n].generation + 1) },
            ...(env.secrets[n].mode !== "rotate" ? [{ secret: n, key: "mode", value: "rotate" }] : []),
            // Leave for this generation only, recorded in its every audit line; an earlier generation's is removed.
            ...(env.secrets[n].outsideWindow !== false ? [{ secret: n, key: "outsideWindow", value: undefined }] : []),
            ...(outside.includes(n) ? leave(n, env.secrets[n].generation + 1, o.outsideWindow!) : []),
            { secret: n, key: "reason", value: reason },
            ...(o.note !== undefined || env.secrets[n].note !== undefined ? [{ secret: n, key: "note", value: o.note }] : []),
            // The request that approves this generation: the program reads its witnesses from the signatures. An earlier generation's does not carry over.
            ...(env.secrets[n].approval ? [{ secret: n, key: "approval", value: undefined }] : []),
            ...(approval ? [{ secret: n, key: "approval.request", value: approval.request }] : []),
        ]),
    );
    mark("stack file written");
    say(o, `rotate: rotating ${planned} on stack ${o.stack}`);
    const first = await update(o, stack, config, "start", secrets, `rotation of ${planned}`, undefined, written);
    const back = await rollBackOnFailure(o, stack, config, first.record);
    if (o.json)
        printJson({
            ...runJson(o, "start", first.record, first.report),
            ...(back ? { exitCode: first.record.exitCode, outcome: "rolled-back", rollback: runJson(o, "rollback", back.record, back.report) } : {}),
        });
    return first.record.exitCode;
}

/** A recorded ceremony request: its secrets await a second person (rotation:notify's awaiting-approval). */
async function announceRequest(o: Mutating, env: EnvironmentConfig, secrets: RunSecret[], request: { id: string; expiresAt: string }): Promise<void> {
    const n = openNotifier(o.stack, env);
    if (!n) return;
    for (const s of secrets)
        n.notifier.emit({
            event: "awaiting-approval",
            stack: o.stack,
            command: "start",
            secret: s.name,
            generation: s.generation,
            mode: "rotate",
            request,
            next: [`bin/rotate approve --stack ${o.stack} --request ${request.id} --yes`],
        });
    const failed = (await n.notifier.settle()).filter((d) => d.outcome === "failed");
    if (failed.length) say(o, `rotate: notifying ${failed.map((d) => d.sink).join(", ")} of the request FAILED (in the audit log)`);
    else if (n.notifier.deliveries.length) say(o, `rotate: notified of the request: ${[...new Set(n.notifier.deliveries.map((d) => d.sink))].join(", ")}`);
}

/**
 * `rollout.onFailure: rollback`: a secret that failed before its revocation
 * is taken back at once by a rollback update (every consumer moved gets the
 * old secret again, the new grant is withdrawn, the staged copy removed).
 * The start still ends non-zero: it did not rotate.
 */
async function rollBackOnFailure(
    o: Mutating,
    stack: Stack,
    config: StackConfig,
    record: RunRecord,
): Promise<{ record: RunRecord; report: string } | undefined> {
    if (record.exitCode !== EXIT.failed) return undefined;
    const failed = new Set(record.steps.filter((s) => s.outcome === "failed").map((s) => s.secret));
    const names = record.secrets.filter((s) => failed.has(s.name) && config.env.secrets[s.name].rollout.onFailure === "rollback").map((s) => s.name);
    if (!names.length) return undefined;
    for (const n of names) {
        const step = record.steps.find((s) => s.secret === n && s.outcome === "failed")!;
        say(
            o,
            `rotate: ${n}: rollout.onFailure is rollback: taking generation ${record.secrets.find((s) => s.name === n)!.generation} back now (${step.consumer ? `consumer ${step.consumer}` : step.step} failed: ${step.error ?? "see above"})`,
        );
    }
    const written = await setSecretKeys(
        stack,
        names.map((n) => ({ secret: n, key: "mode", value: "rollback" })),
    );
    const env = structuredClone(config.env);
    for (const n of names) env.secrets[n].generation += 1;
    const secrets = stackSecrets(env).map((x) => (names.includes(x.name) ? { ...x, mode: "rollback" as const } : x));
    let back: { record: RunRecord; report: string };
    try {
        back = await update(o, stack, config, "rollback", secrets, `automatic rollback of ${names.join(", ")}`, undefined, written);
    } catch (e) {
        // Another run took the lock between the two updates: the start's own failure and exit code stand.
        if (!(e instanceof LockedError)) throw e;
        say(o, `rotate: the automatic rollback of ${names.join(", ")} was refused: ${e.message}`);
        say(
            o,
            `rotate: nothing was revoked, the old secret still works; once the stack is free: ${names.map((n) => `bin/rotate rollback --stack ${o.stack} --secret ${n} --yes`).join("; ")}`,
        );
        return undefined;
    }
    say(
        o,
        back.record.exitCode === EXIT.done
            ? `rotate: rolled back ${names.join(", ")}: every consumer holds the old secret again and the new one is withdrawn; the rotation failed (exit ${record.exitCode})`
            : `rotate: the automatic rollback of ${names.join(", ")} FAILED too: nothing was revoked, the old secret still works; fix the cause, then bin/rotate rollback --stack ${o.stack} --secret <name> --yes`,
    );
    return back;
}

export async function resume(o: Mutating & { secret?: string; redeploy?: string[] }): Promise<number> {
    const { stack, config } = await load(o);
    const { env } = config;
    if (o.secret) pick(env, o.stack, [o.secret]);
    if (o.redeploy?.length && !o.secret) throw new UsageError("resume: --redeploy needs the secret whose consumers they are: --secret <name>");
    for (const c of o.redeploy ?? []) {
        if (!env.secrets[o.secret!].consumers.some((x) => x.name === c))
            throw new UsageError(`resume: ${o.secret} has no consumer "${c}" (it has: ${env.secrets[o.secret!].consumers.map((x) => x.name).join(", ")})`);
    }
    // A consumer's rollout that succeeded is not repeated; --redeploy runs it again (its config was reverted behind the rotation's back).
    // A batched consumer shares its resource (rollout.batch): its whole batch is deployed again.
    const project = (await stack.workspace.projectSettings()).name;
    const redeploying = o.secret ? runSecret(env, o.secret, env.secrets[o.secret].generation, env.secrets[o.secret].mode) : undefined;
    const resources = redeploying && rolloutResourceNames(redeploying.name, planOfRun(redeploying), redeploying.generation, redeploying.mode);
    const replace = [...new Set((o.redeploy ?? []).map((c) => resources!.get(c)!))].map(
        (resource) => `urn:pulumi:${o.stack}::${project}::rotation:index:Rotation$${STEP_TYPE}::${resource}`,
    );
    await checkBeforeChange(o.stack, config, {});
    if (!o.yes) {
        say(
            o,
            `rotate: would run stack ${o.stack} again: every rotation that did not finish continues${o.secret ? ` (including ${o.secret})` : ""}${o.redeploy?.length ? `, deploying ${o.secret} to ${o.redeploy.join(", ")} again` : ""}; nothing was changed. Re-run with --yes`,
        );
        if (o.json) printJson({ stack: o.stack, command: "resume", outcome: "not-confirmed", exitCode: 0 });
        return EXIT.done;
    }
    await assertUnlocked(o.stack);
    // A rotation that stopped before its typed value was taken asks for it again.
    const rotating = Object.keys(env.secrets).filter((n) => env.secrets[n].mode === "rotate");
    const entry = await enterValues(
        env,
        o.stack,
        wantedEntries(env, o.stack, auditLogOf(env), rotating, (n) => env.secrets[n].generation),
    );
    try {
        return await finalUpdate(
            o,
            stack,
            config,
            "resume",
            stackSecrets(env),
            `resume of stack ${o.stack}${o.redeploy?.length ? ` (redeploying ${o.redeploy.join(", ")})` : ""}`,
            replace,
        );
    } finally {
        entry?.close();
    }
}

export async function rollback(o: Mutating & { secret?: string }): Promise<number> {
    const { stack, config } = await load(o);
    const { env } = config;
    let n = o.secret;
    if (!n) {
        const names = Object.keys(env.secrets);
        if (names.length !== 1) throw new UsageError(`rollback: name the secret: --secret <name> (stack ${o.stack} has ${names.join(", ")})`);
        n = names[0];
    }
    pick(env, o.stack, [n]);
    const s = env.secrets[n];
    if (s.generation === 0) throw new UsageError(`stack ${o.stack}: ${n} is at generation 0; nothing to roll back`);
    let committed: number;
    try {
        committed = await committedOf(n, s);
    } catch (e) {
        throw new UsageError(`rollback of ${n}: cannot tell whether its revocation has started: ${(e as Error).message}; nothing was changed`);
    }
    if (committed >= s.generation) {
        throw new RotationRefusedError(
            `rollback of ${n} generation ${s.generation} refused: its revocation has started, the old secret may no longer work; nothing was changed.\n` +
                `rotate: roll forward: bin/rotate resume --stack ${o.stack} --yes (or bin/rotate start --stack ${o.stack} --secret ${n} --yes for a new generation)`,
        );
    }
    await checkBeforeChange(o.stack, config, { [n]: { mode: "rollback" } });
    if (!o.yes) {
        say(
            o,
            `rotate: would roll back ${n} generation ${s.generation}: every consumer gets generation ${s.generation - 1} back, then generation ${s.generation} is withdrawn at the source; nothing was changed. Re-run with --yes`,
        );
        if (o.json) printJson({ stack: o.stack, command: "rollback", outcome: "not-confirmed", exitCode: 0, secret: n, generation: s.generation });
        return EXIT.done;
    }
    await assertUnlocked(o.stack);
    const written = await setSecretKeys(stack, [{ secret: n, key: "mode", value: "rollback" }]);
    const secrets = stackSecrets(env).map((x) => (x.name === n ? { ...x, mode: "rollback" as const } : x));
    return finalUpdate(o, stack, config, "rollback", secrets, `rollback of ${n} generation ${s.generation}`, undefined, written);
}
