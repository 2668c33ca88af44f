/**
 * The operator's front door: `bin/rotate <command> --stack <env> [options]`.
 * A stack is an environment; it holds many secrets (rotation:secrets), each
 * rotated on its own. Run `bin/rotate --help` for the commands.
 *
 * Everything else is plain Pulumi through bin/pulumi; this adds the runbook's
 * guard rails and says what happens next.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parseArgs as parseCli } from "util";
import { verifyChain } from "../lib/auditChain";
import { decodeConfigValue } from "../lib/configSchema";
import { committedGeneration, resolveVaultStore } from "../lib/resolve";
import { secretEntry } from "../lib/configSchema";
import { vaultCommittedGeneration } from "../lib/vault";
import { lastCompleted, nextDue } from "../lib/schedule";

const ROOT = path.resolve(__dirname, "..");
const PULUMI = path.join(ROOT, "bin", "pulumi");
/** The Pulumi project the commands act on: this checkout, or a copy of it (ROTATION_PROJECT_DIR, used by the tests). */
const PROJECT = process.env.ROTATION_PROJECT_DIR ? path.resolve(process.env.ROTATION_PROJECT_DIR) : ROOT;

const HELP = `usage: bin/rotate <command> --stack <env> [options]

  status    --stack S [--secret N]     every secret: generation, mode, committed, last completed, next due, last outcome
  preview   --stack S                  the plan \`up\` would run (pulumi preview --diff); changes nothing
  start     --stack S (--secret N ... | --due | --all) [--yes]
                                       bump the named secrets' generations, preview, then rotate them;
                                       --due: every secret whose schedule says so (and says which)
  resume    --stack S [--secret N] [--yes]
                                       run the stack again after a failure or a kill: every unfinished
                                       rotation continues, steps that succeeded are not repeated
  rollback  --stack S --secret N [--yes]
                                       before revocation only: every consumer of N gets the old secret back
  due       --stack S [--secret N]     exit 0 if a secret is due (names them), 1 if none
  unlock    --stack S                  remove the stale lock of a killed run (file backend only)
  audit verify --stack S [--log PATH]  check the audit log's hash chain

Without --yes, start, resume and rollback change nothing: they say what they would do.
--secret may be given more than once (start only).`;

class UsageError extends Error {
    override readonly name = "UsageError";
}

interface Options {
    command: string;
    stack: string;
    yes: boolean;
    secrets: string[];
    due: boolean;
    all: boolean;
    log?: string;
}

const COMMANDS = ["status", "preview", "start", "resume", "rollback", "unlock", "due", "audit"];

function parseArgs(argv: string[]): Options | undefined {
    if (!argv.length || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") return undefined;
    const [command, ...rest] = argv;
    if (!COMMANDS.includes(command)) throw new UsageError(`unknown command "${command}"\n${HELP}`);
    if (command === "audit" && rest.shift() !== "verify") throw new UsageError("usage: bin/rotate audit verify --stack <name> [--log <path>]");
    let values: Record<string, string | boolean | string[] | undefined>;
    try {
        ({ values } = parseCli({
            args: rest,
            options: {
                stack: { type: "string", short: "s" },
                secret: { type: "string", multiple: true },
                yes: { type: "boolean", short: "y" },
                due: { type: "boolean" },
                all: { type: "boolean" },
                log: { type: "string" },
                help: { type: "boolean", short: "h" },
            },
            strict: true,
            allowPositionals: false,
        }));
    } catch (e) {
        throw new UsageError(`${(e as Error).message}\n${HELP}`);
    }
    if (values.help) return undefined;
    const o: Options = {
        command,
        stack: (values.stack as string | undefined) ?? process.env.PULUMI_STACK ?? "",
        yes: !!values.yes,
        secrets: (values.secret as string[] | undefined) ?? [],
        due: !!values.due,
        all: !!values.all,
        log: values.log as string | undefined,
    };
    const allowed: Record<string, string[]> = {
        start: ["secret", "due", "all", "yes"], resume: ["secret", "yes"], rollback: ["secret", "yes"], status: ["secret"], due: ["secret"], audit: ["log"],
    };
    for (const k of ["secret", "due", "all", "yes", "log"]) {
        const given = k === "secret" ? o.secrets.length > 0 : !!values[k];
        if (given && !(allowed[command] ?? []).includes(k)) throw new UsageError(`${command} does not take --${k}`);
    }
    if (command === "audit" && o.log) return o;
    if (!o.stack) throw new UsageError("name the stack: --stack <name> (e.g. --stack dev)");
    if (!/^[A-Za-z0-9_.-]+$/.test(o.stack)) throw new UsageError(`invalid stack name "${o.stack}"`);
    if (command === "start" && [o.secrets.length > 0, o.due, o.all].filter(Boolean).length !== 1) {
        throw new UsageError("start: say which secrets: --secret <name> (repeatable), --due (those whose schedule says so) or --all");
    }
    if ((command === "rollback" || command === "resume") && o.secrets.length > 1) throw new UsageError(`${command}: one --secret at a time`);
    for (const n of o.secrets) if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(n)) throw new UsageError(`invalid secret name "${n}"`);
    return o;
}

