/**
 * `bin/rotate run-due`: the unattended run (a systemd timer, cron, a CI
 * schedule). Every stack of the project (or those named) gets its own
 * `bin/rotate start --due`, a process of its own under the stack's own lock,
 * one after another or a bounded number at once; a stack that fails, is
 * locked or waits for a ceremony leaves the others to go on. Each stack's
 * run tells whom its rotation:notify names; the exit code is the most urgent
 * of the stacks' (EXIT_CODES_HELP), and the summary names each stack's.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { type Common, printJson, say } from "./common";
import { EXIT } from "./run";
import { PROJECT, ROOT, UsageError } from "./stack";

/** The order of urgency of the stacks' exit codes: the first one any stack has is run-due's. */
export const URGENCY = [
    EXIT.failedAfterRevocation,
    EXIT.failed,
    EXIT.usage,
    EXIT.refused,
    EXIT.locked,
    EXIT.awaitingPerson,
    EXIT.awaitingApproval,
    EXIT.done,
] as const;

export const RUN_DUE_EXIT_HELP = `run-due exits with the most urgent of its stacks' exit codes, in this order: 5 (failed after a
revocation started), 1 (failed before revocation, or a stack's run crashed), 2 (a stack's config is invalid),
3 (refused), 4 (locked), 7 (a rotation waits for a person's step, mid-rotation), 6 (awaiting approval), 0 (every due secret rotated, or none due).`;

/** One stack's outcome, from its start's --json document. */
export interface StackRun {
    stack: string;
    exitCode: number;
    outcome: string;
    secrets: string[];
    report?: string;
    request?: string;
    /** The child's wall time, and its update's own (from the engine's start to its verdict). */
    seconds: number;
    rotationSeconds?: number;
}

/** run-due's exit code from its stacks' (an unknown code counts as 1: the run crashed). */
export function summaryCode(codes: number[]): number {
    const known = codes.map((c) => ((URGENCY as readonly number[]).includes(c) ? c : EXIT.failed));
    return URGENCY.find((c) => known.includes(c)) ?? EXIT.done;
}

/** The stacks of the project: each stacks/Pulumi.<name>.yaml (the templates' copies once made). */
export function projectStacks(dir = PROJECT): string[] {
    const d = path.join(dir, "stacks");
    if (!fs.existsSync(d)) return [];
    return fs
        .readdirSync(d)
        .map((f) => /^Pulumi\.([A-Za-z0-9_.-]+)\.ya?ml$/.exec(f)?.[1])
        .filter((s): s is string => !!s)
        .sort();
}

/** The stacks named by --stacks (checked to exist), or every stack of the project. */
export function stacksOf(list: string | undefined): string[] {
    const all = projectStacks();
    if (!list) {
        if (!all.length) throw new UsageError(`run-due: the project has no stack files (stacks/Pulumi.<name>.yaml in ${PROJECT})`);
        return all;
    }
    const named = [...new Set(list.split(",").map((s) => s.trim()))].filter(Boolean);
    if (!named.length) throw new UsageError("run-due: --stacks names no stack");
    for (const s of named) {
        if (!/^[A-Za-z0-9_.-]+$/.test(s)) throw new UsageError(`run-due: invalid stack name "${s}"`);
        if (!all.includes(s)) throw new UsageError(`run-due: no stack "${s}" in this project (stacks: ${all.join(", ") || "none"})`);
    }
    return named;
}

/** What run-due reads of start's --json document. */
interface StartDocument {
    outcome?: unknown;
    secrets?: unknown;
    report?: unknown;
    request?: { id?: unknown };
    seconds?: unknown;
}

/** Runs `bin/rotate start --stack <stack> --due --json`: its progress prefixed on stderr, its document parsed. */
function startDue(stack: string, yes: boolean, out: NodeJS.WritableStream): Promise<StackRun> {
    const t0 = Date.now();
    return new Promise((resolve) => {
        const child = spawn(path.join(ROOT, "bin", "rotate"), ["start", "--stack", stack, "--due", "--json", ...(yes ? ["--yes"] : [])], {
            cwd: PROJECT,
            env: process.env,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let doc = "";
        let partial = "";
        child.stdout.on("data", (d) => (doc += d));
        child.stderr.on("data", (d) => {
            const text = partial + d.toString("utf8");
            const lines = text.split("\n");
            partial = lines.pop() ?? "";
            for (const l of lines) out.write(`[${stack}] ${l}\n`);
        });
        child.on("close", (code, signal) => {
            if (partial) out.write(`[${stack}] ${partial}\n`);
            let parsed: StartDocument = {};
            try {
                parsed = JSON.parse(doc);
            } catch {
                // No document: the command failed before it could write one (its message is above).
            }
            const exitCode = code ?? (signal ? 128 : 1);
            resolve({
                stack,
                exitCode,
                outcome: typeof parsed.outcome === "string" ? parsed.outcome : exitCode === 0 ? "done" : "error",
                secrets: Array.isArray(parsed.secrets) ? parsed.secrets.map((s: { name?: unknown }) => String(s?.name ?? s)) : [],
                ...(typeof parsed.report === "string" ? { report: parsed.report } : {}),
                ...(parsed.request?.id ? { request: String(parsed.request.id) } : {}),
                ...(typeof parsed.seconds === "number" ? { rotationSeconds: parsed.seconds } : {}),
                seconds: (Date.now() - t0) / 1000,
            });
        });
    });
}

/** Runs `work` over `items`, at most `n` at once, results in the items' order. */
export async function bounded<T, R>(items: T[], n: number, work: (t: T) => Promise<R>): Promise<R[]> {
    const out: R[] = new Array(items.length);
    let next = 0;
    const lane = async () => {
        while (next < items.length) {
            const i = next++;
            out[i] = await work(items[i]);
        }
    };
    await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane));
    return out;
}

export async function runDue(o: Omit<Common, "stack"> & { stacks?: string; parallel?: string; yes?: boolean }): Promise<number> {
    const parallel = o.parallel === undefined ? 1 : Number(o.parallel);
    if (!Number.isInteger(parallel) || parallel < 1 || parallel > 32) throw new UsageError("run-due: --parallel must be a whole number from 1 to 32");
    const stacks = stacksOf(o.stacks);
    const c = { ...o, stack: "" };
    say(c, `rotate: run-due: ${stacks.length} stack(s) (${stacks.join(", ")}), ${parallel} at a time${o.yes ? "" : "; without --yes nothing changes"}`);
    const runs = await bounded(stacks, parallel, (s) => startDue(s, !!o.yes, process.stderr));
    const exitCode = summaryCode(runs.map((r) => r.exitCode));
    for (const r of runs)
        say(
            c,
            `rotate: run-due: ${r.stack}: exit ${r.exitCode} ${r.outcome}${r.secrets.length ? ` (${r.secrets.join(", ")})` : ""}${r.request ? `, request ${r.request}` : ""}${r.report ? `; report ${r.report}` : ""}`,
        );
    say(c, `rotate: run-due: exit ${exitCode}`);
    if (o.json) printJson({ command: "run-due", exitCode, stacks: runs });
    return exitCode;
}
