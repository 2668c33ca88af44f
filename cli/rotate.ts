/**
 * The operator's console: `bin/rotate <command> --stack <env> [options]`.
 * A stack is an environment; it holds many secrets (rotation:secrets), each
 * rotated on its own. `bin/rotate --help` and `bin/rotate <command> --help`
 * list the commands, options and exit codes.
 *
 * It runs the stack through the Pulumi Automation API (cli/stack.ts) and adds
 * the runbook's guard rails, a picture of the plan, live progress and a
 * report of every run. `bin/pulumi preview` and `bin/pulumi up` stay what
 * they are; this adds to them.
 *
 * Commander parses the arguments: it gives each command its own --help and
 * refuses unknown options, which the hand-rolled parser before it did not.
 */
import * as fs from "fs";
import * as path from "path";
import { Command, CommanderError, Option } from "commander";
import type { Stack } from "@pulumi/pulumi/automation";
import { verifyChain } from "../lib/auditChain";
import { NAME, type EnvironmentConfig, type SecretEntry } from "../lib/config";
import { ConfigError, RotationRefusedError } from "../lib/errors";
import { checkVaultStores, committedGeneration, resolveEnvironment, resolveVaultStore } from "../lib/resolve";
import { lastCompleted, nextDue } from "../lib/schedule";
import { vaultCommittedGeneration } from "../lib/vault";
import { planSteps, planTable, renderPlanSvg } from "./planGraph";
import { EXIT, EXIT_CODES_HELP, runUpdate } from "./run";
import type { RunSecret } from "./runRecord";
import { LockedError, PROJECT, UsageError, assertUnlocked, openStack, readConfig, setSecretKeys, type StackConfig } from "./stack";
import { unlock } from "./unlock";

interface Common {
    stack: string;
    json?: boolean;
}
interface Mutating extends Common {
    yes?: boolean;
    plain?: boolean;
    engineOutput?: boolean;
}

/** Output for people goes to stdout, unless stdout carries the --json document. */
const say = (o: Common, line: string) => (o.json ? process.stderr : process.stdout).write(`${line}\n`);
const printJson = (doc: unknown) => process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);

function checkStackName(o: Common): void {
    if (!o.stack) throw new UsageError("name the stack: --stack <name> (e.g. --stack dev)");
    if (!/^[A-Za-z0-9_.-]+$/.test(o.stack)) throw new UsageError(`invalid stack name "${o.stack}"`);
}

/** The named secrets, each checked to exist in the stack (all of them when none is named). */
function pick(env: EnvironmentConfig, stack: string, names: string[] | undefined): string[] {
    for (const n of names ?? []) {
        if (!NAME.test(n)) throw new UsageError(`invalid secret name "${n}"`);
        if (!(n in env.secrets)) throw new UsageError(`stack ${stack} has no secret "${n}" (it has: ${Object.keys(env.secrets).join(", ")})`);
    }
    return names?.length ? names : Object.keys(env.secrets);
}

function auditLogOf(env: EnvironmentConfig): string {
    return path.resolve(PROJECT, env.auditLog);
}

/** The audit log's lines, read once per command however many secrets ask. */
function auditLines(env: EnvironmentConfig): string[] {
    const file = auditLogOf(env);
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
}

/**
 * The generation of `n` whose revocation started, from its store: a file
 * store's marker, or a Vault secret's metadata (asked over the API).
 * Throws, naming the store's field, when the store cannot be asked.
 */
async function committedOf(n: string, s: SecretEntry): Promise<number> {
    const store = structuredClone(s.store);
    if (store.kind === "file") return committedGeneration(path.resolve(PROJECT, store.dir), n);
    const problems = resolveVaultStore(store, PROJECT, `secrets.${n}.store`);
    if (problems.length) throw new Error(problems.join("; "));
    return vaultCommittedGeneration(store);
}

/** Each secret's schedule verdict from the audit log. */
function dueInfo(env: EnvironmentConfig, lines: string[], name: string): { schedule?: string; due?: Date; last?: Date } {
    const s = env.secrets[name];
    const last = lastCompleted(lines, name);
    if (!s.schedule) return { last };
    return { schedule: s.schedule, last, due: nextDue(last, s.schedule, new Date()) };
}