function pulumi(args: string[], capture = false): { code: number; stdout: string; stderr: string } {
    const r = spawnSync(PULUMI, [...args, "--cwd", PROJECT], { cwd: PROJECT, stdio: capture ? ["ignore", "pipe", "pipe"] : "inherit", encoding: "utf8" });
    return { code: r.status ?? 1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function must(args: string[], what: string): string {
    const r = pulumi(args, true);
    if (r.code !== 0) throw new Error(`${what} failed (pulumi ${args.join(" ")}): ${r.stderr.trim().split("\n").slice(-2).join(" ")}`);
    return r.stdout.trim();
}

/** What the CLI needs of one secret's config (validated fully by the program itself). */
interface SecretView {
    generation: number;
    mode: string;
    schedule?: string;
    /** As written in the stack config (checked when used). */
    store?: unknown;
}

interface StackView {
    secrets: Record<string, SecretView>;
    auditLog: string;
    /** The audit log's lines, read on first use. */
    lines?: string[];
}

/** The stack's secrets and audit log, read once from its config (values that are Pulumi secrets are not needed). */
function readStack(stack: string): StackView {
    const out = must(["config", "--json", "--stack", stack], `reading the config of stack ${stack}`);
    const all = JSON.parse(out || "{}") as Record<string, { value?: string; objectValue?: unknown }>;
    const value = (k: string): unknown => {
        const e = all[`rotation:${k}`];
        return e?.objectValue ?? decodeConfigValue(e?.value).value;
    };
    if (value("secret") !== undefined || value("generation") !== undefined) {
        throw new UsageError(`stack ${stack} still has the one-secret layout of 0.2 (rotation:secret): move it under rotation:secrets (README, "Upgrading from 0.2")`);
    }
    const raw = (value("secrets") ?? {}) as Record<string, Record<string, unknown>>;
    if (typeof raw !== "object" || !Object.keys(raw).length) throw new UsageError(`stack ${stack} has no rotation:secrets`);
    const secrets: Record<string, SecretView> = {};
    for (const [name, s] of Object.entries(raw)) {
        secrets[name] = {
            generation: Number(s.generation ?? 0),
            mode: String(s.mode ?? "rotate"),
            schedule: typeof s.schedule === "string" ? s.schedule : undefined,
            store: s.store as SecretView["store"],
        };
    }
    return { secrets, auditLog: path.resolve(PROJECT, String(value("auditLog") ?? ".state/audit.log")) };
}

/** The audit log's lines, read once per command however many secrets ask. */
function auditLines(view: StackView): string[] {
    view.lines ??= fs.existsSync(view.auditLog) ? fs.readFileSync(view.auditLog, "utf8").split("\n").filter(Boolean) : [];
    return view.lines;
}

/**
 * The generation of `n` whose revocation started, from its store: a file
 * store's marker, or a Vault secret's metadata (asked over the API).
 * Throws, naming the store's field, when the store cannot be asked.
 */
async function committedOf(stack: string, n: string, s: SecretView): Promise<number> {
    const parsed = secretEntry.shape.store.safeParse(s.store);
    if (!parsed.success) throw new Error(`stack ${stack}: rotation:secrets.${n}.store is not valid (bin/rotate preview names the problem)`);
    const store = parsed.data;
    if (store.kind === "file") return committedGeneration(path.resolve(PROJECT, store.dir), n);
    const problems = resolveVaultStore(store, PROJECT, `secrets.${n}.store`);
    if (problems.length) throw new Error(problems.join("; "));
    return vaultCommittedGeneration(store);
}

/** The named secrets, each checked to exist in the stack. */
function pick(view: StackView, stack: string, names: string[]): string[] {
    for (const n of names) {
        if (!(n in view.secrets)) throw new UsageError(`stack ${stack} has no secret "${n}" (it has: ${Object.keys(view.secrets).join(", ")})`);
    }
    return names;
}

/** The stack exists in the backend, or (for commands that change things) has a stack file to create it from. */
function selectStack(stack: string, mayCreate: boolean): void {
    const r = pulumi(["stack", "select", stack, "--non-interactive"], true);
    if (r.code === 0) return;
    const file = path.join(PROJECT, "stacks", `Pulumi.${stack}.yaml`);
    if (mayCreate && fs.existsSync(file)) {
        must(["stack", "select", "--create", stack, "--non-interactive"], `creating stack ${stack}`);
        return;
    }
    throw new UsageError(`no stack "${stack}"${fs.existsSync(file) ? " in the state backend yet (bin/rotate start creates it)" : ` (no stacks/Pulumi.${stack}.yaml either)`}`);
}

function setSecretKey(stack: string, secret: string, key: string, value: string): void {
    must(["config", "set", "--path", `rotation:secrets.${secret}.${key}`, value, "--stack", stack], `setting rotation:secrets.${secret}.${key}`);
}

function up(o: Options, verb: string): number {
    console.log(`rotate: ${verb} on stack ${o.stack}: preview first, then the update`);
    const preview = pulumi(["preview", "--stack", o.stack, "--non-interactive"]);
    if (preview.code !== 0) return preview.code;
    const t0 = Date.now();
    const r = pulumi(["up", "--yes", "--skip-preview", "--continue-on-error", "--stack", o.stack, "--non-interactive"]);
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    if (r.code === 0) {
        console.log(`rotate: ${verb} finished in ${secs}s`);
        return 0;
    }
    console.error(`rotate: ${verb} FAILED after ${secs}s. Secrets whose steps all succeeded are done; for the others nothing was revoked unless the audit log shows "revoked".`);
    const failed = failedSecrets(readStack(o.stack), t0);
    for (const f of failed) console.error(`rotate:   ${f}`);
    console.error(`rotate: fix the cause named above, then: bin/rotate resume --stack ${o.stack} --yes`);
    console.error(`rotate: or, if the revocation has not started: bin/rotate rollback --stack ${o.stack} --secret <name> --yes`);
    return r.code;
}

/** "<secret>: <phase> failed at <consumer>" for the audit log's failures since `since` (ms). */
function failedSecrets(view: StackView, since: number): string[] {
    const out: string[] = [];
    for (const l of auditLines(view)) {
        try {
            const r = JSON.parse(l);
            if (r.outcome === "failed" && Date.parse(r.time) >= since - 1000) out.push(`${r.secret}: ${r.phase} failed${r.consumer ? ` at consumer ${r.consumer}` : ""}`);
        } catch {
            // not a JSON line
        }
    }
    return [...new Set(out)];
}

/** Each secret's schedule verdict from the audit log. */
function dueInfo(view: StackView, name: string): { schedule?: string; due?: Date; last?: Date } {
    const s = view.secrets[name];
    const last = lastCompleted(auditLines(view), name);
    if (!s.schedule) return { last };
    return { schedule: s.schedule, last, due: nextDue(last, s.schedule, new Date()) };
}

function dueSecrets(view: StackView, names: string[]): string[] {
    return names.filter((n) => {
        const d = dueInfo(view, n);
        return d.due !== undefined && d.due.getTime() <= Date.now();
    });
}

function due(o: Options): number {
    const view = readStack(o.stack);
    const names = o.secrets.length ? pick(view, o.stack, o.secrets) : Object.keys(view.secrets);
    for (const n of names) {
        const d = dueInfo(view, n);
        const verdict = !d.due ? "no schedule" : d.due.getTime() <= Date.now() ? "DUE" : "not due";
        console.log(`rotate: ${o.stack}/${n}: last completed ${d.last?.toISOString() ?? "never"}, schedule ${d.schedule ?? "none"}${d.due ? `, next due ${d.due.toISOString()}` : ""}: ${verdict}`);
    }
    return dueSecrets(view, names).length ? 0 : 1;
}

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

async function status(o: Options): Promise<number> {
    const view = readStack(o.stack);
    const names = o.secrets.length ? pick(view, o.stack, o.secrets) : Object.keys(view.secrets);
    const lines = auditLines(view);
    const notes: string[] = [];
    const rows = await Promise.all(names.map(async (n) => {
        const s = view.secrets[n];
        const committed = await committedOf(o.stack, n, s).then(String, (e: Error) => {
            notes.push(`rotate: ${n}: committed generation unknown: ${e.message}`);
            return "?";
        });
        const d = dueInfo(view, n);
        const due = !d.due ? "no schedule" : `${d.due.toISOString().slice(0, 16).replace("T", " ")}${d.due.getTime() <= Date.now() ? " DUE" : ""}`;
        return [n, String(s.generation), s.mode, committed, d.last ? d.last.toISOString().slice(0, 16).replace("T", " ") : "never", due, lastOutcome(lines, n)];
    }));
    const head = ["secret", "generation", "mode", "committed", "last completed", "next due", "last outcome"];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
    console.log(`stack ${o.stack} (audit log ${view.auditLog})`);
    console.log(fmt(head));
    for (const r of rows) console.log(fmt(r));
    for (const note of notes) console.log(note);
    return 0;
}

async function start(o: Options): Promise<number> {
    const view = readStack(o.stack);
    let names: string[];
    if (o.all) names = Object.keys(view.secrets);
    else if (o.due) {
        names = dueSecrets(view, Object.keys(view.secrets));
        const notDue = Object.keys(view.secrets).filter((n) => !names.includes(n));
        if (notDue.length) console.log(`rotate: not due: ${notDue.join(", ")}`);
        if (!names.length) {
            console.log(`rotate: stack ${o.stack}: no secret is due; nothing to do`);
            return 0;
        }
        console.log(`rotate: due: ${names.join(", ")}`);
    } else names = pick(view, o.stack, o.secrets);

    for (const n of names) {
        const s = view.secrets[n];
        // Advisory only: a store that cannot be asked is reported by the run itself.
        const committed = s.mode === "rotate" && s.generation > 0 ? await committedOf(o.stack, n, s).catch(() => undefined) : undefined;
        if (committed !== undefined && committed < s.generation) {
            console.log(`rotate: note: ${n} generation ${s.generation} never reached its revocation; generation ${s.generation + 1} replaces it (its grant is withdrawn at the end).`);
            console.log(`rotate: to finish generation ${s.generation} instead: bin/rotate resume --stack ${o.stack} --yes`);
        }
    }
    const plan = names.map((n) => `${n} ${view.secrets[n].generation} -> ${view.secrets[n].generation + 1}`).join(", ");
    if (!o.yes) {
        console.log(`rotate: would rotate ${plan}; nothing was changed. Re-run with --yes to rotate`);
        return 0;
    }
    for (const n of names) {
        setSecretKey(o.stack, n, "generation", String(view.secrets[n].generation + 1));
        if (view.secrets[n].mode !== "rotate") setSecretKey(o.stack, n, "mode", "rotate");
    }
    return up(o, `rotation of ${plan}`);
}

function resume(o: Options): number {
    const view = readStack(o.stack);
    if (o.secrets.length) pick(view, o.stack, o.secrets);
    if (!o.yes) {
        console.log(`rotate: would run stack ${o.stack} again: every rotation that did not finish continues${o.secrets.length ? ` (including ${o.secrets[0]})` : ""}; nothing was changed. Re-run with --yes`);
        return 0;
    }
    return up(o, o.secrets.length ? `resume (${o.secrets[0]})` : "resume");
}

async function rollback(o: Options): Promise<number> {
    const view = readStack(o.stack);
    if (!o.secrets.length) {
        const names = Object.keys(view.secrets);
        if (names.length !== 1) throw new UsageError(`rollback: name the secret: --secret <name> (stack ${o.stack} has ${names.join(", ")})`);
        o.secrets = names;
    }
    const [n] = pick(view, o.stack, o.secrets);
    const s = view.secrets[n];
    if (s.generation === 0) throw new UsageError(`stack ${o.stack}: ${n} is at generation 0; nothing to roll back`);
    let committed: number;
    try {
        committed = await committedOf(o.stack, n, s);
    } catch (e) {
        console.error(`rotate: rollback of ${n}: cannot tell whether its revocation has started: ${(e as Error).message}; nothing was changed`);
        return 1;
    }
    if (committed >= s.generation) {
        console.error(`rotate: rollback of ${n} generation ${s.generation} refused: its revocation has started, the old secret may no longer work.`);
        console.error(`rotate: roll forward: bin/rotate resume --stack ${o.stack} --yes (or bin/rotate start --secret ${n} for a new generation)`);
        return 3;
    }
    if (!o.yes) {
        console.log(`rotate: would roll back ${n} generation ${s.generation}: every consumer gets generation ${s.generation - 1} back, then generation ${s.generation} is withdrawn at the source; nothing was changed. Re-run with --yes`);
        return 0;
    }
    setSecretKey(o.stack, n, "mode", "rollback");
    return up(o, `rollback of ${n} generation ${s.generation}`);
}

/**
 * Step providers whose engine is gone: a killed run's. Each ends its process
 * group within a second of noticing (provider/main.ts); until then it may
 * still be running steps, and the lock must stay.
 */
function orphanedProviders(): number[] {
    const cmdline = (pid: string) => {
        try {
            return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
        } catch {
            return "";
        }
    };
    return fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d) && cmdline(d).includes("/provider/main.ts")).flatMap((pid) => {
        let parent = "";
        try {
            const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
            parent = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
        } catch {
            return [];
        }
        return /(^|\/)pulumi( |$)/.test(cmdline(parent)) ? [] : [Number(pid)];
    });
}

