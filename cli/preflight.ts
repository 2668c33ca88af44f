/**
 * `bin/rotate preflight`: the checks of every rotation's first step
 * (provider/preflight.ts: each consumer's host, config, reload program and
 * free space, the source's admin credential, the store), run on their own
 * without an update, all in parallel. Read-only. `bin/rotate start` does not
 * run them itself: its update's pre-flight steps do (cli/run.ts reads their
 * outcome back as the run's `preflight`).
 */
import { consumerHosts, resolveEnvironment, type ResolvedRotation } from "../adapters/resolve";
import { pool } from "../provider/exec";
import { describeProblems, preflightProblems, preflightSpec } from "../provider/preflight";
import { type Common, load, pick, printJson } from "./common";
import { EXIT } from "./run";
import type { PreflightResult } from "./runRecord";
import { PROJECT } from "./stack";

/** The pre-flight of these rotations, timed, as `--json` carries it. */
async function runPreflight(rotations: ResolvedRotation[]): Promise<PreflightResult> {
    const t0 = Date.now();
    try {
        const problems = (
            await Promise.all(
                rotations.map((r) => {
                    const { hosts, hostOf } = consumerHosts(r);
                    return preflightProblems(preflightSpec(r, hostOf), hosts);
                }),
            )
        ).flat();
        return { ok: !problems.length, seconds: (Date.now() - t0) / 1000, consumers: rotations.reduce((n, r) => n + r.config.consumers.length, 0), problems };
    } finally {
        pool.close();
    }
}

export async function preflight(o: Common & { secret?: string[] }): Promise<number> {
    const { config } = await load(o);
    const names = pick(config.env, o.stack, o.secret);
    const result = await runPreflight(resolveEnvironment(o.stack, config.env, PROJECT, config.inventory).filter((r) => names.includes(r.config.secret.name)));
    if (o.json) printJson({ stack: o.stack, ...result });
    else {
        for (const line of describeProblems(result.problems)) console.log(`rotate: pre-flight: ${line}`);
        console.log(
            `rotate: pre-flight of ${names.join(", ")} (${result.consumers} consumers): ${result.ok ? "all clear" : `${result.problems.length} problem(s)`} in ${result.seconds.toFixed(1)}s`,
        );
    }
    return result.ok ? EXIT.done : 1;
}
