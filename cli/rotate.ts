/**
 * The operator's front door: `bin/rotate <command> --stack <env>`.
 *
 *   status    generation, mode and the last audit lines of the stack
 *   preview   the plan `up` would run (pulumi preview --diff)
 *   start     bump rotation:generation and rotate (preview, then up)
 *   resume    run the current generation again (after a failure or a kill)
 *   rollback  before revocation: restore every consumer to the old secret
 *   unlock    remove a stale lock left by a killed run (file backend only)
 *   due       exit 0 if the secret's schedule says a rotation is due, 1 if not
 *             (for cron: bin/rotate due --stack prod && bin/rotate start --stack prod --yes)
 *   audit verify  check the audit log's hash chain; names the first line that breaks it
 *             (--log PATH checks that file instead of the stack's rotation:auditLog)
 *
 * Everything else is plain Pulumi through bin/pulumi; this adds the runbook's
 * guard rails and says what happens next.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { verifyChain } from "../lib/auditChain";
import { committedGeneration } from "../lib/resolve";
import { lastCompleted, nextDue } from "../lib/schedule";

const ROOT = path.resolve(__dirname, "..");
const PULUMI = path.join(ROOT, "bin", "pulumi");

class UsageError extends Error {
    override readonly name = "UsageError";
}

interface Options {
    command: string;
    stack: string;
    yes: boolean;
    log?: string;
}

function parseArgs(argv: string[]): Options {
    const [command, ...rest] = argv;
    if (command === "audit" && rest[0] !== "verify") throw new UsageError("usage: bin/rotate audit verify --stack <name> [--log <path>]");
    if (command === "audit") rest.shift();
    let stack = process.env.PULUMI_STACK ?? "";
    let yes = false;
    let log: string | undefined;
    for (let i = 0; i < rest.length; i++) {
        const a = rest[i];
        if (a === "--stack" || a === "-s") stack = rest[++i] ?? "";
        else if (a.startsWith("--stack=")) stack = a.slice("--stack=".length);
        else if (a === "--yes" || a === "-y") yes = true;
        else if (command === "audit" && a === "--log") log = rest[++i];
        else throw new UsageError(`unknown argument "${a}"`);
    }
    if (!command || !["status", "preview", "start", "resume", "rollback", "unlock", "due", "audit"].includes(command)) {
        throw new UsageError(`usage: bin/rotate status|preview|start|resume|rollback|unlock|due|audit verify --stack <name> [--yes]`);
    }
    if (command === "audit" && log) return { command, stack, yes, log };
    if (!stack) throw new UsageError("name the stack: --stack <name> (e.g. --stack dev)");
    if (!/^[A-Za-z0-9_.-]+$/.test(stack)) throw new UsageError(`invalid stack name "${stack}"`);
    return { command, stack, yes };
}

function pulumi(args: string[], capture = false): { code: number; stdout: string } {
    const r = spawnSync(PULUMI, args, { cwd: ROOT, stdio: capture ? ["ignore", "pipe", "pipe"] : "inherit", encoding: "utf8" });
    return { code: r.status ?? 1, stdout: r.stdout ?? "" };
}

function must(args: string[], what: string): string {
    const r = pulumi(args, true);
    if (r.code !== 0) throw new Error(`${what} failed (pulumi ${args.join(" ")})`);
    return r.stdout.trim();
}

function configValue(stack: string, key: string): string | undefined {
    const r = pulumi(["config", "get", key, "--stack", stack], true);
    return r.code === 0 ? r.stdout.trim() : undefined;
}

function storeOf(stack: string): { dir?: string; secret: string } {
    const secret = JSON.parse(configValue(stack, "rotation:secret") ?? "{}");
    const store = JSON.parse(configValue(stack, "rotation:store") ?? "{}");
    return { secret: secret.name ?? "?", dir: store.kind === "file" ? path.resolve(ROOT, store.dir) : undefined };
}

function ensureStack(stack: string): void {
    must(["stack", "select", "--create", stack, "--non-interactive"], `selecting stack ${stack}`);
}

function up(o: Options, verb: string): number {
    console.log(`rotate: ${verb} on stack ${o.stack}: preview first, then the update`);
    const preview = pulumi(["preview", "--stack", o.stack, "--non-interactive"]);
    if (preview.code !== 0) return preview.code;
    if (!o.yes) {
        console.log("rotate: the plan above was not applied; re-run with --yes to apply it");
        return 0;
    }
    const t0 = Date.now();
    const r = pulumi(["up", "--yes", "--skip-preview", "--stack", o.stack, "--non-interactive"]);
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    if (r.code === 0) {
        console.log(`rotate: ${verb} finished in ${secs}s`);
    } else {
        console.error(`rotate: ${verb} FAILED after ${secs}s. Nothing was revoked unless the audit log shows "revoked".`);
        console.error(`rotate: fix the cause named above, then: bin/rotate resume --stack ${o.stack} --yes`);
        console.error(`rotate: or, if the revocation has not started: bin/rotate rollback --stack ${o.stack} --yes`);
    }
    return r.code;
}

/** The schedule verdict for a stack: when the next rotation is due, from the audit log. */
function dueInfo(stack: string): { schedule?: string; due?: Date; last?: Date } {
    const secret = JSON.parse(configValue(stack, "rotation:secret") ?? "{}");
    if (!secret.schedule) return {};
    const audit = path.resolve(ROOT, configValue(stack, "rotation:auditLog") ?? ".state/audit.log");
    const lines = fs.existsSync(audit) ? fs.readFileSync(audit, "utf8").split("\n") : [];
    const last = lastCompleted(lines, secret.name);
    return { schedule: secret.schedule, last, due: nextDue(last, secret.schedule, new Date()) };
}