function waitForOrphans(seconds: number): number[] {
    const until = Date.now() + seconds * 1000;
    let left = orphanedProviders();
    while (left.length && Date.now() < until) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
        left = orphanedProviders();
    }
    return left;
}

/**
 * The file backend stores each object with a `.attrs` sidecar (its metadata).
 * An engine killed while writing the stack's checkpoint can leave that
 * sidecar empty or torn while the checkpoint itself is whole; every later
 * command then fails with "failed to load checkpoint: EOF". The stack's
 * sidecars that do not parse, beside a checkpoint that does, are such tears.
 */
function tornSidecars(root: string, stack: string): string[] {
    const parses = (f: string) => {
        try {
            JSON.parse(fs.readFileSync(f, "utf8"));
            return true;
        } catch {
            return false;
        }
    };
    return filesUnder(path.join(root, ".pulumi", "stacks"), (p) => [`${stack}.json.attrs`, `${stack}.json.bak.attrs`].includes(path.basename(p)))
        .filter((p) => !parses(p) && parses(p.slice(0, -".attrs".length)));
}

/** Every file below `dir` (none if it does not exist) that `keep` accepts. */
function filesUnder(dir: string, keep: (file: string) => boolean): string[] {
    if (!fs.existsSync(dir)) return [];
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = path.join(dir, e.name);
        return e.isDirectory() ? filesUnder(p, keep) : keep(p) ? [p] : [];
    });
}

