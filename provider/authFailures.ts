/**
 * Verification 3, after the revocation: every consumer with a `logCheck` has
 * its log searched again and its auth failures (lines matching the pattern;
 * in a unit's journal also, or only, its entries at the priority: the
 * runbook's `journalctl -p err`) counted. A count above 0 means something on
 * that host still uses the revoked secret (a stray client, a copy of the
 * config the rotation does not know) or fails since: the verification
 * fails, naming each such consumer and its count. Nothing is undone; past
 * the gate the only way is forward.
 *
 * The anchor "since the revocation": the gate, once every consumer holds the
 * new secret and just before its commit and the revocation, notes the size
 * of each consumer's log (the cursor of its unit's last journal entry, lib/
 * scripts/journal.ts) here, in the provider's memory, keyed by stack,
 * secret, generation and consumer. One provider process serves one `pulumi
 * up`, and the verification runs later in that same update. When the gate
 * ran in an earlier update (a resume after a failure past the gate) there is
 * no anchor: the verification notes the anchor itself when it starts and counts
 * what the log gets during the consumer's window, and says so ("since this
 * check started"). Not kept in state on purpose: an anchor that outlived the
 * update would count, on every resume, failures the operator already fixed.
 *
 * Each consumer's count waits for its `windowSeconds` after the verification
 * started (beside the health checks), so late errors are seen; a host's
 * consumers are counted together, once the longest of their windows has
 * passed.
 */
import { isJournal, logWhere, matchNoun } from "../lib/logCheck";
import { randomBytes } from "node:crypto";
import { splitBatch } from "../lib/scripts/common";
import { logAnchorOf, logAnchorScript, logCountBatchScript, logCountOf, type AnchorSource, type LogAnchor } from "../lib/scripts/logCount";
import { scriptChunks } from "./coalesce";
import { hostKeyRefusal, runAt, type RunResult } from "./exec";
import { checkAll } from "./health";
import { driftLog } from "./drift";
import { StepError, redact, sleep } from "./outcome";
import type { AuditSpec, HealthCheck, LogCheck, StepProps } from "./types";

/** Which rotation a step belongs to: its anchors are this update's, of this generation. */
export interface RunKey {
    stack: string;
    secret: string;
    generation: number;
}

const anchors = new Map<string, LogAnchor>();
const keyOf = (run: RunKey, consumer: string) => JSON.stringify([run.stack, run.secret, run.generation, consumer]);

/** The stack, secret and generation of a step, from its audit record. */
export function runKeyOf(props: Pick<StepProps, "audit">): RunKey | undefined {
    const r = props.audit?.record;
    if (r?.stack === undefined || r.secret === undefined || r.generation === undefined) return undefined;
    return { stack: String(r.stack), secret: String(r.secret), generation: Number(r.generation) };
}

/** The answer of a job that said nothing useful, in a few words. */
function whyNot(r: RunResult, at: HealthCheck["target"], timeoutSeconds: number): string {
    if (r.timedOut) return `no answer within ${timeoutSeconds}s`;
    return hostKeyRefusal(at, r.stderr) ?? (r.stderr.trim().split("\n").pop() || `exit ${r.code}`);
}

/** The log's anchor now (a file's size, a journal's cursor), or why it could not be had. */
async function anchorOf(c: Pick<HealthCheck, "target" | "timeoutSeconds">, log: AnchorSource): Promise<{ anchor: LogAnchor } | { problem: string }> {
    const r = await runAt(c.target, logAnchorScript(log), "", c.timeoutSeconds);
    const anchor = r.code === 0 && !r.timedOut ? logAnchorOf(r.stdout) : undefined;
    return anchor !== undefined ? { anchor } : { problem: whyNot(r, c.target, c.timeoutSeconds) };
}

/**
 * At the gate, after every consumer was found on the new secret: each
 * consumer log's anchor (a file's size, the cursor of its unit's last
 * journal entry), where its count after the revocation starts. A log that
 * cannot be read now gets no anchor (its count then starts with the
 * verification); the gate does not fail for it.
 */
