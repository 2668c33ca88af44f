/**
 * The gate's drift check: before the revocation, every consumer of the
 * secret (not only those this run deployed to) answers an HMAC, under a fresh
 * nonce, of the value its config holds (lib/scripts/check.ts). Any consumer
 * not on the new secret keeps the gate shut, named: one restored from a
 * backup, edited by hand or unreachable would otherwise lose its access at
 * the revocation.
 */
import { freshNonce, hmacInput, hmacOf, holding, type Holding } from "../lib/drift";
import { randomBytes } from "node:crypto";
import { driftBatchScript, driftCheckScript, splitDriftBatch } from "../lib/scripts/check";
import { logAnchorOf, logAnchorScript, type AnchorSource, type LogAnchor } from "../lib/scripts/logCount";
import { scriptChunks } from "./coalesce";
import { hostKeyRefusal, runAt } from "./exec";
import { StepError, redact } from "./outcome";
import type { DriftCheck, SshTarget, StepProps } from "./types";
import { apiHoldings } from "./apiConsumer";

/** A consumer's config as the drift check reads it. */
export type DriftTarget = Pick<DriftCheck, "configPath" | "write" | "timeoutSeconds">;

/**
 * Asks one consumer which of these values its config holds: a fresh nonce,
 * the host's HMAC, compared with ours. `users` are the logins a template
 * renders with for each value (postgres-role). Shared by the gate and
 * `bin/rotate check`.
 */
export async function askHolding(
    target: SshTarget,
    c: DriftTarget,
    values: { current: string; previous?: string; staged?: string },
    users: { current?: string; previous?: string } = {},
    log?: AnchorSource,
): Promise<{ holds: Holding; detail?: string; anchor?: LogAnchor }> {
    const nonce = freshNonce();
    // The gate notes the consumer log's anchor in the same job (one job a consumer, not two: at a thousand consumers that is seconds).
    const anchorFirst = log
        ? `(
${logAnchorScript(log)})
`
        : "";
    const r = await runAt(target, anchorFirst + driftCheckScript(c.configPath, c.write, nonce), "", c.timeoutSeconds);
    if (r.timedOut || r.code !== 0) {
        return { holds: "unreachable", detail: noAnswer(target, c.timeoutSeconds, r) };
    }
    const mac = (v: string | undefined, user?: string) => (v === undefined ? undefined : hmacOf(nonce, hmacInput(c.write, v, user)));
    const anchor = log ? logAnchorOf(r.stdout) : undefined;
    return {
        ...holding(r.stdout, {
            current: mac(values.current, users.current)!,
            previous: mac(values.previous, users.previous),
            staged: mac(values.staged, users.current),
        }),
        ...(anchor !== undefined ? { anchor } : {}),
    };
}

