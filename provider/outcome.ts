/**
 * How a step reports: errors titled in the runbook's words with every secret
 * redacted, and one audit line per outcome.
 */
import * as os from "node:os";
import { appendChained } from "../adapters/auditChain";
import type { RunResult } from "./exec";
import type { AuditSpec } from "./types";

/** The NUL-terminated fields of a step's stdin. */
export function splitFields(stdin: string | undefined): string[] {
    if (!stdin) return [];
    return stdin.split("\0").slice(0, -1);
}

/** Removes every secret from text that may reach a diagnostic. */
export function redact(text: string, secrets: string[]): string {
    let out = text;
    const sorted = secrets.filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
    for (const s of sorted) {
        out = out.split(s).join("[secret]");
        for (const line of s.split(/\r?\n/)) {
            if (line.trim().length >= 8) out = out.split(line).join("[secret]");
        }
    }
    return out;
}

/** A step failure; its message is already redacted. */
export class StepError extends Error {
    override readonly name = "StepError";
}

/** What a failure says: a StepError's own message, anything else titled and redacted. */
export function failureMessage(e: unknown, title: string, secrets: string[]): string {
    return e instanceof StepError ? e.message : redact(`${title}: ${String((e as Error).message)}`, secrets);
}

/** "exited with code 1 on root@h:22 after 3 attempts: <last stderr lines>", redacted. */
export function failure(title: string, r: RunResult, opts: { where: string; timeoutSeconds: number; attempts?: number; secrets: string[] }): StepError {
    const why = r.timedOut ? `timed out after ${opts.timeoutSeconds}s` : `exited with code ${r.code}`;
    const tail = redact(r.stderr.trim().split("\n").slice(-5).join(" | "), opts.secrets);
    const tries = (opts.attempts ?? 1) > 1 ? ` after ${opts.attempts} attempts` : "";
    return new StepError(`${title}: ${why}${opts.where}${tries}${tail ? `: ${tail}` : ""}`);
}

/**
 * Who runs this step: the OS user at this machine (the provider runs as the
 * user who ran `pulumi up`), and whom they say they are (ROTATION_OPERATOR)
 * when set. The audit line's `operator` is the ceremony's verified requester
 * when there is one, otherwise that user.
 */
export function runBy(env: NodeJS.ProcessEnv = process.env): { runBy: string; operatorClaimed?: string } {
    let user: string;
    try {
        user = os.userInfo().username;
    } catch {
        user = env.USER ?? `uid ${process.getuid?.() ?? "?"}`;
    }
    const claimed = env.ROTATION_OPERATOR?.trim()
        .replace(/[\r\n]+/g, " ")
        .slice(0, 100);
    return { runBy: `${user}@${os.hostname()}`, ...(claimed ? { operatorClaimed: claimed } : {}) };
}

/** An audit line's who: `operator` is the ceremony's verified requester when there is one, else the OS user; then runBy() */
export function whoRan(requestedBy: unknown): { operator: string; runBy: string; operatorClaimed?: string } {
    const who = runBy();
    return { operator: typeof requestedBy === "string" ? requestedBy : who.runBy, ...who };
}

/**
 * The consumers each rotation moved in this run (one provider process
 * serves one update): the closing line counts these, not the configured ones.
 */
const moved = new Map<string, Set<string>>();
const rotationKey = (r: AuditSpec["record"]) => JSON.stringify([r.stack, r.secret, r.generation, r.mode]);
const ROLLED = new Set(["consumer-verified", "consumer-restored"]);
const CLOSING = new Set(["completed", "rolled-back"]);

/** One line of the hash-chained audit log (lib/auditChain.ts). */
export function appendAudit(audit: AuditSpec | undefined, outcome: "ok" | "failed", detail?: string): void {
    if (!audit) return;
    const r = audit.record;
    const key = rotationKey(r);
    if (outcome === "ok" && ROLLED.has(String(r.phase)) && r.consumer !== undefined) {
        if (!moved.has(key)) moved.set(key, new Set());
        moved.get(key)!.add(String(r.consumer));
    }
    // The closing line: how many consumers this run moved (a resume moves only those left).
    const count = CLOSING.has(String(r.phase)) ? { consumers: moved.get(key)?.size ?? 0 } : {};
    appendChained(audit.path, { time: new Date().toISOString(), ...r, ...whoRan(r.requestedBy), ...count, outcome, ...(detail ? { detail } : {}) });
}

/** The audit phase of undoing a step: a grant withdrawn, a staged copy removed. */
export function undoPhase(phase: string | number | undefined): string {
    return phase === "granted" ? "withdrawn" : phase === "staged" ? "unstaged" : `${phase}-undone`;
}

export const sleep = (seconds: number) => new Promise((r) => setTimeout(r, seconds * 1000));
