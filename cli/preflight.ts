/**
 * `bin/rotate preflight`, and the same checks at the start of `bin/rotate
 * start` before anything is written: every consumer's host, config, reload
 * program and free space, the source's admin credential and the store
 * (lib/scripts/preflight.ts), all in parallel. Read-only.
 */
import { consumerTarget, resolveEnvironment, type ResolvedRotation } from "../lib/resolve";
import { consumerPreflightScript, problemsOf, sourcePreflightScript, storePreflightScript } from "../lib/scripts/preflight";
import { sourceScripts } from "../lib/scripts/source";
import { hostKeyRefusal, pool, runAt, where } from "../provider/exec";
import type { StepTarget } from "../provider/types";
import { type Common, load, pick, printJson } from "./common";
import { EXIT } from "./run";
import type { PreflightResult } from "./runRecord";
import { PROJECT } from "./stack";

export interface PreflightProblem {
    secret: string;
    /** "consumer <name>", "source" or "store". */
    at: string;
    problem: string;
}

/** Runs one pre-flight script; an unreachable host is itself the problem. */
async function ask(target: StepTarget, script: string, timeoutSeconds: number): Promise<string[]> {
    const r = await runAt(target, script, "", timeoutSeconds);
    if (r.timedOut) return [`no answer within ${timeoutSeconds}s${where(target)}`];
    if (r.code !== 0) {
        const why = target.kind === "ssh" ? hostKeyRefusal(target, r.stderr) : undefined;
        return [why ?? `cannot run the checks${where(target)}: ${r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`}`];
    }
    return problemsOf(r.stdout);
}

/** Every problem of these rotations, each naming its secret and where. */
export async function preflightProblems(rotations: ResolvedRotation[]): Promise<PreflightProblem[]> {
    const jobs = rotations.flatMap((r) => {
        const { config } = r;
        const secret = config.secret.name;
        const source = sourcePreflightScript(config);
        const store = storePreflightScript(config);
        return [
            ...config.consumers.map(async (c) => {
                return (await ask(consumerTarget(r, c), consumerPreflightScript(c.configPath, c.write, c.reload), c.timeoutSeconds)).map((problem) => ({ secret, at: `consumer ${c.name}`, problem }));
            }),
            ...(source ? [ask(sourceScripts(config.source, { generation: config.generation, secretName: secret }, r.sourceHostKey).target, source, 30).then((ps) => ps.map((problem) => ({ secret, at: "source", problem })))] : []),
            ...(store ? [ask({ kind: "local" }, store, 30).then((ps) => ps.map((problem) => ({ secret, at: "store", problem })))] : []),
        ];
    });
    try {
        return (await Promise.all(jobs)).flat();
    } finally {
        pool.close();
    }
}

export const describeProblems = (ps: PreflightProblem[]) => ps.map((p) => `${p.secret} ${p.at}: ${p.problem}`);

/** The pre-flight of these rotations, timed, as the run record and --json carry it. */
export async function runPreflight(rotations: ResolvedRotation[]): Promise<PreflightResult> {
    const t0 = Date.now();
    const problems = await preflightProblems(rotations);
    return { ok: !problems.length, seconds: (Date.now() - t0) / 1000, consumers: rotations.reduce((n, r) => n + r.config.consumers.length, 0), problems };
}

export async function preflight(o: Common & { secret?: string[] }): Promise<number> {
    const { config } = await load(o);
    const names = pick(config.env, o.stack, o.secret);
    const result = await runPreflight(resolveEnvironment(o.stack, config.env, PROJECT, config.inventory).filter((r) => names.includes(r.config.secret.name)));
    if (o.json) printJson({ stack: o.stack, ...result });
    else {
        for (const line of describeProblems(result.problems)) console.log(`rotate: pre-flight: ${line}`);
        console.log(`rotate: pre-flight of ${names.join(", ")} (${result.consumers} consumers): ${result.ok ? "all clear" : `${result.problems.length} problem(s)`} in ${result.seconds.toFixed(1)}s`);
    }
    return result.ok ? EXIT.done : 1;
}
