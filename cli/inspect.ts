/** The commands that only read: status, due, plan, preview, audit verify. None creates or changes a stack. */
import * as fs from "node:fs";
import * as path from "node:path";
import type { AuditLine } from "../lib/auditLine";
import { verifyChain } from "../adapters/auditChain";
import { onCurrent } from "../lib/drift";
import { planSteps, planTable, renderPlanSvg } from "./planGraph";
import { type Common, readLastCheck, auditLines, auditLogOf, committedOf, dueInfo, isDue, load, pick, printJson, runSecret, say } from "./common";
import { EXIT } from "./run";
import { PROJECT, UsageError } from "./stack";

/**
 * The last outcome of a secret's runs, from its audit lines: the last failure
 * or the last phase reached, shortened ("<phase> <outcome> [consumer] g<N> <time>").
 * Taking back an older generation after a completed run is not an outcome.
 */
export function lastOutcome(lines: AuditLine[], secret: string): string {
    for (let i = lines.length - 1; i >= 0; i--) {
        const r = lines[i];
        if (r.secret === secret && !(r.outcome === "ok" && (r.phase === "withdrawn" || r.phase === "unstaged")))
            return `${r.phase} ${r.outcome}${r.consumer ? ` (${r.consumer})` : ""} g${r.generation} ${r.time}`;
    }
    return "none";
}

export async function status(o: Common & { secret?: string[] }): Promise<number> {
    const { config } = await load(o);
    const { env } = config;
    const names = pick(env, o.stack, o.secret);
    const lines = auditLines(env);
    const notes: string[] = [];
    const rows = await Promise.all(
        names.map(async (n) => {
            const s = env.secrets[n];
            const committed = await committedOf(n, s).catch((e: Error) => {
                notes.push(`rotate: ${n}: committed generation unknown: ${e.message}`);
                return undefined;
            });
            const d = dueInfo(env, lines, n);
            return {
                secret: n,
                generation: s.generation,
                mode: s.mode,
                committed,
                lastCompleted: d.last?.toISOString(),
                schedule: d.schedule,
                nextDue: d.due?.toISOString(),
                due: isDue(d),
                lastOutcome: lastOutcome(lines, n),
            };
        }),
    );
    const lastCheck = readLastCheck(o.stack);
    if (o.json) {
        printJson({ stack: o.stack, auditLog: auditLogOf(env), secrets: rows, notes, lastCheck });
        return EXIT.done;
    }
    const short = (iso?: string) => (iso ? iso.slice(0, 16).replace("T", " ") : undefined);
    const table = rows.map((r) => [
        r.secret,
        String(r.generation),
        r.mode,
        r.committed === undefined ? "?" : String(r.committed),
        short(r.lastCompleted) ?? "never",
        r.nextDue ? `${short(r.nextDue)}${r.due ? " DUE" : ""}` : "no schedule",
        r.lastOutcome,
    ]);
    const head = ["secret", "generation", "mode", "committed", "last completed", "next due", "last outcome"];
    const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
    const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
    console.log(`stack ${o.stack} (audit log ${auditLogOf(env)})`);
    console.log(fmt(head));
    for (const r of table) console.log(fmt(r));
    for (const note of notes) console.log(note);
    if (lastCheck) {
        const off = lastCheck.consumers.filter((c) => !onCurrent(c.holds)).map((c) => `${c.secret} ${c.consumer} ${c.holds}`);
        console.log(
            `last check ${lastCheck.time}: ${lastCheck.ok ? `every consumer current (${lastCheck.consumers.length})` : `drift: ${off.join(", ") || "the source still accepts a previous secret"}`}`,
        );
    } else console.log(`last check: never (bin/rotate check --stack ${o.stack})`);
    return EXIT.done;
}

export async function due(o: Common & { secret?: string[] }): Promise<number> {
    const { env } = (await load(o)).config;
    const names = pick(env, o.stack, o.secret);
    const lines = auditLines(env);
    const rows = names.map((n) => ({ secret: n, ...dueInfo(env, lines, n) }));
    for (const d of rows) {
        const verdict = !d.due ? "no schedule" : isDue(d) ? "DUE" : "not due";
        say(
            o,
            `rotate: ${o.stack}/${d.secret}: last completed ${d.last?.toISOString() ?? "never"}, schedule ${d.schedule ?? "none"}${d.due ? `, next due ${d.due.toISOString()}` : ""}: ${verdict}`,
        );
    }
    return rows.some(isDue) ? EXIT.done : 1;
}

/** The plan `start` would run for these secrets: each at its next generation. */
export async function plan(o: Common & { secret?: string[]; out?: string }): Promise<number> {
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
    console.log(
        `rotate: stack ${o.stack}: the plan of bin/rotate start for ${secrets.map((s) => `${s.name} g${s.generation - 1} -> g${s.generation}`).join(", ")}`,
    );
    console.log(planTable(secrets, { color: !!process.stdout.isTTY }));
    console.log(`rotate: picture: ${file} (${(svg.length / 1024).toFixed(0)} KiB, ${((Date.now() - t0) / 1000).toFixed(1)}s)`);
    return EXIT.done;
}

export async function preview(o: Common): Promise<number> {
    const { stack } = await load(o);
    try {
        await stack.preview({ diff: true, onOutput: (s) => process.stdout.write(s) });
        return EXIT.done;
    } catch (e) {
        const message = (e as Error).message;
        process.stderr.write(
            `rotate: preview failed: ${
                message
                    .split("\n")
                    .filter((l) => /error|refused|Invalid/i.test(l))
                    .slice(-6)
                    .join("\n") || message
            }\n`,
        );
        return /Invalid rotation config/.test(message) ? EXIT.usage : /refused/.test(message) ? EXIT.refused : EXIT.failed;
    }
}

/** Checks the audit log's hash chain (lib/auditChain.ts). */
export async function auditVerify(o: { stack?: string; log?: string }): Promise<number> {
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
