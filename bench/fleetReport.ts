// bin/bench's output (bench/fleet.ts): one table per state backend, then
// issue 29's targets side by side, file:// beside PostgreSQL, each "met" or
// "NOT met" (or not measured in this run).

/** One fleet size on one backend. */
export interface Row {
    n: number;
    /** First rotation (generation 1), `pulumi up`. */
    g1?: number;
    /** The measured rotation (a steady-state generation bump), `pulumi up`. */
    g2?: number;
    window?: number;
    redisWindow?: number;
    slowest?: number;
    noop?: number;
    noopChanged?: number;
    state?: number;
    checkpoint?: number;
    eventLog?: number;
    /** The same rotation (the next generation) through `bin/rotate start --yes`: the whole command, and the `pulumi up` inside it. */
    start?: { seconds: number; up?: number; phases: [string, number][]; cpu?: number };
    checks: string[];
    failed?: string;
}

export interface Runbook {
    n: number;
    wall?: number;
    window?: number;
    redisWindow?: number;
    check?: string;
    failed?: string;
}

/** One state backend's rows. */
export interface Side {
    name: "file://" | "postgres://";
    rows: Row[];
}

const sec = (x?: number, digits = 1) => (x === undefined || Number.isNaN(x) ? "-" : `${x.toFixed(digits)} s`);
const kb = (b?: number) => (b === undefined ? "-" : `${(b / 1000).toFixed(1)} KB`);
const mb = (b?: number) => (b === undefined ? "-" : `${(b / 1e6).toFixed(2)} MB`);
const overhead = (r?: Row) => (r?.start?.up === undefined ? undefined : r.start.seconds - r.start.up);

function table(head: string[], cells: string[][]): void {
    const width = head.map((h, c) => Math.max(h.length, ...cells.map((row) => (c === head.length - 1 ? 0 : row[c].length))));
    const line = (row: string[]) => row.map((x, c) => (c === row.length - 1 ? x : x.padEnd(width[c]))).join(" | ");
    console.log(line(head));
    cells.forEach((row) => console.log(line(row)));
}

export function printSide(side: Side): void {
    console.log(`\nstate backend ${side.name}`);
    table(
        [
            "consumers",
            "first rotation",
            "rotation (up)",
            "dual-active window",
            "slowest rollout",
            "bin/rotate start (its up, overhead)",
            "no-op up",
            "state (export)",
            "per consumer",
            "checkpoint/consumer",
            "event log",
            "checks",
        ],
        side.rows.map((r) => [
            String(r.n),
            sec(r.g1),
            sec(r.g2),
            r.g2 === undefined ? "-" : `${sec(r.window, 0)} (Redis ${sec(r.redisWindow)})`,
            r.slowest === undefined ? "-" : `${sec(r.slowest, 0)} (window ${r.window! <= r.slowest + 3 ? "within" : "over"} +3 s)`,
            r.start ? `${sec(r.start.seconds)} (${sec(r.start.up)}, ${sec(overhead(r), 2)})` : "-",
            r.noop === undefined ? "-" : `${sec(r.noop)}${r.noopChanged ? ` (${r.noopChanged} changed)` : ""}`,
            kb(r.state),
            r.state === undefined ? "-" : kb(r.state / r.n),
            r.checkpoint === undefined ? "-" : kb(r.checkpoint / r.n),
            mb(r.eventLog),
            r.failed ? `FAILED ${r.failed}` : r.checks.join(", "),
        ]),
    );
    for (const r of side.rows.filter((x) => x.start?.phases.length))
        console.log(
            `  start at ${r.n}, its overhead by phase (ROTATION_TRACE): ${r.start!.phases.map(([p, s]) => `${p} ${s.toFixed(2)} s`).join(", ")}; the console process's own CPU ${sec(r.start!.cpu, 2)}`,
        );
}

/** A target's verdict: met, NOT met, or not measured in this run. */
const verdict = (ok: boolean | undefined, figure: string) => (ok === undefined ? `${figure} (not measured)` : `${figure} ${ok ? "met" : "NOT met"}`);

