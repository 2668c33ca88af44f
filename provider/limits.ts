/**
 * Bounds on what the step provider runs at once. The engine may start many
 * steps together (bin/pulumi raises its parallelism to fit the fleet); these
 * limits keep the operator's machine and each host within what they take:
 * 36 unbounded ssh sessions on 2 cores made steps time out (issue 7).
 */
import * as os from "node:os";

export class Semaphore {
    private active = 0;
    private readonly waiting: (() => void)[] = [];

    constructor(readonly size: number) {}

    async run<T>(fn: () => Promise<T>): Promise<T> {
        if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
        else this.active++;
        try {
            return await fn();
        } finally {
            const next = this.waiting.shift();
            if (next) next();
            else this.active--;
        }
    }
}

function fromEnv(name: string, fallback: number): number {
    const v = Number(process.env[name]);
    return Number.isInteger(v) && v > 0 ? v : fallback;
}

/** Processes (bash, ssh) the provider runs at once on the operator's machine. */
export const processes = new Semaphore(fromEnv("ROTATION_MAX_PROCESSES", Math.max(16, os.cpus().length * 8)));

/**
 * Jobs running at once on one host (through its agent session,
 * provider/agent.ts): a consumer's rollout is a few short jobs, and a reload
 * or a health command may take seconds; this keeps a host with hundreds of
 * consumers from starting hundreds of reloads at once. 64, not 32: jobs that
 * get their permits together run as one (provider/coalesce.ts) and free them
 * together, so a turn of quick reads waits on a turn's slowest reload; at 32
 * the lab's three hosts sat half idle through a 1000-consumer rollout (34 s,
 * the CPU 60% busy), at 64 they are busy throughout (24-28 s).
 */
export const JOBS_PER_HOST = fromEnv("ROTATION_JOBS_PER_HOST", 64);
