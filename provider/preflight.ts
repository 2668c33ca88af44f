/**
 * The pre-flight: what one rotation needs, checked before anything of it
 * runs (lib/scripts/preflight.ts): every consumer's host, config, reload
 * program and free space, the source's admin credential and a file store,
 * all at once, each host over its shared connection. Read-only.
 *
 * One implementation for the first step of every rotation (op "preflight",
 * so a plain `pulumi up` runs it too) and for `bin/rotate preflight`.
 */
import { isJournal } from "../lib/logCheck";
import type { HostConsumerConfig } from "../lib/config";
import { isHostConsumer } from "../consumers";
import { apiPreflight } from "./apiConsumer";
import type { ResolvedRotation } from "../adapters/resolve";
import { randomBytes } from "node:crypto";
import { splitBatch } from "../lib/scripts/common";
import { preflightBatchScript, problemsOf, sourcePreflightScript, storePreflightScript } from "../lib/scripts/preflight";
import { sourceScripts } from "../sources";
import { scriptChunks } from "./coalesce";
import { hostKeyRefusal, runAt, where } from "./exec";
import { StepError } from "./outcome";
import type { PreflightSpec, SshTarget, StepTarget } from "./types";

export interface PreflightProblem {
    secret: string;
    /** "consumer <name>", "source" or "store". */
    at: string;
    problem: string;
}

/**
 * What the pre-flight of this rotation checks. Only data: each consumer's
 * script is built when it runs (it carries a fresh nonce), so the step's
 * inputs stay the same from one `up` to the next.
 */
export function preflightSpec(r: ResolvedRotation, hostOf: (c: HostConsumerConfig) => string): PreflightSpec {
    const { config } = r;
    const secret = config.secret.name;
    const source = sourcePreflightScript(config);
    const store = storePreflightScript(config);
    const apis = config.consumers.flatMap((c) => (isHostConsumer(c) ? [] : [{ name: c.name, consumer: c }]));
    return {
        secret,
        consumers: config.consumers.filter(isHostConsumer).map((c) => ({
            name: c.name,
            host: hostOf(c),
            configPath: c.configPath,
            write: c.write,
            reload: c.reload,
            timeoutSeconds: c.timeoutSeconds,
            ...(c.logCheck && isJournal(c.logCheck) ? { logJournal: { unit: c.logCheck.unit } } : {}),
        })),
        ...(source
            ? {
                  source: {
                      target: sourceScripts(config.source, { generation: config.generation, secretName: secret }, r.sourceHostKey).target,
                      script: source,
                  },
              }
            : {}),
        ...(store ? { store } : {}),
        ...(apis.length ? { apis } : {}),
    };
}

/** Why a pre-flight script gave no answer: an unreachable host is itself the problem. */
function unanswered(target: StepTarget, timeoutSeconds: number, r: { timedOut: boolean; code: number | null; stderr: string }): string | undefined {
    if (r.timedOut) return `no answer within ${timeoutSeconds}s${where(target)}`;
    if (r.code === 0) return undefined;
    const why = target.kind === "ssh" ? hostKeyRefusal(target, r.stderr) : undefined;
    return why ?? `cannot run the checks${where(target)}: ${r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`}`;
}

/** Runs one pre-flight script. */
async function ask(target: StepTarget, script: string, timeoutSeconds: number): Promise<string[]> {
    const r = await runAt(target, script, "", timeoutSeconds);
    const why = unanswered(target, timeoutSeconds, r);
    return why ? [why] : problemsOf(r.stdout);
}

/** The pre-flight of one host's consumers, a job per script that fits one (lib/scripts/preflight.ts preflightBatchScript): each one's problems, in order. */
async function askHost(target: SshTarget, consumers: PreflightSpec["consumers"]): Promise<string[][]> {
    const out: string[][] = [];
    const boundary = `PREFLIGHT-${randomBytes(8).toString("hex")}`;
    const build = (part: PreflightSpec["consumers"]) =>
        preflightBatchScript(
            part.map((c) => ({ configPath: c.configPath, write: c.write, reload: c.reload, ...(c.logJournal ? { journal: c.logJournal } : {}) })),
            boundary,
        );
    for (const { part, script } of scriptChunks(consumers, build)) {
        const timeoutSeconds = Math.max(...part.map((c) => c.timeoutSeconds)) + Math.ceil(part.length / 20);
        const r = await runAt(target, script, "", timeoutSeconds);
        const why = unanswered(target, timeoutSeconds, r);
        const answers = why ? [] : splitBatch(r.stdout, part.length, boundary);
        out.push(
            ...part.map((_, i) => (why ? [why] : answers[i] === undefined ? [`the host's answer was cut short${where(target)}`] : problemsOf(answers[i]))),
        );
    }
    return out;
}

/** Every problem of this rotation, each naming its secret and where; consumers' hosts are keys of `hosts`. */
export async function preflightProblems(spec: PreflightSpec, hosts: Record<string, SshTarget>): Promise<PreflightProblem[]> {
    const { secret } = spec;
    const at = (place: string) => (problems: string[]) => problems.map((problem) => ({ secret, at: place, problem }));
    const byHost = new Map<string, PreflightSpec["consumers"]>();
    for (const c of spec.consumers) byHost.set(c.host, [...(byHost.get(c.host) ?? []), c]);
    const consumerProblems = Promise.all(
        [...byHost].map(async ([host, cs]) => {
            const each = await askHost(hosts[host], cs);
            return new Map(cs.map((c, i) => [c.name, each[i]] as const));
        }),
    ).then((maps) => {
        // In the inventory's order, as before.
        const of = new Map(maps.flatMap((m) => [...m]));
        return spec.consumers.flatMap((c) => at(`consumer ${c.name}`)(of.get(c.name)!));
    });
    const jobs = [
        consumerProblems,
        ...(spec.source ? [ask(spec.source.target, spec.source.script, 30).then(at("source"))] : []),
        ...(spec.store ? [ask({ kind: "local" }, spec.store, 30).then(at("store"))] : []),
        ...(spec.apis ? [apiPreflight(spec.apis).then((each) => each.flatMap((a) => at(`consumer ${a.name}`)(a.problems)))] : []),
    ];
    return (await Promise.all(jobs)).flat();
}

export const describeProblems = (ps: PreflightProblem[]) => ps.map((p) => `${p.secret} ${p.at}: ${p.problem}`);

/** The pre-flight step: resolves when all is ready, else throws ONE error, its title then a line per problem. */
export async function preflightStep(spec: PreflightSpec, hosts: Record<string, SshTarget>, title: string): Promise<void> {
    const problems = await preflightProblems(spec, hosts);
    if (problems.length) throw new StepError(`${title}: ${problems.length} problem(s); nothing of the rotation ran:\n${describeProblems(problems).join("\n")}`);
}

/**
 * The problems a failed pre-flight step of `secret` named, read back from its
 * error as the engine passed it on (for the console's run record). A problem
 * runs to the next line that starts another: a config path may hold a newline.
 */
export function problemsOfStepError(secret: string, error: string): PreflightProblem[] {
    const starts = new RegExp(`^${secret} (consumer [a-z0-9-]+|source|store): `);
    const out: PreflightProblem[] = [];
    for (const line of error.split("\n").slice(1)) {
        const m = starts.exec(line);
        if (m) out.push({ secret, at: m[1], problem: line.slice(m[0].length) });
        else if (out.length) out[out.length - 1].problem += `\n${line}`;
    }
    return out;
}
