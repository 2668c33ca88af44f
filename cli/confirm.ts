/**
 * `bin/rotate confirm`: a person says they did a step only a person can do
 * (a manual source's grant, revocation or withdrawal, sources/manual.ts).
 * The confirmation is one audit line (who, when, which step, which
 * generation), which the waiting step reads when the run resumes; then the
 * stack resumes as `bin/rotate resume` does.
 */
import { appendChained } from "../adapters/auditChain";
import { readAuditLog, type AuditLine } from "../adapters/auditLog";
import { runBy } from "../provider/outcome";
import { AWAITING_PERSON, CONFIRMED_STEPS, type ConfirmedStep } from "../sources/manual";
import { assertUnlocked } from "./backend";
import { resume } from "./change";
import { type Mutating, auditLogOf, load, pick, printJson, say } from "./common";
import { EXIT } from "./run";
import { UsageError } from "./stack";

export const STEPS = Object.values(CONFIRMED_STEPS);

/** The step of `secret` that waits for a person, from its audit lines: the last one refused as waiting and not confirmed since. */
export function waitingStep(lines: AuditLine[], stack: string, secret: string): { step: ConfirmedStep; generation: number } | undefined {
    let waiting: { step: ConfirmedStep; generation: number } | undefined;
    for (const l of lines) {
        if (l.stack !== stack || l.secret !== secret || typeof l.generation !== "number") continue;
        const step = CONFIRMED_STEPS[l.phase as keyof typeof CONFIRMED_STEPS];
        if (step && l.outcome === "failed" && String(l.detail ?? "").includes(AWAITING_PERSON)) waiting = { step, generation: l.generation };
        else if (waiting && l.phase === "confirmed" && l.step === waiting.step && l.generation === waiting.generation) waiting = undefined;
        else if (waiting && step === waiting.step && l.generation === waiting.generation && l.outcome === "ok") waiting = undefined;
    }
    return waiting;
}

export async function confirm(o: Mutating & { secret: string; step?: ConfirmedStep; note?: string }): Promise<number> {
    const { config } = await load(o);
    const { env } = config;
    pick(env, o.stack, [o.secret]);
    const s = env.secrets[o.secret];
    if (s.source.kind !== "manual")
        throw new UsageError(`confirm: ${o.secret}'s source is kind "${s.source.kind}": only the steps of a manual source are done and confirmed by a person`);
    if (o.note !== undefined && !/^[^\r\n]{1,200}$/.test(o.note)) throw new UsageError("--note is one line of at most 200 characters");
    const log = auditLogOf(env);
    const waiting = waitingStep(readAuditLog(log, { mentioning: o.secret }), o.stack, o.secret);
    const step = o.step ?? waiting?.step;
    if (!step) {
        throw new UsageError(
            `confirm: nothing of ${o.secret} waits for a person (stack ${o.stack}, generation ${s.generation}); to record a step anyway, name it: --step ${STEPS.join("|")}`,
        );
    }
    const generation = waiting && waiting.step === step ? waiting.generation : s.generation;
    const who = runBy();
    const by = who.operatorClaimed ? `${who.operatorClaimed} (${who.runBy})` : who.runBy;
    if (!o.yes) {
        say(
            o,
            `rotate: would record that the ${step} of ${o.secret} generation ${generation} was done (by ${by}), then resume stack ${o.stack}; nothing was changed. Re-run with --yes`,
        );
        if (o.json) printJson({ stack: o.stack, command: "confirm", outcome: "not-confirmed", exitCode: 0, secret: o.secret, step, generation });
        return EXIT.done;
    }
    await assertUnlocked(o.stack);
    appendChained(log, {
        time: new Date().toISOString(),
        stack: o.stack,
        secret: o.secret,
        generation,
        mode: s.mode,
        phase: "confirmed",
        step,
        confirmedBy: by,
        ...(o.note ? { note: o.note } : {}),
        operator: who.runBy,
        ...who,
        outcome: "ok",
    });
    say(o, `rotate: recorded: the ${step} of ${o.secret} generation ${generation} was done, confirmed by ${by}; resuming stack ${o.stack}`);
    return resume({ ...o, secret: o.secret, redeploy: undefined });
}
