// Fleet benchmark (issues 7 and 29): rotates fleets of 1, 10, 50 and 200
// consumers through the real engine (`pulumi up`), on the file:// and on the
// PostgreSQL state backend, at 50 also through `bin/rotate start --yes` (its
// overhead over the `up` inside it, from ROTATION_TRACE), then the
// sequential runbook (bench/runbook.sh) over the same 50, and prints the
// tables and issue 29's targets side by side (bench/fleetReport.ts).
// `--preview N` instead measures one preview of N consumers: wall time and
// peak memory of the whole pulumi process tree.
//   bin/bench [--inline] [--sizes 1,10,50,200] [--runbook 50] [--backend file|postgres|both] [--start]
//   bin/bench --preview 1000 [--inline]
// --start: the start rotation at every size, not only at the runbook's (50).
// --inline puts the consumers in the stack config (`rotation:secrets.<name>.consumers`, the
// only way the code before issue 7 knows); the default writes them to an
// inventory file named by `rotation:inventoryFile` (lab/driver/workspace.ts writes it).
// Needs root and the lab (started here; the default mode resets it first).
// The PostgreSQL side rotates fleets of its own (user fleetpgN) in a table of
// its own in the lab's state database, dropped at the end.
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import yaml from "js-yaml";
import { stateClient } from "../cli/backend";
import {
    captured,
    consumerEntry,
    currentSecret,
    type Fleet,
    fleetOf,
    lab,
    labCtl,
    runbookFleetOf,
    type RunResult,
    setupFleet,
    stackConfig,
    verify,
    Workspace,
} from "../lab/driver";
import { changedCount, checkpointBytes, engineWindow, firstError, slowestRollout, traceCpuSeconds, tracePhases } from "./fleetMeasure";
import { printLegend, printSide, printTargets, type Row, type Runbook, type Side } from "./fleetReport";
import { AclWatcher, TreeMemory } from "./instruments";

const USAGE =
    "usage: bin/bench [--inline] [--start] [--sizes 1,10,50,200] [--runbook 50] [--backend file|postgres|both] | bin/bench --preview N [--inline] | bin/bench --backends [--runs 3]";
const args = process.argv.slice(2);
const optionValue = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
};
const usage = (problem: string): never => {
    console.error(`${problem}\n${USAGE}`);
    process.exit(2);
};
const takesValue = ["--sizes", "--runbook", "--preview", "--backend"];
args.forEach((a, i) => {
    if (a.startsWith("--") && a !== "--inline" && a !== "--start" && !takesValue.includes(a)) usage(`unknown option ${a}`);
    if (!a.startsWith("--") && !takesValue.includes(args[i - 1])) usage(`unexpected argument ${a}`);
});
const inline = args.includes("--inline");
const startEverywhere = args.includes("--start");
const positive = (s: string): number => (/^\d+$/.test(s) && Number(s) >= 1 ? Number(s) : usage(`not a positive count: ${s}`));
const sizes = (optionValue("--sizes") ?? "1,10,50,200").split(",").map(positive);
const runbookSize = args.includes("--runbook") && optionValue("--runbook") === "0" ? 0 : positive(optionValue("--runbook") ?? "50");
const previewSize = args.includes("--preview") ? positive(optionValue("--preview") ?? "") : undefined;
const backendChoice = optionValue("--backend") ?? "both";
if (!["file", "postgres", "both"].includes(backendChoice)) usage(`--backend: file, postgres or both, not ${backendChoice}`);
/** The size whose rotation also runs through `bin/rotate start` (the runbook's, else 50). */
const startSize = runbookSize || 50;

/** A backend the fleets rotate on: its own fleets (so each starts at generation 0) and workspace options. */
interface Backend {
    side: Side["name"];
    fleetOf: (n: number) => Fleet;
    /** The PostgreSQL table of one size's state (every size's stack is `e2e` of the same project). */
    table?: (n: number) => string;
}
const pgTable = (n: number) => `bench_fleet_${process.pid}_${n}`;
const BACKENDS: Backend[] = [
    ...(backendChoice !== "postgres" ? [{ side: "file://" as const, fleetOf }] : []),
    ...(backendChoice !== "file"
        ? [{ side: "postgres://" as const, fleetOf: (n: number): Fleet => ({ user: `fleetpg${n}`, secret: `fleetpg-${n}`, count: n }), table: pgTable }]
        : []),
];

