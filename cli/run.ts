/**
 * One update of a stack as the console runs it (start, resume, rollback):
 * `up` through the Automation API with the engine's events driving the live
 * view, then the verdict (which exit code, what to do next), the report and
 * the `--json` document.
 */
import * as path from "node:path";
import type { Stack } from "./pulumiCli";
import { describeProblems } from "../provider/preflight";
import { LiveView, RunTracker, plainLine, renderFrame } from "./progress";
import { writeReport } from "./report";
import { authFailureRows, type RunOutcome, type RunRecord, type RunSecret } from "./runRecord";
import { readLastCheck } from "./common";
import { stackLocks } from "./backend";
import { LockedError, PROJECT } from "./stack";
import { type FileCopy, restoreFile } from "./stackFile";
import { readAuditLog, type AuditLine } from "../adapters/auditLog";
import { appendChained } from "../adapters/auditChain";
import { whoRan } from "../provider/outcome";
import { type RunNotify, announceVerdict, watchRun } from "./notify";
import { AWAITING_PERSON } from "../sources/manual";
import { onCurrent } from "../lib/drift";
import { mark } from "./trace";

/** The exit codes of bin/rotate, as docs/operating.md and --help give them. */
export const EXIT = {
    done: 0,
    /** A step failed before any revocation of the failed secrets started: the old secret still works everywhere. */
    failed: 1,
    usage: 2,
    refused: 3,
    locked: 4,
    /** A step failed after a secret's revocation started: roll forward (resume), rollback is refused. */
    failedAfterRevocation: 5,
    /** The ceremony: a request was recorded; it runs once a second person approves it (bin/rotate approve). */
    awaitingApproval: 6,
    /** A step only a person can do (a manual source's grant, revocation or withdrawal) is waiting: do it, then bin/rotate confirm. */
    awaitingPerson: 7,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0  done (for due: a secret is due; for check: every consumer current)
  1  failed before revocation: nothing of the failed secrets was revoked, the old secret still works
     (for due: nothing is due; for check: drift found)
  2  usage or config error: nothing was changed
  3  refused (a rollback after the revocation started, a closed window, a failed pre-flight, an approval
     that does not check out): nothing was changed
  4  locked: another update holds the stack, or a killed run left its lock (bin/rotate unlock)
  5  failed after a revocation started: fix the cause, then resume (roll forward)
  6  awaiting approval: the ceremony's request was recorded, nothing was rotated (bin/rotate approve)
  7  awaiting a person: a grant, revocation or withdrawal only a person can do (a manual source) stopped the
     rotation; do it, then bin/rotate confirm --stack S --secret X --yes, which records it and resumes`;

export interface RunOptions {
    stack: Stack;
    command: RunRecord["command"];
    secrets: RunSecret[];
    /** What the run does, in words ("rotation of app-redis 2 -> 3"). */
    what: string;
    auditLog: string;
    /** How progress is shown: redrawn in place, timestamped lines, or Pulumi's own output. */
    view: "live" | "plain" | "engine";
    /** Where progress lines go (stderr when stdout carries --json). */
    out: NodeJS.WriteStream;
    /** Step URNs to run again although they succeeded (resume --redeploy: a consumer reverted behind the rotation's back). */
    replace?: string[];
    /** The generation whose revocation started, per secret (for the verdict of a failure). */
    committed: (secret: string) => Promise<number | undefined>;
    /** The stack file before this command wrote it (start, rollback): put back if the engine runs no step. */
    written?: FileCopy;
    /** Who is told of the run (rotation:notify); its deliveries go into the record and the report. */
    notify?: RunNotify;
}

export interface RunResult {
    record: RunRecord;
    report: string;
}

const compact = (ms: number) =>
    new Date(ms)
        .toISOString()
        .replace(/[-:]/g, "")
        .replace(/\.\d+Z$/, "Z");

/** The audit log's lines this run appended for the stack. */
function auditOfRun(file: string, stack: string, since: number): AuditLine[] {
    return readAuditLog(file).filter((r) => r.stack === stack && Date.parse(String(r.time)) >= since - 1000);
}

/** The stack's last drift check (cli/check.ts keeps it), for the report. */
function lastCheckOf(stack: string): Pick<RunRecord, "lastCheck"> {
    const c = readLastCheck(stack);
    return c
        ? {
              lastCheck: {
                  time: c.time,
                  ok: c.ok,
                  off: c.consumers.filter((x) => !onCurrent(x.holds)).map(({ secret, consumer, holds }) => ({ secret, consumer, holds })),
              },
          }
        : {};
}

/**
 * After an update that ran no step: the stack file goes back to what it was
 * before this command wrote it, so the refusal changed nothing, not even the
 * checkout. Returns how to say so.
 */
function putBackStackFile(o: Pick<RunOptions, "written" | "command">): string {
    if (!o.written) return "nothing was changed";
    const rel = path.relative(PROJECT, o.written.file);
    try {
        restoreFile(o.written);
        return `nothing was changed (${rel} is as it was before this ${o.command})`;
    } catch (e) {
        return `nothing ran, but ${rel} still holds what this ${o.command} wrote: putting it back failed (${(e as Error).message}); see git diff ${rel}`;
    }
}

/**
 * The audit line of a secret whose run failed: how many consumers this run
 * moved and which are not on the new generation yet, and who ran it. (A
 * plain `pulumi up` has each consumer's own line; this adds the tally.)
 */
function recordFailedRun(o: RunOptions, steps: RunRecord["steps"], name: string): void {
    const secret = o.secrets.find((x) => x.name === name);
    if (!secret) return;
    const rollouts = steps.filter((x) => x.secret === name && x.phase === "rollout" && x.consumer !== undefined);
    const moved = rollouts.filter((x) => x.outcome === "ok").length;
    const notMoved = rollouts.filter((x) => x.outcome !== "ok" && x.outcome !== "unchanged").map((x) => x.consumer!);
    const first = steps.find((x) => x.secret === name && x.outcome === "failed");
    appendChained(o.auditLog, {
        time: new Date().toISOString(),
        stack: o.stack.name,
        secret: name,
        generation: secret.generation,
        mode: secret.mode,
        phase: "run-failed",
        reason: secret.reason ?? "scheduled",
        consumers: moved,
        ...(notMoved.length ? { notUpdated: notMoved.join(", ") } : {}),
        ...whoRan(secret.approval?.requester),
        outcome: "failed",
        ...(first ? { detail: `${first.consumer ? `consumer ${first.consumer}` : first.step}: ${(first.error ?? "failed").split("\n")[0]}` } : {}),
    });
}

export async function runUpdate(o: RunOptions): Promise<RunResult> {
    const stack = o.stack.name;
    const started = Date.now();
    const tracker = new RunTracker(o.secrets);
    const title = () => `rotate: stack ${stack}: ${o.what}, ${((Date.now() - started) / 1000).toFixed(0)}s`;
    let live: LiveView | undefined;
    if (o.view === "live") {
        live = new LiveView(o.out, () => renderFrame(tracker, title(), Date.now(), o.out.rows || 40, o.out.columns || 120));
        live.start();
    } else if (o.view === "plain") {
        o.out.write(`${new Date(started).toISOString()} rotate: stack ${stack}: ${o.what}\n`);
        tracker.onChange((r, change) => {
            if (r.outcome !== "unchanged") o.out.write(`${plainLine(r, change, Date.now())}\n`);
        });
    }
    const escalated = o.notify ? watchRun(o.notify, tracker, stack, o.command) : new Set<string>();
    // Ctrl-C reaches the engine too (same process group), which stops starting steps and lets running ones end.
    const onInt = () => o.out.write(`\nrotate: interrupted: the engine lets running steps finish and starts no new ones\n`);
    process.on("SIGINT", onInt);
    let engineError = "";
    let ok = true;
    mark("before the update (progress view)");
    try {
        await o.stack.up({
            onEvent: (e) => tracker.handle(e),
            continueOnError: true,
            ...(o.replace?.length ? { replace: o.replace } : {}),
            color: o.view === "engine" ? "auto" : "never",
            ...(o.view === "engine" ? { onOutput: (s: string) => o.out.write(s) } : {}),
        });
    } catch (e) {
        ok = false;
        engineError = (e as Error).message;
    } finally {
        process.off("SIGINT", onInt);
        tracker.finish();
        live?.stop();
        mark("after the update (last events read)");
    }
    // The engine refused before running a step: another run's lock (taken before the program starts), the program refusing the config.
    const locked = !ok && /currently locked|another update is currently in progress/i.test(engineError);
    // Or a pre-flight step failed and nothing else ran: the rotation was refused before it began.
    const preflight = tracker.preflight();
    const refused = !ok && !locked && preflight !== undefined && !preflight.ok && tracker.ranOnlyPreflight();
    const ranNothing = locked || (!ok && tracker.operations === 0) || refused;
    const kept = ranNothing ? putBackStackFile(o) : undefined;
    if (locked) {
        const [lock] = await stackLocks(stack).catch(() => []);
        const holder = lock
            ? `locked by process ${lock.pid} on ${lock.hostname} since ${lock.timestamp ?? "an unknown time"}${lock.alive ? "" : ", which no longer runs"}`
            : "locked by another update";
        const next =
            lock && !lock.alive
                ? `Run: bin/rotate unlock --stack ${stack}, then ${o.written ? `run bin/rotate ${o.command} again` : "resume"}`
                : `Wait for it to finish, then run bin/rotate ${o.command} again`;
        await o.notify?.notifier.settle();
        throw new LockedError(`stack ${stack} is ${holder}; ${kept}. ${next}`);
    }

    // Steps only a person can do stopped the run, and nothing else failed: its own exit code, and what to do.
    const waiting = tracker.steps.filter((s) => s.outcome === "failed" && s.error?.includes(AWAITING_PERSON));
    // (The delete guard keeping an older generation's grant until this rotation completes is no failure of its own.)
    const keptByGuard = (s: (typeof waiting)[number]) => s.op === "delete" && /^kept "/.test(s.error ?? "");
    const awaiting = !ok && waiting.length > 0 && tracker.steps.every((s) => s.outcome !== "failed" || waiting.includes(s) || keptByGuard(s));
    const failed = awaiting ? [] : tracker.failedSecrets();
    let exitCode: number = ok ? EXIT.done : awaiting ? EXIT.awaitingPerson : EXIT.failed;
    const next: string[] = awaiting ? waiting.map((s) => `${s.secret}: ${s.error!.slice(s.error!.indexOf(AWAITING_PERSON))}`) : [];
    const errors = [...tracker.errors];
    const afterRevocation: string[] = [];
    if (!ok && !awaiting) {
        if (!failed.length) {
            // The engine failed before any step: the program refused the config, say.
            const lines = engineError
                .split("\n")
                .map((l) => l.trim())
                .filter((l) => l && !/^(code|stdout|stderr|err\?):/.test(l));
            if (!errors.length) errors.push(...lines.slice(-6));
            if (errors.some((l) => /Invalid rotation config/.test(l))) exitCode = EXIT.usage;
            else if (errors.some((l) => /refused/.test(l))) exitCode = EXIT.refused;
        }
        for (const s of failed) {
            const secret = o.secrets.find((x) => x.name === s);
            const committed = secret ? await o.committed(s).catch(() => undefined) : undefined;
            if (secret && secret.mode === "rotate" && committed !== undefined && committed >= secret.generation) {
                exitCode = EXIT.failedAfterRevocation;
                afterRevocation.push(s);
                next.push(`${s}: its revocation has started, so roll forward: fix the cause above, then bin/rotate resume --stack ${stack} --yes`);
            } else {
                next.push(`${s}: nothing of it was revoked and the old secret still works. Fix the cause above, then bin/rotate resume --stack ${stack} --yes`);
                if (secret?.mode === "rotate") next.push(`${s}: or take it back: bin/rotate rollback --stack ${stack} --secret ${s} --yes`);
            }
        }
        if (!failed.length && exitCode === EXIT.failed) next.push(`fix the cause above, then bin/rotate resume --stack ${stack} --yes`);
        // With the stack file put back there is nothing to resume: the command itself runs again.
        if (ranNothing && o.written) next.splice(0, next.length, `${kept}: fix the cause above, then run bin/rotate ${o.command} again`);
    }
    if (refused) {
        // Exit 3 as a refusal: the problems are the run's errors, not failed rotations to resume or roll back.
        exitCode = EXIT.refused;
        errors.splice(0, errors.length, `pre-flight found ${preflight.problems.length} problem(s); ${kept}:`, ...describeProblems(preflight.problems));
        next.splice(
            0,
            next.length,
            `fix them, then run bin/rotate ${o.command} again (bin/rotate preflight --stack ${stack} checks without changing anything)`,
        );
    }
    const outcome: RunOutcome = ok ? (o.command === "rollback" ? "rolled-back" : "succeeded") : refused ? "refused" : awaiting ? "awaiting-person" : "failed";
    if (!ranNothing && !refused) for (const s of failed) recordFailedRun(o, tracker.steps, s);
    const ended = Date.now();
    mark("verdict");
    // The rotation is over; deliveries still under way get a bounded time (rotation:notify.delivery.settleSeconds), their failures reach the audit log.
    let notifications: RunRecord["notifications"];
    if (o.notify) {
        announceVerdict(o.notify, { secrets: o.secrets, steps: tracker.steps, stack, command: o.command, next }, afterRevocation, escalated);
        notifications = await o.notify.notifier.settle();
    }
    mark("notifications settled");
    const audit = auditOfRun(o.auditLog, stack, started);
    const authFailures = authFailureRows(audit);
    const record: RunRecord = {
        id: `${stack}-${compact(started)}-${o.command}`,
        stack,
        command: o.command,
        started,
        ended,
        outcome,
        exitCode,
        secrets: o.secrets,
        steps: tracker.steps,
        audit,
        next,
        errors,
        ...(preflight ? { preflight } : {}),
        ...lastCheckOf(stack),
        ...(authFailures.length ? { authFailures } : {}),
        ...(notifications?.length ? { notifications } : {}),
    };
    mark("audit log read, run record");
    const report = writeReport(record, path.join(PROJECT, ".state", "reports"));
    mark("report written");
    return { record, report };
}
