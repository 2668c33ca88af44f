/**
 * ROTATION_TRACE=1: where a command's wall clock goes, on stderr, one line
 * per phase: `rotate: trace: <phase> <seconds>s (at <seconds>s)`, the "at"
 * counted from the process's start (so the first line holds tsx's start-up
 * and the loading of the modules). Every Pulumi CLI call is a phase of its
 * own (`pulumi <subcommand>`), and `pulumi up` is the update itself: bin/bench
 * takes the console's overhead as the command's wall time minus it. Off, it
 * costs nothing and prints nothing; it never prints a value, only names.
 */
const on = /^(1|true|yes)$/i.test(process.env.ROTATION_TRACE ?? "");

/** Seconds since the process started (performance's origin is the process's start). */
const now = () => performance.now() / 1000;

let last = 0;

/** Ends the phase that began at the previous mark (or at the process's start) under `phase`. */
export function mark(phase: string): void {
    if (!on) return;
    const t = now();
    process.stderr.write(`rotate: trace: ${phase} ${(t - last).toFixed(3)}s (at ${t.toFixed(3)}s)\n`);
    last = t;
}

/** At the end: this process's own CPU time (its children's, the Pulumi CLI's, are theirs), which a loaded machine stretches less than wall time. */
export function traceCpu(): void {
    if (!on) return;
    const { user, system } = process.cpuUsage();
    process.stderr.write(`rotate: trace: cpu of the console's process ${((user + system) / 1e6).toFixed(3)}s\n`);
}

/** Runs `f` as the phase `phase` (whatever ran since the last mark is traced first, as "console"). */
export async function traced<T>(phase: string, f: () => Promise<T>): Promise<T> {
    if (!on) return f();
    if (now() - last > 0.001) mark("console");
    try {
        return await f();
    } finally {
        mark(phase);
    }
}