/**
 * After a killed run: removes the file backend's stale lock of the stack
 * (one JSON lock per running update) once no process of that run is left,
 * and repairs a checkpoint metadata file the kill left torn.
 */
function unlock(o: Options): number {
    const backend = process.env.PULUMI_BACKEND_URL ?? `file://${path.join(PROJECT, ".state")}`;
    if (!backend.startsWith("file://")) throw new UsageError("unlock handles file:// backends; for other backends use that backend's own tooling");
    const root = backend.slice("file://".length);
    const locks = filesUnder(path.join(root, ".pulumi", "locks"), (p) => p.split(path.sep).includes(o.stack) && p.endsWith(".json"));
    const torn = tornSidecars(root, o.stack);
    if (!locks.length && !torn.length) {
        console.log(`rotate: stack ${o.stack} holds no lock`);
        return 0;
    }
    const orphans = waitForOrphans(3);
    if (orphans.length) {
        console.error(`rotate: a step provider of a killed run still runs (pid ${orphans.join(", ")}): it may still be changing consumers; not removing the lock. Wait for it to end (or end it), then unlock again.`);
        return 4;
    }
    for (const l of locks) {
        const info = JSON.parse(fs.readFileSync(l, "utf8"));
        let alive = false;
        try {
            process.kill(info.pid, 0);
            alive = info.hostname === require("os").hostname();
        } catch {
            alive = false;
        }
        if (alive) {
            console.error(`rotate: stack ${o.stack} is locked by a running process ${info.pid} on this host; not removing`);
            return 4;
        }
        fs.rmSync(l);
        console.log(`rotate: removed the stale lock of process ${info.pid} (${info.timestamp ?? "unknown time"})`);
    }
    for (const t of torn) {
        fs.rmSync(t);
        console.log(`rotate: removed ${t}: the killed engine left this metadata file torn while the checkpoint beside it is whole`);
    }
    return 0;
}