export async function noteLogAnchors(props: Pick<StepProps, "drift" | "hosts" | "audit">, noted: ReadonlyMap<string, LogAnchor> = new Map()): Promise<void> {
    const run = runKeyOf(props);
    if (!run) return;
    await Promise.all(
        (props.drift ?? []).map(async (c) => {
            const log = driftLog(c);
            if (!log) return;
            // Noted by the drift check's own job (provider/drift.ts): no second question.
            const already = noted.get(c.consumer);
            if (already !== undefined) return void anchors.set(keyOf(run, c.consumer), already);
            const got = await anchorOf({ target: props.hosts![c.host], timeoutSeconds: c.timeoutSeconds }, log);
            if ("anchor" in got) anchors.set(keyOf(run, c.consumer), got.anchor);
        }),
    );
}

/** A consumer whose log is checked after the revocation. */
export type LoggedConsumer = HealthCheck & { consumer: string; logCheck: LogCheck };

/** One consumer's auth failures (or, for a journal without a pattern, errors) after the revocation. */
export interface AuthFailureCount {
    consumer: string;
    label: string;
    /** The log's file, or "the journal of unit ..." (lib/logCheck.ts logWhere). */
    where: string;
    /** "auth failure(s)" or "error(s)". */
    noun: string;
    journal: boolean;
    /** Absent when the log could not be searched (`problem` says why). */
    count?: number;
    problem?: string;
    /** From the gate's anchor ("revocation"), or from the start of this check (the gate ran in an earlier update). */
    since: "revocation" | "check";
}

/** A count's result from its `LOGCOUNT` answer, or why there is none. */
function countOf(base: Omit<AuthFailureCount, "count" | "problem">, r: RunResult, answer: string | undefined, c: LoggedConsumer): AuthFailureCount {
    const { count, grepStatus, journalStatus } = logCountOf(answer ?? "");
    if (count !== undefined) return { ...base, count };
    const why = answer === undefined && r.code === 0 && !r.timedOut ? "the host's answer was cut short" : whyNot(r, c.target, c.timeoutSeconds);
    return {
        ...base,
        problem: journalStatus
            ? `journalctl exit ${journalStatus}: ${why}`
            : grepStatus !== undefined
              ? `grep exit ${grepStatus}: is the pattern a valid extended regular expression?`
              : why,
    };
}

/**
 * Every logged consumer's count: its anchor (the gate's, else noted now),
 * then, once its window has passed, one job per host for all its consumers
 * (lib/scripts/logCount.ts logCountBatchScript). In the order given.
 */
async function countAll(logged: LoggedConsumer[], run: RunKey | undefined, started: number): Promise<AuthFailureCount[]> {
    const from = await Promise.all(
        logged.map(async (c) => {
            const anchor = run && anchors.get(keyOf(run, c.consumer));
            const base = { ...describe(c), since: anchor === undefined ? ("check" as const) : ("revocation" as const) };
            return { c, base, got: anchor !== undefined ? { anchor } : await anchorOf(c, c.logCheck) };
        }),
    );
    const results = new Map<LoggedConsumer, AuthFailureCount>();
    const byHost = new Map<string, { c: LoggedConsumer; base: Omit<AuthFailureCount, "count" | "problem">; anchor: LogAnchor }[]>();
    for (const { c, base, got } of from) {
        if ("problem" in got) results.set(c, { ...base, problem: got.problem });
        else {
            const host = JSON.stringify(c.target);
            byHost.set(host, [...(byHost.get(host) ?? []), { c, base, anchor: got.anchor }]);
        }
    }
    await Promise.all(
        [...byHost.values()].map(async (items) => {
            const wait = started + Math.max(...items.map((x) => x.c.logCheck.windowSeconds)) * 1000 - Date.now();
            if (wait > 0) await sleep(wait / 1000);
            const boundary = `COUNT-${randomBytes(8).toString("hex")}`;
            const build = (part: typeof items) =>
                logCountBatchScript(
                    part.map((x) => ({ source: x.c.logCheck, from: x.anchor })),
                    boundary,
                );
            for (const { part, script } of scriptChunks(items, build)) {
                const timeoutSeconds = Math.max(...part.map((x) => x.c.timeoutSeconds)) + Math.ceil(part.length / 50);
                const r = await runAt(part[0].c.target, script, "", timeoutSeconds);
                const answers = r.code === 0 && !r.timedOut ? splitBatch(r.stdout, part.length, boundary) : [];
                part.forEach((x, i) => results.set(x.c, countOf(x.base, r, answers[i], x.c)));
            }
        }),
    );
    return logged.map((c) => results.get(c)!);
}