export function printTargets(sides: Side[], rb: Runbook | undefined, startSize: number): void {
    const ok = (s: Side, n: number) => s.rows.find((r) => r.n === n && !r.failed);
    const targets: [string, (s: Side) => string][] = [
        [
            "T(1000) < 60 s",
            (s) => {
                const t = ok(s, 1000)?.g2;
                return verdict(t === undefined ? undefined : t < 60, sec(t));
            },
        ],
        [
            "T(200) < 15 s",
            (s) => {
                const t = ok(s, 200)?.g2;
                return verdict(t === undefined ? undefined : t < 15, sec(t));
            },
        ],
        [
            "T(50) <= 1.5 x T(1)",
            (s) => {
                const [a, b] = [ok(s, 50)?.g2, ok(s, 1)?.g2];
                return verdict(a === undefined || b === undefined ? undefined : a <= 1.5 * b, a && b ? `${(a / b).toFixed(2)}x` : "-");
            },
        ],
        [
            "window <= slowest rollout + 3 s, every size",
            (s) => {
                const rows = s.rows.filter((r) => r.window !== undefined && r.slowest !== undefined);
                const over = rows.filter((r) => !(r.window! <= r.slowest! + 3));
                const figure = over.length ? `over at ${over.map((r) => `${r.n} (${r.window} > ${r.slowest} + 3 s)`).join(", ")}` : `${rows.length} size(s)`;
                return verdict(rows.length ? !over.length : undefined, figure);
            },
        ],
        [
            `bin/rotate start over its up at ${startSize} <= 1.5 s`,
            (s) => {
                const o = overhead(ok(s, startSize));
                return verdict(o === undefined ? undefined : o <= 1.5, sec(o, 2));
            },
        ],
        [
            "stack export <= 5 KB per consumer (50 and up)",
            (s) => {
                const rows = s.rows.filter((r) => r.n >= 50 && r.state !== undefined);
                const worst = Math.max(...rows.map((r) => r.state! / r.n));
                return verdict(rows.length ? worst <= 5000 : undefined, rows.length ? `${kb(worst)} at most` : "-");
            },
        ],
        [
            `runbook / bin/rotate start at ${rb?.n ?? startSize} >= 10`,
            (s) => {
                const t = rb && ok(s, rb.n)?.start?.seconds;
                return verdict(rb?.wall === undefined || t === undefined ? undefined : rb.wall / t >= 10, rb?.wall && t ? `${(rb.wall / t).toFixed(1)}x` : "-");
            },
        ],
    ];
    console.log("\ntargets (issue 29)");
    table(
        ["target", ...sides.map((s) => s.name)],
        targets.map(([name, f]) => [name, ...sides.map(f)]),
    );
}

export function printLegend(rb: Runbook | undefined): void {
    if (rb) {
        console.log(
            rb.failed
                ? `\nrunbook (sequential ssh) over ${rb.n}: FAILED ${rb.failed}`
                : `\nrunbook (sequential ssh) over ${rb.n}: ${sec(rb.wall)}, window ${sec(rb.window)} (Redis ${sec(rb.redisWindow)}), ${rb.check}`,
        );
    }
    console.log(
        [
            "T = rotation (up): wall time of `pulumi up` for a steady-state generation bump; dual-active window: engine event timestamps (1 s resolution), Redis: polled at the source every 0.1 s;",
            "slowest rollout: one consumer's (its steps' first start to last end) or one batch's (`<secret>-rollouts-<k>`: its consumers run at once, so its span is its slowest consumer's);",
            "bin/rotate start: the next generation through `bin/rotate start --yes` (the whole command, after a `bin/rotate status` as an operator runs it first), its up: the `pulumi up` inside it",
            "(ROTATION_TRACE), overhead = the command minus its up; checkpoint: the state the engine rewrites per step operation (the file, or the PostgreSQL row).",
        ].join("\n"),
    );
}