const isDue = (d: { due?: Date }) => d.due !== undefined && d.due.getTime() <= Date.now();

/**
 * The last outcome of a secret's runs, from its audit lines: the last failure
 * or the last phase reached, shortened ("<phase> <outcome> [consumer] g<N> <time>").
 * Taking back an older generation after a completed run is not an outcome.
 */
function lastOutcome(lines: string[], secret: string): string {
    for (let i = lines.length - 1; i >= 0; i--) {
        try {
            const r = JSON.parse(lines[i]);
            if (r.secret === secret && !(r.outcome === "ok" && (r.phase === "withdrawn" || r.phase === "unstaged"))) return `${r.phase} ${r.outcome}${r.consumer ? ` (${r.consumer})` : ""} g${r.generation} ${r.time}`;
        } catch {
            // not a JSON line
        }
    }
    return "none";
}

/** The secret as a run of the plan sees it: at generation `generation`, in `mode`. */
function runSecret(env: EnvironmentConfig, name: string, generation: number, mode: RunSecret["mode"]): RunSecret {
    return { name, generation, mode, consumers: env.secrets[name].consumers.map((c) => c.name), after: env.secrets[name].after };
}

/** Opens the stack and reads its config; read-only commands never create a stack. */
async function load(o: Common, mayCreate = false): Promise<{ stack: Stack; config: StackConfig }> {
    checkStackName(o);
    const stack = await openStack(o.stack, mayCreate);
    return { stack, config: await readConfig(stack) };
}

async function status(o: Common & { secret?: string[] }): Promise<number> {
    const { config } = await load(o);
    const { env } = config;
    const names = pick(env, o.stack, o.secret);
    const lines = auditLines(env);
    const notes: string[] = [];
    const rows = await Promise.all(names.map(async (n) => {
        const s = env.secrets[n];
        const committed = await committedOf(n, s).catch((e: Error) => {
            notes.push(`rotate: ${n}: committed generation unknown: ${e.message}`);
            return undefined;
        });
        const d = dueInfo(env, lines, n);
        return { secret: n, generation: s.generation, mode: s.mode, committed, lastCompleted: d.last?.toISOString(), schedule: d.schedule, nextDue: d.due?.toISOString(), due: isDue(d), lastOutcome: lastOutcome(lines, n) };
    }));
    if (o.json) {
        printJson({ stack: o.stack, auditLog: auditLogOf(env), secrets: rows, notes });
        return EXIT.done;
    }
    const short = (iso?: string) => (iso ? iso.slice(0, 16).replace("T", " ") : undefined);
    const table = rows.map((r) => [r.secret, String(r.generation), r.mode, r.committed === undefined ? "?" : String(r.committed), short(r.lastCompleted) ?? "never", r.nextDue ? `${short(r.nextDue)}${r.due ? " DUE" : ""}` : "no schedule", r.lastOutcome]);
    const head = ["secret", "generation", "mode", "committed", "last completed", "next due", "last outcome"];
    const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
    const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
    console.log(`stack ${o.stack} (audit log ${auditLogOf(env)})`);
    console.log(fmt(head));
    for (const r of table) console.log(fmt(r));
    for (const note of notes) console.log(note);
    return EXIT.done;
}

async function due(o: Common & { secret?: string[] }): Promise<number> {
    const { env } = (await load(o)).config;
    const names = pick(env, o.stack, o.secret);
    const lines = auditLines(env);
    const rows = names.map((n) => ({ secret: n, ...dueInfo(env, lines, n) }));
    for (const d of rows) {
        const verdict = !d.due ? "no schedule" : isDue(d) ? "DUE" : "not due";
        say(o, `rotate: ${o.stack}/${d.secret}: last completed ${d.last?.toISOString() ?? "never"}, schedule ${d.schedule ?? "none"}${d.due ? `, next due ${d.due.toISOString()}` : ""}: ${verdict}`);
    }
    return rows.some(isDue) ? EXIT.done : 1;
}