/** An answer that did not come: the host's refusal of its key, the timeout, or the last line of its error. */
function noAnswer(target: SshTarget, timeoutSeconds: number, r: { timedOut: boolean; code: number | null; stderr: string }): string {
    return hostKeyRefusal(target, r.stderr) ?? (r.timedOut ? `no answer within ${timeoutSeconds}s` : (r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`));
}

/**
 * The gate's question to every consumer of one host at once
 * (lib/scripts/check.ts driftBatchScript): one job, one shell and one nonce
 * per host (per script that fits a job), each consumer's log anchor noted in it; the
 * answers in the order asked, as askHolding gives them.
 */
export async function askHoldingOnHost(
    target: SshTarget,
    checks: (DriftTarget & { log?: AnchorSource })[],
    values: { current: string; previous?: string },
    users: { current?: string; previous?: string } = {},
): Promise<{ holds: Holding; detail?: string; anchor?: LogAnchor }[]> {
    const out: { holds: Holding; detail?: string; anchor?: LogAnchor }[] = [];
    const nonce = freshNonce();
    const boundary = `ANSWER-${randomBytes(8).toString("hex")}`;
    const build = (part: typeof checks) =>
        driftBatchScript(
            part.map((c) => ({ configPath: c.configPath, write: c.write, ...(c.log ? { log: c.log } : {}) })),
            nonce,
            boundary,
        );
    for (const { part, script } of scriptChunks(checks, build)) {
        const timeoutSeconds = Math.max(...part.map((c) => c.timeoutSeconds)) + Math.ceil(part.length / 100);
        const r = await runAt(target, script, "", timeoutSeconds);
        if (r.timedOut || r.code !== 0) {
            const detail = noAnswer(target, timeoutSeconds, r);
            out.push(...part.map(() => ({ holds: "unreachable" as const, detail })));
            continue;
        }
        const answers = splitDriftBatch(r.stdout, part.length, boundary);
        part.forEach((c, i) => {
            const text = answers[i];
            if (text === undefined) {
                out.push({ holds: "unreachable", detail: "the host's answer was cut short" });
                return;
            }
            const mac = (v: string | undefined, user?: string) => (v === undefined ? undefined : hmacOf(nonce, hmacInput(c.write, v, user)));
            const anchor = c.log ? logAnchorOf(text) : undefined;
            out.push({
                ...holding(text, { current: mac(values.current, users.current)!, previous: mac(values.previous, users.previous) }),
                ...(anchor !== undefined ? { anchor } : {}),
            });
        });
    }
    return out;
}

/** A gate's consumer's log, whose anchor is noted: its file, or its unit's journal. */
export const driftLog = (c: DriftCheck): AnchorSource | undefined => (c.logPath ? { path: c.logPath } : c.logJournal);

/** What a consumer that is not on the new secret holds, in words. */
const HOLDS: Record<Exclude<Holding, "current" | "write-only">, string> = {
    previous: "holds the previous secret",
    staged: "holds a staged secret",
    unknown: "holds neither the new nor the previous secret",
    missing: "holds no secret",
    unreachable: "is unreachable",
};

/** One consumer the gate found not on the new secret. */
export interface OffConsumer {
    consumer: string;
    /** e.g. "app-redis → consumer web-1". */
    label: string;
    holds: Exclude<Holding, "current" | "write-only">;
    detail?: string;
}

/**
 * The gate's refusal: each consumer not on the new secret and what it holds,
 * then the way forward per reason. One that holds another value (reverted,
 * restored, edited) is deployed to again: its rollout succeeded, so only
 * `--redeploy` runs it again. One that did not answer needs no new deploy: a
 * resume asks it again once it is reachable.
 */
export function gateRefusal(title: string, where: { stack: string; secret: string }, total: number, off: OffConsumer[]): string {
    const redeploy = off.filter((c) => c.holds !== "unreachable").map((c) => c.consumer);
    const unreachable = off.filter((c) => c.holds === "unreachable").map((c) => c.consumer);
    const deploy = `deploy the new secret to ${redeploy.join(", ")} again`;
    const wait = `once ${unreachable.join(", ")} ${unreachable.length === 1 ? "is" : "are"} reachable again, let the gate ask again`;
    const way = !unreachable.length ? `${deploy} and let the gate ask again` : !redeploy.length ? wait : `${deploy}; ${wait}`;
    const command = `bin/rotate resume --stack ${where.stack} --secret ${where.secret}${redeploy.map((c) => ` --redeploy ${c}`).join("")} --yes`;
    const named = off.map((c) => `${c.label} ${HOLDS[c.holds]}${c.detail ? ` (${c.detail})` : ""}`).join("; ");
    return `${title}: ${off.length} of ${total} consumers are not on the new secret, so nothing is revoked: ${named}. ${way[0].toUpperCase()}${way.slice(1)}: ${command}`;
}

/**
 * Resolves when every consumer holds the new secret; otherwise a StepError
 * naming each one that does not, and the command that goes on from there,
 * for the stack and secret of the step's audit record.
 */
export async function checkDrift(
    props: Pick<StepProps, "title" | "drift" | "apiDrift" | "hosts" | "users" | "audit">,
    secrets: string[],
): Promise<Map<string, LogAnchor>> {
    const [next, previous] = secrets;
    const checks = props.drift ?? [];
    const byHost = new Map<string, DriftCheck[]>();
    for (const c of checks) byHost.set(c.host, [...(byHost.get(c.host) ?? []), c]);
    const [answers, apiAnswers] = await Promise.all([
        Promise.all(
            [...byHost].map(async ([host, cs]) => {
                const vs = await askHoldingOnHost(
                    props.hosts![host],
                    cs.map((c) => ({ ...c, log: driftLog(c) })),
                    { current: next, previous },
                    props.users,
                );
                return cs.map((c, i) => ({ c, v: vs[i] }));
            }),
        ).then((perHost) => {
            // In the inventory's order, as the refusal names them.
            const of = new Map(perHost.flat().map((a) => [a.c, a.v]));
            return checks.map((c) => ({ c, v: of.get(c)! }));
        }),
        // A consumer behind an API that cannot give the secret back answers write-only: its rollout's confirmation stands.
        apiHoldings(props.apiDrift ?? [], { current: next, previous }, props.users),
    ]);
    const off = [
        ...answers.flatMap(({ c, v }): OffConsumer[] =>
            v.holds === "current" || v.holds === "write-only"
                ? []
                : [{ consumer: c.consumer, label: c.label, holds: v.holds, ...(v.detail ? { detail: v.detail } : {}) }],
        ),
        ...apiAnswers.flatMap(({ check, holds, detail }): OffConsumer[] =>
            holds === "current" || holds === "write-only" ? [] : [{ consumer: check.consumer, label: check.label, holds, ...(detail ? { detail } : {}) }],
        ),
    ];
    // Each consumer log's anchor, noted in the same job: where its count after the revocation starts.
    if (!off.length) return new Map(answers.flatMap(({ c, v }) => (v.anchor !== undefined ? [[c.consumer, v.anchor] as const] : [])));
    const record = props.audit?.record;
    const where = { stack: String(record?.stack ?? "<stack>"), secret: String(record?.secret ?? off[0].label.split(" → ")[0]) };
    throw new StepError(redact(gateRefusal(props.title, where, checks.length + (props.apiDrift?.length ?? 0), off), secrets));
}
