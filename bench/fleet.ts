// Fleet benchmark (issue 7): rotates fleets of 1, 10, 50 and 200 consumers
// through the real engine, then the sequential runbook (bench/runbook.sh)
// over the same 50, and prints one table with the ratios the issue targets.
// `--preview N` instead measures one preview of N consumers: wall time and
// peak memory of the whole pulumi process tree.
//   bin/bench [--inline] [--sizes 1,10,50,200] [--runbook 50]
//   bin/bench --preview 1000 [--inline]
// --start times the measured rotation (g2) as `bin/rotate start --yes` (the whole
// command: tsx start-up, its checks, the update with its pre-flight steps) instead of `pulumi up`.
// --inline puts the consumers in the stack config (`rotation:secrets.<name>.consumers`, the
// only way the code before issue 7 knows); the default writes them to an
// inventory file named by `rotation:inventoryFile` (lab/driver/workspace.ts writes it).
// Needs root and the lab (started here; the default mode resets it first).
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import yaml from "js-yaml";
import {
    captured,
    consumerEntry,
    currentSecret,
    type EngineEvent,
    type Fleet,
    fleetOf,
    lab,
    labCtl,
    runbookFleetOf,
    type RunResult,
    setupFleet,
    stackConfig,
    stepTimeline,
    urnName,
    verify,
    Workspace,
} from "../lab/driver";
import { AclWatcher, TreeMemory } from "./instruments";

const USAGE = "usage: bin/bench [--inline] [--start] [--sizes 1,10,50,200] [--runbook 50] | bin/bench --preview N [--inline]";
const args = process.argv.slice(2);
const optionValue = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
};
const usage = (problem: string): never => {
    console.error(`${problem}\n${USAGE}`);
    process.exit(2);
};
const takesValue = ["--sizes", "--runbook", "--preview"];
args.forEach((a, i) => {
    if (a.startsWith("--") && a !== "--inline" && a !== "--start" && !takesValue.includes(a)) usage(`unknown option ${a}`);
    if (!a.startsWith("--") && !takesValue.includes(args[i - 1])) usage(`unexpected argument ${a}`);
});
const inline = args.includes("--inline");
const viaStart = args.includes("--start");
const positive = (s: string): number => (/^\d+$/.test(s) && Number(s) >= 1 ? Number(s) : usage(`not a positive count: ${s}`));
const sizes = (optionValue("--sizes") ?? "1,10,50,200").split(",").map(positive);
const runbookSize = args.includes("--runbook") && optionValue("--runbook") === "0" ? 0 : positive(optionValue("--runbook") ?? "50");
const previewSize = args.includes("--preview") ? positive(optionValue("--preview") ?? "") : undefined;

/** A throwaway workspace whose stack rotates fleet `f` (generation 0 until a run bumps it). */
function fleetWorkspace(f: Fleet): Workspace {
    const ws = new Workspace(f.secret);
    const consumers = Array.from({ length: f.count }, (_, i) => consumerEntry(f, i));
    const config = stackConfig(f, 0);
    if (inline) config.consumers = consumers;
    else {
        const file = path.join(ws.dir, "inventory", `${f.secret}.yaml`);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, yaml.dump(consumers, { lineWidth: -1 }));
        config.consumersFile = file;
    }
    ws.setConfig(config);
    return ws;
}

/**
 * What went wrong, in one line: the first diagnostic `error:` line (not the
 * engine's generic "update failed"), with the lines after it while it only
 * leads in ("... failed with an unhandled exception:").
 */
