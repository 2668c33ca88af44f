/**
 * The commands that change things: start, resume, rollback. Without --yes
 * each says what it would do and changes nothing; with it, the config as it
 * will be is checked first, the lock too, and only then is anything written.
 */
import type { Stack } from "@pulumi/pulumi/automation";
import { type EnvironmentConfig } from "../lib/config";
import { RotationRefusedError } from "../lib/errors";
import { checkVaultStores, resolveEnvironment } from "../lib/resolve";
import { planSteps, planTable } from "./planGraph";
import { type Mutating, auditLines, auditLogOf, committedOf, dueInfo, isDue, load, pick, printJson, runSecret, say } from "./common";
import { EXIT, runUpdate } from "./run";
import type { RunSecret } from "./runRecord";
import { PROJECT, UsageError, assertUnlocked, setSecretKeys, type StackConfig } from "./stack";

/**
 * Checks the config as it will be after the change (generations bumped,
 * mode set) the way the program will, before anything is written: every
 * local file, each Vault store's server, the forward-only rule.
 */
export async function checkBeforeChange(stackName: string, config: StackConfig, changes: Record<string, { generation?: number; mode?: "rotate" | "rollback" }>): Promise<void> {
    const env = structuredClone(config.env);
    for (const [n, c] of Object.entries(changes)) Object.assign(env.secrets[n], c);
    const rotations = resolveEnvironment(stackName, env, PROJECT, config.inventory);
    await checkVaultStores(stackName, rotations);
}

export function viewOf(o: Mutating): "live" | "plain" | "engine" {
    if (o.engineOutput) return "engine";
    return !o.plain && !o.json && process.stdout.isTTY && process.env.TERM !== "dumb" ? "live" : "plain";
}

export async function update(o: Mutating, stack: Stack, config: StackConfig, command: "start" | "resume" | "rollback", secrets: RunSecret[], what: string): Promise<number> {
    const { env } = config;
    const { record, report } = await runUpdate({
        stack,
        command,
        secrets,
        what,
        auditLog: auditLogOf(env),
        view: viewOf(o),
        out: o.json ? process.stderr : process.stdout,
        committed: (n) => committedOf(n, env.secrets[n]),
    });
    const secs = ((record.ended - record.started) / 1000).toFixed(1);
    if (o.json) {
        const steps = record.steps.map((s) => ({ secret: s.secret, step: s.step, phase: s.phase, consumer: s.consumer, outcome: s.outcome, seconds: s.start && s.end ? (s.end - s.start) / 1000 : undefined, error: s.error }));
        printJson({ stack: o.stack, command, outcome: record.outcome, exitCode: record.exitCode, seconds: Number(secs), report, secrets, steps, audit: record.audit, next: record.next, errors: record.errors });
        return record.exitCode;
    }
    if (record.outcome !== "failed") {
        console.log(`rotate: ${what}: ${record.outcome} in ${secs}s`);
    } else {
        console.error(`rotate: ${what}: FAILED after ${secs}s`);
        for (const s of record.steps.filter((x) => x.outcome === "failed")) console.error(`rotate:   ${s.secret} ${s.consumer ? `consumer ${s.consumer}` : s.step}: ${s.error ?? "failed"}`);
        for (const e of record.errors) console.error(`rotate:   ${e}`);
        for (const n of record.next) console.error(`rotate: next: ${n}`);
    }
    console.log(`rotate: report: ${report}`);
    return record.exitCode;
}

/** Unfinished or not: every secret with a generation, as the stack's next `up` will run it. */
export const stackSecrets = (env: EnvironmentConfig) => Object.keys(env.secrets).filter((n) => env.secrets[n].generation > 0).map((n) => runSecret(env, n, env.secrets[n].generation, env.secrets[n].mode));