function due(o: Options): number {
    const d = dueInfo(o.stack);
    if (!d.due) {
        console.log(`rotate: stack ${o.stack} has no rotation:secret.schedule`);
        return 1;
    }
    const isDue = d.due.getTime() <= Date.now();
    console.log(`rotate: stack ${o.stack}: last completed ${d.last?.toISOString() ?? "never"}, schedule ${d.schedule}, next due ${d.due.toISOString()}: ${isDue ? "DUE" : "not due"}`);
    return isDue ? 0 : 1;
}

function status(o: Options): number {
    const gen = configValue(o.stack, "rotation:generation") ?? "0";
    const mode = configValue(o.stack, "rotation:mode") ?? "rotate";
    const { secret, dir } = storeOf(o.stack);
    console.log(`stack ${o.stack}: secret ${secret}, generation ${gen}, mode ${mode}`);
    if (dir) console.log(`committed (revocation started) generation: ${committedGeneration(dir, secret)}`);
    const d = dueInfo(o.stack);
    if (d.due) console.log(`schedule ${d.schedule}: next rotation due ${d.due.toISOString()}${d.due.getTime() <= Date.now() ? " (DUE NOW)" : ""}`);
    const auditRel = configValue(o.stack, "rotation:auditLog") ?? ".state/audit.log";
    const audit = path.resolve(ROOT, auditRel);
    if (fs.existsSync(audit)) {
        const lines = fs.readFileSync(audit, "utf8").trim().split("\n").slice(-8);
        console.log(`last audit lines (${audit}):`);
        for (const l of lines) console.log(`  ${l}`);
    }
    return 0;
}

function start(o: Options): number {
    const gen = Number(configValue(o.stack, "rotation:generation") ?? "0");
    const mode = configValue(o.stack, "rotation:mode") ?? "rotate";
    const { secret, dir } = storeOf(o.stack);
    if (dir && mode === "rotate" && gen > 0 && committedGeneration(dir, secret) < gen) {
        console.log(`rotate: note: generation ${gen} never reached its revocation; generation ${gen + 1} replaces it (its grant is withdrawn at the end).`);
        console.log(`rotate: to finish generation ${gen} instead: bin/rotate resume --stack ${o.stack} --yes`);
    }
    if (!o.yes) {
        console.log(`rotate: would set rotation:generation to ${gen + 1}; re-run with --yes to rotate`);
        return 0;
    }
    must(["config", "set", "rotation:generation", String(gen + 1), "--stack", o.stack], "bumping the generation");
    if (mode !== "rotate") must(["config", "set", "rotation:mode", "rotate", "--stack", o.stack], "setting mode rotate");
    return up(o, `rotation to generation ${gen + 1}`);
}

function rollback(o: Options): number {
    const gen = Number(configValue(o.stack, "rotation:generation") ?? "0");
    const { secret, dir } = storeOf(o.stack);
    if (gen === 0) throw new UsageError(`stack ${o.stack}: nothing to roll back at generation 0`);
    if (dir && committedGeneration(dir, secret) >= gen) {
        console.error(`rotate: rollback of ${secret} generation ${gen} refused: its revocation has started, the old secret may no longer work.`);
        console.error(`rotate: roll forward: bin/rotate resume --stack ${o.stack} --yes (or bin/rotate start for a new generation)`);
        return 3;
    }
    must(["config", "set", "rotation:mode", "rollback", "--stack", o.stack], "setting mode rollback");
    return up(o, `rollback of generation ${gen}`);
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

/** A DIY (file) backend keeps one JSON lock per running update; a killed run leaves its lock behind. */
function unlock(o: Options): number {
    const backend = process.env.PULUMI_BACKEND_URL ?? `file://${path.join(ROOT, ".state")}`;
    if (!backend.startsWith("file://")) throw new UsageError("unlock handles file:// backends; for other backends use that backend's own tooling");
    const base = path.join(backend.slice("file://".length), ".pulumi", "locks");
    const locks: string[] = [];
    const walk = (d: string) => {
        if (!fs.existsSync(d)) return;
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
            const p = path.join(d, e.name);
            if (e.isDirectory()) walk(p);
            else if (p.split(path.sep).includes(o.stack) && p.endsWith(".json")) locks.push(p);
        }
    };
    walk(base);
    if (!locks.length) {
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
    return 0;
}

/** Checks the audit log's hash chain (lib/auditChain.ts). */
function auditVerify(o: Options): number {
    const file = o.log ? path.resolve(o.log) : path.resolve(ROOT, configValue(o.stack, "rotation:auditLog") ?? ".state/audit.log");
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

function main(): number {
    const o = parseArgs(process.argv.slice(2));
    if (o.command === "unlock") return unlock(o);
    if (o.command === "audit" && o.log) return auditVerify(o);
    ensureStack(o.stack);
    switch (o.command) {
        case "status":
            return status(o);
        case "preview":
            return pulumi(["preview", "--diff", "--stack", o.stack, "--non-interactive"]).code;
        case "start":
            return start(o);
        case "resume":
            return up(o, "resume");
        case "rollback":
            return rollback(o);
        case "due":
            return due(o);
        case "audit":
            return auditVerify(o);
    }
    return 2;
}

try {
    process.exitCode = main();
} catch (e) {
    console.error(`rotate: ${(e as Error).message}`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
}