function firstError(r: RunResult): string {
    const lines = `${r.stdout}\n${r.stderr}`
        .replace(/\x1b\[[0-9;]*m/g, "")
        .split("\n")
        .map((l) => l.trim());
    const generic = /^error: ((update|preview) failed|\d+ errors? occurred)/i;
    let i = lines.findIndex((l) => /^error: ./i.test(l) && !generic.test(l));
    if (i < 0) i = lines.findIndex((l) => /\berror\b/i.test(l));
    if (i < 0) return `exit code ${r.code}`;
    let text = lines[i];
    for (let k = i + 1; text.endsWith(":") && lines[k] && k <= i + 3; k++) text += ` ${lines[k]}`;
    return text.slice(0, 300);
}

/** Resource operations other than "same": what a no-op up must not have. */
const changedCount = (r: RunResult) => r.events.filter((e) => e.resourcePreEvent && e.resourcePreEvent.metadata.op !== "same").length;

/** Grant of generation g finished → revocation started, from the engine's event timestamps (whole seconds). */
function engineWindow(r: RunResult, f: Fleet, g: number): number {
    const at = (seq?: number) => (r.events.find((e) => e.sequence === seq) as { timestamp?: number } | undefined)?.timestamp ?? NaN;
    return at(stepTimeline(r.events, `${f.secret}-revoke`).start) - at(stepTimeline(r.events, `${f.secret}-grant-g${g}`).end);
}

/**
 * The slowest consumer's rollout in an update: from the start of its first
 * step to the end of its last (one step per consumer now, four before issue 7),
 * from the engine's event timestamps (whole seconds).
 */
function slowestRollout(r: RunResult, f: Fleet): number {
    const prefix = `${f.secret}-rollout-`;
    const spans = new Map<string, { start: number; end: number }>();
    for (const e of r.events as (EngineEvent & { timestamp?: number })[]) {
        const m = e.resourcePreEvent?.metadata ?? e.resOutputsEvent?.metadata;
        const name = m && urnName(m.urn);
        if (!name?.startsWith(prefix) || m!.op === "same" || e.timestamp === undefined) continue;
        const consumer = name.slice(prefix.length).replace(/-(deploy|reload|health|logcheck)$/, "");
        const span = spans.get(consumer) ?? { start: Infinity, end: -Infinity };
        if (e.resourcePreEvent) span.start = Math.min(span.start, e.timestamp);
        else span.end = Math.max(span.end, e.timestamp);
        spans.set(consumer, span);
    }
    return Math.max(...[...spans.values()].map((s) => s.end - s.start));
}

/** Bytes of the checkpoint file the engine rewrites after every step operation. */
function checkpointBytes(ws: Workspace): number | undefined {
    const stacks = path.join(ws.stateDir, ".pulumi", "stacks");
    for (const project of fs.existsSync(stacks) ? fs.readdirSync(stacks) : []) {
        const file = path.join(stacks, project, `${ws.stack}.json`);
        if (fs.existsSync(file)) return fs.statSync(file).size;
    }
    return undefined;
}

/** The driver keeps every run's output for the tests' leak scan; a benchmark would hoard gigabytes. */
function dropCaptured(): void {
    captured.splice(0);
}

interface Row {
    label: string;
    n: number;
    g1?: number;
    g2?: number;
    window?: number;
    redisWindow?: number;
    noop?: number;
    noopChanged?: number;
    state?: number;
    checkpoint?: number;
    slowest?: number;
    eventLog?: number;
    checks: string[];
    failed?: string;
}

async function rotate(ws: Workspace, f: Fleet, g: number, row: Row): Promise<RunResult> {
    const before = currentSecret(f);
    let r: RunResult;
    if (viaStart && g > 1) {
        // start bumps the generation itself.
        r = await ws.rotateSampled(["start", "--secret", f.secret, "--yes", "--plain"]);
        for (const l of r.stderr.split("\n")) if (l.startsWith("rotate: trace: ")) log(l);
    } else {
        ws.patchConfig({ generation: g });
        r = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    }
    if (r.code !== 0) throw new Error(`g${g}: ${firstError(r)}`);
    row.checks.push(`g${g} ${verify(f, before)}`);
    return r;
}

async function fleetSize(n: number): Promise<Row> {
    const f = fleetOf(n);
    const row: Row = { label: String(n), n, checks: [] };
    const t0 = Date.now();
    try {
        setupFleet(f);
        const ws = fleetWorkspace(f);
        row.g1 = (await rotate(ws, f, 1, row)).seconds;
        log(`${n}: first rotation ${row.g1.toFixed(1)} s, ${row.checks.at(-1)}`);
        // The measured rotation: a steady-state generation bump.
        const watcher = await AclWatcher.start(f.user);
        let g2: RunResult;
        try {
            g2 = await rotate(ws, f, 2, row);
        } finally {
            row.redisWindow = await watcher.stop();
        }
        // A start's update has no event log here: no window or slowest rollout from it.
        Object.assign(row, {
            g2: g2.seconds,
            ...(g2.events.length ? { window: engineWindow(g2, f, 2), slowest: slowestRollout(g2, f), eventLog: g2.eventLogText.length } : {}),
        });
        log(`${n}: rotation g2 ${g2.seconds.toFixed(1)} s, ${row.checks.at(-1)}`);
        const before = currentSecret(f);
        const noop = await ws.pulumi(["up", "--yes", "--skip-preview"]);
        if (noop.code !== 0) throw new Error(`no-op up: ${firstError(noop)}`);
        Object.assign(row, { noop: noop.seconds, noopChanged: changedCount(noop) });
        row.checks.push(`no-op ${verify(f, before)}`);
        const exported = await ws.pulumi(["stack", "export"]);
        if (exported.code !== 0) throw new Error(`stack export: ${firstError(exported)}`);
        row.state = Buffer.byteLength(exported.stdout);
        row.checkpoint = checkpointBytes(ws);
    } catch (e) {
        row.failed = String((e as Error).message ?? e).split("\n")[0];
        log(`${n}: FAILED after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${row.failed}`);
    }
    dropCaptured();
    return row;
}

interface Runbook {
    n: number;
    wall?: number;
    window?: number;
    redisWindow?: number;
    check?: string;
    failed?: string;
}

/** The runbook by hand over its own fleet of n (same layout, user fleetrbN). */
async function runbook(n: number): Promise<Runbook> {
    const f = runbookFleetOf(n);
    const l = lab();
    setupFleet(f);
    const before = currentSecret(f);
    const watcher = await AclWatcher.start(f.user);
    const t0 = performance.now();
    const child = spawn(
        "bash",
        [
            path.join(__dirname, "runbook.sh"),
            l.labDir,
            `${l.redis.host}:${l.redis.port}`,
            f.user,
            f.secret,
            String(n),
            ...l.hosts.map((h: { ip: string }) => h.ip),
        ],
        {
            stdio: ["ignore", "pipe", "inherit"],
        },
    );
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? 1)));
    const wall = (performance.now() - t0) / 1000;
    const redisWindow = await watcher.stop();
    if (code !== 0) return { n, failed: `runbook.sh exited ${code}: ${out.trim().split("\n").pop() ?? ""}` };
    return { n, wall, redisWindow, window: Number(/^window=(\S+)$/m.exec(out)?.[1] ?? NaN), check: verify(f, before) };
}