/** The plan `start` would run for these secrets: each at its next generation. */
async function plan(o: Common & { secret?: string[]; out?: string }): Promise<number> {
    const t0 = Date.now();
    const { env } = (await load(o)).config;
    const secrets = pick(env, o.stack, o.secret).map((n) => runSecret(env, n, env.secrets[n].generation + 1, "rotate"));
    const svg = await renderPlanSvg(secrets);
    const file = path.resolve(o.out ?? path.join(PROJECT, ".state", "plans", `${o.stack}-plan.svg`));
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, svg, { mode: 0o600 });
    if (o.json) {
        printJson({ stack: o.stack, svg: file, secrets, steps: planSteps(secrets) });
        return EXIT.done;
    }
    console.log(`rotate: stack ${o.stack}: the plan of bin/rotate start for ${secrets.map((s) => `${s.name} g${s.generation - 1} -> g${s.generation}`).join(", ")}`);
    console.log(planTable(secrets, { color: !!process.stdout.isTTY }));
    console.log(`rotate: picture: ${file} (${(svg.length / 1024).toFixed(0)} KiB, ${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    return EXIT.done;
}

async function preview(o: Common): Promise<number> {
    const { stack } = await load(o);
    try {
        await stack.preview({ diff: true, onOutput: (s) => process.stdout.write(s) });
        return EXIT.done;
    } catch (e) {
        const message = (e as Error).message;
        process.stderr.write(`rotate: preview failed: ${message.split("\n").filter((l) => /error|refused|Invalid/i.test(l)).slice(-6).join("\n") || message}\n`);
        return /Invalid rotation config/.test(message) ? EXIT.usage : /refused/.test(message) ? EXIT.refused : EXIT.failed;
    }
}

/**
 * Checks the config as it will be after the change (generations bumped,
 * mode set) the way the program will, before anything is written: every
 * local file, each Vault store's server, the forward-only rule.
 */
async function checkBeforeChange(stackName: string, config: StackConfig, changes: Record<string, { generation?: number; mode?: "rotate" | "rollback" }>): Promise<void> {
    const env = structuredClone(config.env);
    for (const [n, c] of Object.entries(changes)) Object.assign(env.secrets[n], c);
    const rotations = resolveEnvironment(stackName, env, PROJECT, config.inventory);
    await checkVaultStores(stackName, rotations);
}

function viewOf(o: Mutating): "live" | "plain" | "engine" {
    if (o.engineOutput) return "engine";
    return !o.plain && !o.json && process.stdout.isTTY && process.env.TERM !== "dumb" ? "live" : "plain";
}

async function update(o: Mutating, stack: Stack, config: StackConfig, command: "start" | "resume" | "rollback", secrets: RunSecret[], what: string): Promise<number> {
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
const stackSecrets = (env: EnvironmentConfig) => Object.keys(env.secrets).filter((n) => env.secrets[n].generation > 0).map((n) => runSecret(env, n, env.secrets[n].generation, env.secrets[n].mode));

async function start(o: Mutating & { secret?: string[]; due?: boolean; all?: boolean }): Promise<number> {
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

async function resume(o: Mutating & { secret?: string }): Promise<number> {
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

async function rollback(o: Mutating & { secret?: string }): Promise<number> {
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

/** Checks the audit log's hash chain (lib/auditChain.ts). */
async function auditVerify(o: { stack?: string; log?: string }): Promise<number> {
    const file = o.log ? path.resolve(o.log) : auditLogOf((await load({ stack: o.stack ?? "" })).config.env);
    if (!fs.existsSync(file)) throw new UsageError(`no audit log at ${file}`);
    const r = verifyChain(fs.readFileSync(file, "utf8"));
    const legacy = r.legacy ? ` (${r.legacy} earlier lines predate the chain and are not checked)` : "";
    if (r.ok) {
        console.log(`rotate: audit log ${file}: ${r.lines} lines, chain intact${legacy}`);
        return EXIT.done;
    }
    console.error(`rotate: audit log ${file}: line ${r.firstBad!.line} ${r.firstBad!.reason}${legacy}`);
    return 1;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** The program: one subcommand per runbook action, each with its own --help. */
function program(run: (p: Promise<number>) => void): Command {
    const cli = new Command("bin/rotate")
        .description("Rotates the secrets of a stack (an environment) with zero downtime: dual-active, every consumer verified before the old secret is revoked.")
        .addHelpText("after", `\nWithout --yes, start, resume and rollback change nothing: they say what they would do.\n\n${EXIT_CODES_HELP}`)
        .showHelpAfterError("(bin/rotate <command> --help for its options)")
        .exitOverride();
    const stackOption = () => new Option("-s, --stack <name>", "the stack (environment), e.g. dev").env("PULUMI_STACK").makeOptionMandatory();
    const json = () => new Option("--json", "print one JSON document on stdout (progress goes to stderr)");
    const mutating = (c: Command) =>
        c.addOption(stackOption())
            .option("-y, --yes", "really do it (without: say what would happen, change nothing)")
            .addOption(json())
            .option("--plain", "progress as timestamped lines, also on a terminal")
            .option("--engine-output", "show Pulumi's own output instead of the console's progress")
            .addHelpText("after", `\n${EXIT_CODES_HELP}`);

    cli.command("status").description("every secret: generation, mode, committed, last completed, next due, last outcome")
        .addOption(stackOption()).option("--secret <name>", "only this secret (repeatable)", collect).addOption(json())
        .action((o) => run(status(o)));
    cli.command("plan").description("the plan `start` would run, as a table and an SVG picture (changes nothing)")
        .addOption(stackOption()).option("--secret <name>", "only this secret (repeatable)", collect)
        .option("--out <file.svg>", "where to write the picture (default .state/plans/<stack>-plan.svg)").addOption(json())
        .action((o) => run(plan(o)));
    cli.command("preview").description("the engine's own preview of the stack (pulumi preview --diff); changes nothing")
        .addOption(stackOption()).action((o) => run(preview(o)));
    mutating(cli.command("start").description("bump the named secrets' generations, then rotate them")
        .option("--secret <name>", "rotate this secret (repeatable)", collect)
        .option("--due", "every secret whose schedule says so (and say which)")
        .option("--all", "every secret of the stack"))
        .action((o) => run(start(o)));
    mutating(cli.command("resume").description("run the stack again after a failure or a kill: unfinished rotations continue, steps that succeeded are not repeated")
        .option("--secret <name>", "the secret you mean to finish (the whole stack runs)"))
        .action((o) => run(resume(o)));
    mutating(cli.command("rollback").description("before revocation only: every consumer gets the old secret back, the new one is withdrawn")
        .option("--secret <name>", "the secret to roll back (required when the stack has several)"))
        .action((o) => run(rollback(o)));
    cli.command("due").description("exit 0 if a secret is due (names them), 1 if none")
        .addOption(stackOption()).option("--secret <name>", "only this secret (repeatable)", collect)
        .action((o) => run(due(o)));
    cli.command("unlock").description("remove the stale lock of a killed run (file backend only)")
        .addOption(stackOption()).action((o) => run(Promise.resolve().then(() => { checkStackName(o); return unlock(o.stack); })));
    cli.command("audit").description("the audit log").command("verify").description("check the audit log's hash chain")
        .option("-s, --stack <name>", "the stack whose audit log to check").option("--log <path>", "an audit log file instead")
        .action((o) => run(o.log || o.stack ? auditVerify(o) : Promise.reject(new UsageError("audit verify: --stack <name> or --log <path>"))));
    return cli;
}

/** An error's exit code: what the operator asked is wrong (2), refused (3), locked (4), or anything else (1). */
function exitCodeOf(e: Error): number {
    if (e instanceof UsageError || e instanceof ConfigError) return EXIT.usage;
    if (e instanceof RotationRefusedError) return EXIT.refused;
    if (e instanceof LockedError) return EXIT.locked;
    return 1;
}

function main(): void {
    let pending: Promise<number> | undefined;
    // The action's promise is kept here, not returned to commander: parse() is synchronous and would leave it unhandled.
    const cli = program((p) => {
        pending = p;
    });
    try {
        cli.parse(process.argv);
    } catch (e) {
        if (e instanceof CommanderError) {
            // Help and version end with 0; everything else commander refuses is a usage error.
            process.exitCode = e.code === "commander.helpDisplayed" || e.code === "commander.help" || e.code === "commander.version" ? 0 : EXIT.usage;
            return;
        }
        throw e;
    }
    if (!pending) {
        cli.outputHelp();
        process.exitCode = EXIT.usage;
        return;
    }
    pending.then(
        (code) => (process.exitCode = code),
        (e: Error) => {
            console.error(`rotate: ${e.message}`);
            process.exitCode = exitCodeOf(e);
        },
    );
}

main();