/** What names a consumer's count in messages. */
const describe = (c: LoggedConsumer) => ({
    consumer: c.consumer,
    label: c.label,
    where: logWhere(c.logCheck),
    noun: matchNoun(c.logCheck),
    journal: isJournal(c.logCheck),
});

/** "3 auth failure(s) in /var/log/app.log since the revocation", or why it could not be counted. */
export function countLine(c: AuthFailureCount, windowSeconds?: number): string {
    if (c.count === undefined) return `${c.label}: could not count ${c.noun.replace("(s)", "s")} in ${c.where} (${c.problem})`;
    const since =
        c.since === "revocation"
            ? "since the revocation"
            : `since this check started${windowSeconds ? ` ${windowSeconds}s before` : ""} (the gate ran in an earlier update)`;
    return `${c.label}: ${c.count} ${c.noun} in ${c.where} ${since}`;
}

/** The audit line's fields: every consumer's count ("?": not searched), whose count started with the check, whose is of a unit's journal. */
export function authFailureFields(counts: AuthFailureCount[]): Record<string, string> {
    if (!counts.length) return {};
    const fromCheck = counts.filter((c) => c.since === "check").map((c) => c.consumer);
    const inJournal = counts.filter((c) => c.journal).map((c) => c.consumer);
    return {
        authFailures: counts.map((c) => `${c.consumer}=${c.count ?? "?"}`).join(" "),
        ...(fromCheck.length ? { authFailuresFromCheck: fromCheck.join(" ") } : {}),
        ...(inJournal.length ? { authFailuresInJournal: inJournal.join(" ") } : {}),
    };
}

/** The audit spec with these fields added to its record. */
export const withFields = (audit: AuditSpec | undefined, fields: Record<string, string> | undefined): AuditSpec | undefined =>
    audit && fields ? { ...audit, record: { ...audit.record, ...fields } } : audit;

/** A failed verification, with the counts its audit line carries. */
export class VerificationError extends StepError {
    constructor(
        message: string,
        readonly auditFields: Record<string, string>,
    ) {
        super(message);
    }
}

/**
 * After the revocation: every consumer healthy, and none with auth failures
 * in its log since the revocation. Returns the audit fields of the counts;
 * throws a VerificationError naming each consumer that failed either.
 */
export async function verifyConsumers(
    checks: (HealthCheck & { consumer?: string; logCheck?: LogCheck })[],
    title: string,
    run: RunKey | undefined,
    secrets: string[],
): Promise<Record<string, string>> {
    const started = Date.now();
    const logged = checks.filter((c): c is LoggedConsumer => Boolean(c.consumer && c.logCheck));
    const [health, counts] = await Promise.all([
        checkAll(checks, title, secrets).then(
            () => undefined,
            (e: Error) => e.message,
        ),
        countAll(logged, run, started).catch((e: Error) => logged.map((c): AuthFailureCount => ({ ...describe(c), problem: e.message, since: "check" }))),
    ]);
    const fields = authFailureFields(counts);
    const bad = counts.filter((c) => c.count !== 0);
    if (!health && !bad.length) return fields;
    const windowOf = (c: AuthFailureCount) => logged.find((l) => l.consumer === c.consumer)!.logCheck.windowSeconds;
    const nouns = [...new Set(bad.map((c) => c.noun.replace("(s)", "s")))].join(" or ");
    const logs = bad.length
        ? `${health ? "; and " : `${title}: `}${bad.length} of ${logged.length} consumers logged ${nouns} after the revocation: ${bad.map((c) => countLine(c, windowOf(c))).join("; ")}. ` +
          "Something there still uses the revoked secret (or its log could not be searched); nothing is undone: the new secret stays current and the old one revoked"
        : "";
    throw new VerificationError(redact(`${health ?? ""}${logs}`, secrets), fields);
}