const log = (s: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
const sec = (x?: number, digits = 1) => (x === undefined || Number.isNaN(x) ? "-" : `${x.toFixed(digits)} s`);
const kb = (b?: number) => (b === undefined ? "-" : `${(b / 1000).toFixed(1)} KB`);
const mb = (b?: number) => (b === undefined ? "-" : `${(b / 1e6).toFixed(2)} MB`);

function printTable(rows: Row[], rb?: Runbook): void {
    const head = [
        "consumers",
        "first rotation",
        "rotation (g2)",
        "dual-active window",
        "slowest rollout",
        "no-op up",
        "state (export)",
        "per consumer",
        "checkpoint/consumer",
        "event log",
        "checks",
    ];
    const cells = rows.map((r) => [
        r.label,
        sec(r.g1),
        sec(r.g2),
        r.g2 === undefined ? "-" : `${sec(r.window, 0)} (Redis ${sec(r.redisWindow)})`,
        r.slowest === undefined ? "-" : `${sec(r.slowest, 0)} (window ${r.window! <= r.slowest + 3 ? "within" : "over"} +3 s)`,
        r.noop === undefined ? "-" : `${sec(r.noop)}${r.noopChanged ? ` (${r.noopChanged} changed)` : ""}`,
        kb(r.state),
        r.state === undefined ? "-" : kb(r.state / r.n),
        r.checkpoint === undefined ? "-" : kb(r.checkpoint / r.n),
        mb(r.eventLog),
        r.failed ? `FAILED ${r.failed}` : r.checks.join(", "),
    ]);
    const width = head.map((h, c) => Math.max(h.length, ...cells.map((row) => (c === head.length - 1 ? 0 : row[c].length))));
    const line = (row: string[]) => row.map((x, c) => (c === row.length - 1 ? x : x.padEnd(width[c]))).join(" | ");
    console.log("");
    console.log(line(head));
    cells.forEach((row) => console.log(line(row)));
    if (rb) {
        console.log(
            rb.failed
                ? `runbook (sequential ssh) over ${rb.n}: FAILED ${rb.failed}`
                : `runbook (sequential ssh) over ${rb.n}: ${sec(rb.wall)}, window ${sec(rb.window)} (Redis ${sec(rb.redisWindow)}), ${rb.check}`,
        );
    }
    const t = (n: number) => rows.find((r) => r.n === n && !r.failed)?.g2;
    const ratio = (a?: number, b?: number, d = 2) => (a === undefined || b === undefined ? "n/a" : (a / b).toFixed(d));
    const big = rb?.n ?? 50;
    console.log(
        `ratios: T(${big})/T(1) = ${ratio(t(big), t(1))} (target <= 1.5); runbook/T(${big}) = ${ratio(rb?.wall, t(big), 1)} (target >= 10); ` +
            `T(200) = ${t(200) === undefined ? "n/a" : sec(t(200))} (target < 60 s)`,
    );
    console.log(
        `T = rotation (g2) wall time of ${viaStart ? "`bin/rotate start --yes` (the whole command)" : "`pulumi up`"}; dual-active window: engine event timestamps (1 s resolution), Redis: polled at the source every 0.1 s;`,
    );
    console.log(
        "slowest rollout: one consumer's deploy..log check, first step start to last step end (target: window <= it + 3 s); checkpoint: the state file the engine rewrites per step operation",
    );
}

async function preview(n: number): Promise<void> {
    labCtl("up");
    const f = fleetOf(n);
    setupFleet(f, true); // a preview reads the store but touches no host
    const ws = fleetWorkspace(f);
    ws.patchConfig({ generation: 1 });
    const mem = new TreeMemory();
    const r = await ws.pulumi(["preview"]);
    mem.stop();
    const planned = r.events.filter((e) => e.resourcePreEvent).length;
    const peak = `peak memory ${(mem.peakBytes / 2 ** 20).toFixed(0)} MiB (RSS summed over the pulumi process tree, ${mem.peakProcesses} processes at the peak)`;
    const what = `preview of ${n} consumers (${inline ? "inline in rotation:secrets" : "rotation:inventoryFile"})`;
    console.log(
        r.code === 0
            ? `${what}: ${sec(r.seconds)} wall, ${peak}, ${planned} resources in the plan`
            : `${what}: FAILED after ${sec(r.seconds)}: ${firstError(r)}; ${peak}`,
    );
    console.log("targets: <= 60 s, <= 2 GiB (whole process tree)");
}

function header(): void {
    const git = (...a: string[]) => spawnSync("git", a, { cwd: path.resolve(__dirname, ".."), encoding: "utf8" }).stdout.trim();
    // The benchmark's own files do not count: they are copied onto older commits to measure them.
    const dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!bin/bench") ? " (with uncommitted changes)" : "";
    log(`fleet benchmark at ${git("rev-parse", "--short", "HEAD")}${dirty}, ${os.cpus().length} cores, consumers ${inline ? "inline" : "from a file"}`);
}

async function main(): Promise<void> {
    header();
    if (previewSize !== undefined) return preview(previewSize);
    log("lab: up --reset");
    labCtl("up", "--reset");
    const rows: Row[] = [];
    for (const n of sizes) rows.push(await fleetSize(n));
    let rb: Runbook | undefined;
    if (runbookSize > 0) {
        rb = await runbook(runbookSize);
        log(`runbook over ${runbookSize}: ${rb.failed ?? `${sec(rb.wall)}, ${rb.check}`}`);
    }
    printTable(rows, rb);
}

main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
});