/** Checks the audit log's hash chain (lib/auditChain.ts). */
function auditVerify(o: Options): number {
    const file = o.log ? path.resolve(o.log) : readStack(o.stack).auditLog;
    if (!fs.existsSync(file)) throw new UsageError(`no audit log at ${file}`);
    const r = verifyChain(fs.readFileSync(file, "utf8"));
    const legacy = r.legacy ? ` (${r.legacy} earlier lines predate the chain and are not checked)` : "";
    if (r.ok) {
        console.log(`rotate: audit log ${file}: ${r.lines} lines, chain intact${legacy}`);
        return 0;
    }
    console.error(`rotate: audit log ${file}: line ${r.firstBad!.line} ${r.firstBad!.reason}${legacy}`);
    return 1;
}

async function main(): Promise<number> {
    const o = parseArgs(process.argv.slice(2));
    if (!o) {
        console.log(HELP);
        return 0;
    }
    if (o.command === "unlock") return unlock(o);
    if (o.command === "audit" && o.log) return auditVerify(o);
    // Commands that only read never create a stack; the others create one only from its stack file.
    selectStack(o.stack, ["start", "resume", "rollback"].includes(o.command) && o.yes);
    switch (o.command) {
        case "status":
            return status(o);
        case "preview":
            return pulumi(["preview", "--diff", "--stack", o.stack, "--non-interactive"]).code;
        case "start":
            return start(o);
        case "resume":
            return resume(o);
        case "rollback":
            return rollback(o);
        case "due":
            return due(o);
        case "audit":
            return auditVerify(o);
    }
    return 2;
}

main().then(
    (code) => (process.exitCode = code),
    (e: Error) => {
        console.error(`rotate: ${e.message}`);
        process.exitCode = e instanceof UsageError ? 2 : 1;
    },
);