export async function start(o: Mutating & { secret?: string[]; due?: boolean; all?: boolean }): Promise<number> {
    if ([!!o.secret?.length, !!o.due, !!o.all].filter(Boolean).length !== 1) {
        throw new UsageError("start: say which secrets: --secret <name> (repeatable), --due (those whose schedule says so) or --all");
    }
    const { stack, config } = await load(o, !!o.yes);
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

    for (const n of names) {
        const s = env.secrets[n];
        // Advisory only: a store that cannot be asked is reported by the check below.
        const committed = s.mode === "rotate" && s.generation > 0 ? await committedOf(n, s).catch(() => undefined) : undefined;
        if (committed !== undefined && committed < s.generation) {
            say(o, `rotate: note: ${n} generation ${s.generation} never reached its revocation; generation ${s.generation + 1} replaces it (its grant is withdrawn at the end).`);
            say(o, `rotate: to finish generation ${s.generation} instead: bin/rotate resume --stack ${o.stack} --yes`);
        }
    }
    const secrets = names.map((n) => runSecret(env, n, env.secrets[n].generation + 1, "rotate"));
    const planned = secrets.map((s) => `${s.name} ${s.generation - 1} -> ${s.generation}`).join(", ");
    await checkBeforeChange(o.stack, config, Object.fromEntries(secrets.map((s) => [s.name, { generation: s.generation, mode: "rotate" as const }])));
    if (!o.yes) {
        say(o, planTable(secrets, { color: false }));
        say(o, `rotate: would rotate ${planned}; nothing was changed. Re-run with --yes to rotate`);
        if (o.json) printJson({ stack: o.stack, command: "start", outcome: "not-confirmed", exitCode: 0, secrets, steps: planSteps(secrets) });
        return EXIT.done;
    }
    assertUnlocked(o.stack);
    await setSecretKeys(stack, names.flatMap((n) => [
        { secret: n, key: "generation", value: String(env.secrets[n].generation + 1) },
        ...(env.secrets[n].mode !== "rotate" ? [{ secret: n, key: "mode", value: "rotate" }] : []),
    ]));
    say(o, `rotate: rotating ${planned} on stack ${o.stack}`);
    return update(o, stack, config, "start", secrets, `rotation of ${planned}`);
}

export async function resume(o: Mutating & { secret?: string }): Promise<number> {
    const { stack, config } = await load(o);
    const { env } = config;
    if (o.secret) pick(env, o.stack, [o.secret]);
    await checkBeforeChange(o.stack, config, {});
    if (!o.yes) {
        say(o, `rotate: would run stack ${o.stack} again: every rotation that did not finish continues${o.secret ? ` (including ${o.secret})` : ""}; nothing was changed. Re-run with --yes`);
        if (o.json) printJson({ stack: o.stack, command: "resume", outcome: "not-confirmed", exitCode: 0 });
        return EXIT.done;
    }
    assertUnlocked(o.stack);
    return update(o, stack, config, "resume", stackSecrets(env), `resume of stack ${o.stack}`);
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
        throw new RotationRefusedError(`rollback of ${n} generation ${s.generation} refused: its revocation has started, the old secret may no longer work; nothing was changed.\n` +
            `rotate: roll forward: bin/rotate resume --stack ${o.stack} --yes (or bin/rotate start --stack ${o.stack} --secret ${n} --yes for a new generation)`);
    }
    await checkBeforeChange(o.stack, config, { [n]: { mode: "rollback" } });
    if (!o.yes) {
        say(o, `rotate: would roll back ${n} generation ${s.generation}: every consumer gets generation ${s.generation - 1} back, then generation ${s.generation} is withdrawn at the source; nothing was changed. Re-run with --yes`);
        if (o.json) printJson({ stack: o.stack, command: "rollback", outcome: "not-confirmed", exitCode: 0, secret: n, generation: s.generation });
        return EXIT.done;
    }
    assertUnlocked(o.stack);
    await setSecretKeys(stack, [{ secret: n, key: "mode", value: "rollback" }]);
    const secrets = stackSecrets(env).map((x) => (x.name === n ? { ...x, mode: "rollback" as const } : x));
    return update(o, stack, config, "rollback", secrets, `rollback of ${n} generation ${s.generation}`);
}