/** A throwaway workspace whose stack rotates fleet `f` (generation 0 until a run bumps it) on backend `b`. */
function fleetWorkspace(f: Fleet, b?: Backend): Workspace {
    const l = lab();
    const ws = new Workspace(
        f.secret,
        "e2e",
        b?.table ? { backendUrl: `${l.stateBackend.url}&table=${b.table(f.count)}`, env: { PGPASSFILE: l.stateBackend.passfile } } : {},
    );
    // bin/rotate prints its phases (cli/trace.ts): the `up` inside a start.
    ws.env.ROTATION_TRACE = "1";
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

/** The driver keeps every run's output for the tests' leak scan; a benchmark would hoard gigabytes. */
function dropCaptured(): void {
    captured.splice(0);
}

/** One rotation to generation g through `pulumi up`, checked. */
async function rotate(ws: Workspace, f: Fleet, g: number, row: Row): Promise<RunResult> {
    const before = currentSecret(f);
    ws.patchConfig({ generation: g });
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    if (r.code !== 0) throw new Error(`g${g}: ${firstError(r)}`);
    row.checks.push(`g${g} ${verify(f, before)}`);
    return r;
}

/**
 * The next generation through `bin/rotate start --yes`, as an operator runs
 * it: after a `bin/rotate status` (the runbook's first look, which also
 * leaves tsx's compile cache as an operator's machine has it). Not sampled
 * with `ps` as the tests do: that would load the machine it measures.
 */
async function rotateByStart(ws: Workspace, f: Fleet, row: Row): Promise<void> {
    const status = await ws.rotateProject(["status", "--stack", ws.stack]);
    if (status.code !== 0) throw new Error(`bin/rotate status: ${firstError(status)}`);
    const before = currentSecret(f);
    const r = await ws.rotateProject(["start", "--secret", f.secret, "--yes", "--plain", "--stack", ws.stack]);
    if (r.code !== 0) throw new Error(`bin/rotate start: ${firstError(r)}`);
    row.checks.push(`start ${verify(f, before)}`);
    const phases = tracePhases(r.stderr);
    const up = phases.get("pulumi up");
    phases.delete("pulumi up");
    const top = [...phases.entries()].filter(([, s]) => s >= 0.01).sort((a, b) => b[1] - a[1]);
    row.start = { seconds: r.seconds, up, phases: top.slice(0, 6), cpu: traceCpuSeconds(r.stderr) };
}

async function fleetSize(n: number, b: Backend): Promise<Row> {
    const f = b.fleetOf(n);
    const row: Row = { n, checks: [] };
    const t0 = Date.now();
    const tag = `${n} (${b.side})`;
    try {
        setupFleet(f);
        const ws = fleetWorkspace(f, b);
        row.g1 = (await rotate(ws, f, 1, row)).seconds;
        log(`${tag}: first rotation ${row.g1.toFixed(1)} s, ${row.checks.at(-1)}`);
        // The measured rotation: a steady-state generation bump.
        const watcher = await AclWatcher.start(f.user);
        let g2: RunResult;
        try {
            g2 = await rotate(ws, f, 2, row);
        } finally {
            row.redisWindow = await watcher.stop();
        }
        Object.assign(row, { g2: g2.seconds, window: engineWindow(g2, f, 2), slowest: slowestRollout(g2, f), eventLog: g2.eventLogText.length });
        log(`${tag}: rotation g2 ${g2.seconds.toFixed(1)} s, ${row.checks.at(-1)}`);
        const before = currentSecret(f);
        const noop = await ws.pulumi(["up", "--yes", "--skip-preview"]);
        if (noop.code !== 0) throw new Error(`no-op up: ${firstError(noop)}`);
        Object.assign(row, { noop: noop.seconds, noopChanged: changedCount(noop) });
        row.checks.push(`no-op ${verify(f, before)}`);
        const exported = await ws.pulumi(["stack", "export"]);
        if (exported.code !== 0) throw new Error(`stack export: ${firstError(exported)}`);
        row.state = Buffer.byteLength(exported.stdout);
        row.checkpoint = await checkpointBytes(ws, b.table?.(n));
        if (n === startSize || startEverywhere) {
            await rotateByStart(ws, f, row);
            log(`${tag}: bin/rotate start ${row.start!.seconds.toFixed(1)} s, its up ${row.start!.up?.toFixed(1) ?? "?"} s, ${row.checks.at(-1)}`);
        }
    } catch (e) {
        row.failed = String((e as Error).message ?? e).split("\n")[0];
        log(`${tag}: FAILED after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${row.failed}`);
    }
    dropCaptured();
    return row;
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
    const secs = `${r.seconds.toFixed(1)} s`;
    console.log(r.code === 0 ? `${what}: ${secs} wall, ${peak}, ${planned} resources in the plan` : `${what}: FAILED after ${secs}: ${firstError(r)}; ${peak}`);
    console.log("targets: <= 60 s, <= 2 GiB (whole process tree)");
}

function header(): void {
    const git = (...a: string[]) => spawnSync("git", a, { cwd: path.resolve(__dirname, ".."), encoding: "utf8" }).stdout.trim();
    // The benchmark's own files do not count: they are copied onto older commits to measure them.
    const dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!bin/bench") ? " (with uncommitted changes)" : "";
    log(
        `fleet benchmark at ${git("rev-parse", "--short", "HEAD")}${dirty}, ${os.cpus().length} cores, consumers ${inline ? "inline" : "from a file"}, backends ${BACKENDS.map((b) => b.side).join(" and ")}`,
    );
}

/** Drops this run's PostgreSQL tables. */
async function dropTables(): Promise<void> {
    process.env.PGPASSFILE = lab().stateBackend.passfile;
    const c = stateClient(lab().stateBackend.url);
    await c.connect();
    for (const n of sizes) await c.query(`DROP TABLE IF EXISTS ${pgTable(n)}`);
    await c.end();
}

async function main(): Promise<void> {
    header();
    if (previewSize !== undefined) return preview(previewSize);
    log("lab: up --reset");
    labCtl("up", "--reset");
    const sides: Side[] = [];
    try {
        for (const b of BACKENDS) {
            const side: Side = { name: b.side, rows: [] };
            for (const n of sizes) side.rows.push(await fleetSize(n, b));
            sides.push(side);
        }
    } finally {
        if (BACKENDS.some((b) => b.table)) await dropTables();
    }
    let rb: Runbook | undefined;
    if (runbookSize > 0) {
        rb = await runbook(runbookSize);
        log(`runbook over ${runbookSize}: ${rb.failed ?? `${rb.wall!.toFixed(1)} s, ${rb.check}`}`);
    }
    sides.forEach(printSide);
    printTargets(sides, rb, startSize);
    printLegend(rb);
}

main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
});
