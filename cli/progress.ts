/**
 * Live progress of a run from the engine's events: which step of which
 * secret started, ended or failed, mapped back to the plan (lib/plan.ts).
 * On a terminal the view is redrawn in place (a header per secret with its
 * phases, one line per consumer); otherwise each change is one timestamped
 * line, for CI and log files. The tracker's records feed the report.
 *
 * The in-place redraw is a few ANSI sequences (cursor up, clear below):
 * log-update, the usual library, is ESM-only from version 5 and needs Node
 * 22 from version 7, and this project runs on Node 20 as CommonJS.
 */
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { stepResourceName, type PlanStep } from "../lib/plan";
import { problemsOfStepError } from "../provider/preflight";
import { STEP_TYPE } from "../provider/types";
import { type PreflightResult, type RunSecret, type StepOutcome, type StepRecord, planOfRun } from "./runRecord";

/** The resource name at the end of a URN (`urn:pulumi:stack::project::type$type::name`). */
export const urnName = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

/** Every plan step of the run's secrets, keyed by its step resource's name (a batch's resource stands for each of its consumers). */
export function planIndex(secrets: RunSecret[]): Map<string, StepRecord[]> {
    const index = new Map<string, StepRecord[]>();
    for (const s of secrets) {
        const plan = planOfRun(s);
        for (const step of plan) {
            const resource = stepResourceName(s.name, step, s.generation, s.mode);
            const record: StepRecord = {
                secret: s.name,
                step: step.id,
                phase: step.phase,
                ...(step.consumer ? { consumer: step.consumer } : {}),
                ...(step.wave ? { wave: step.wave } : {}),
                ...(step.batch ? { batch: step.batch } : {}),
                resource,
                outcome: "pending",
            };
            const of = index.get(resource);
            if (of) of.push(record);
            else index.set(resource, [record]);
        }
    }
    return index;
}

/** Which secret a resource outside the plan belongs to: the longest secret name it starts with. */
function ownerOf(resource: string, secrets: RunSecret[]): string | undefined {
    return secrets
        .map((s) => s.name)
        .filter((n) => resource.startsWith(`${n}-`))
        .sort((a, b) => b.length - a.length)[0];
}

/**
 * A failed batch's error, consumer by consumer (provider/batch.ts): the line
 * that names each consumer that failed ("<secret> → consumer <name>: ...").
 * None named: the batch failed as a whole.
 */
export function batchErrors(error: string, records: StepRecord[]): Map<StepRecord, string> {
    const lines = error.split("\n");
    const out = new Map<StepRecord, string>();
    for (const r of records) {
        const mine = lines.filter((l) => l.includes(`→ consumer ${r.consumer}:`));
        if (mine.length) out.set(r, stepError(mine.join("\n")));
    }
    return out;
}

export type ChangeListener = (step: StepRecord, change: "started" | "ended") => void;

/** The run's steps as the engine events describe them. */
export class RunTracker {
    readonly steps: StepRecord[];
    readonly errors: string[] = [];
    /** Step operations the engine started, of any secret (a resume runs others' too): 0 means the update ran nothing. */
    operations = 0;
    private readonly byResource: Map<string, StepRecord[]>;
    private readonly listeners: ChangeListener[] = [];

    constructor(
        readonly secrets: RunSecret[],
        private readonly now: () => number = Date.now,
    ) {
        this.byResource = planIndex(secrets);
        this.steps = [...this.byResource.values()].flat();
    }

    onChange(l: ChangeListener): void {
        this.listeners.push(l);
    }

    /** The records of a step resource (several for a batch), created for steps outside the plan (a withdrawal of an older grant, say). */
    private records(resource: string): StepRecord[] {
        const rs = this.byResource.get(resource);
        if (rs) return rs;
        const secret = ownerOf(resource, this.secrets);
        if (!secret) return [];
        const r: StepRecord = { secret, step: resource.slice(secret.length + 1), phase: "other", resource, outcome: "pending" };
        this.byResource.set(resource, [r]);
        this.steps.push(r);
        return [r];
    }

    handle(e: EngineEvent): void {
        const at = this.now();
        const pre = e.resourcePreEvent?.metadata;
        const done = e.resOutputsEvent?.metadata;
        const failed = e.resOpFailedEvent?.metadata;
        const diag = e.diagnosticEvent;
        if (pre && pre.type === STEP_TYPE) {
            if (pre.op !== "same") this.operations++;
            for (const r of this.records(urnName(pre.urn))) {
                // A step the engine has nothing to do for is "unchanged", not started.
                if (pre.op !== "same") {
                    Object.assign(r, { op: pre.op, start: at, outcome: "running" as StepOutcome });
                    this.emit(r, "started");
                } else r.op = pre.op;
            }
        } else if (done && done.type === STEP_TYPE) {
            for (const r of this.records(urnName(done.urn))) {
                if (r.outcome === "failed") continue;
                Object.assign(r, { op: done.op, end: at, outcome: (done.op === "same" ? "unchanged" : "ok") as StepOutcome });
                this.emit(r, "ended");
            }
        } else if (failed && failed.type === STEP_TYPE) {
            // Announced once: the step's error (a diagnostic event) usually came first.
            for (const r of this.records(urnName(failed.urn))) {
                if (r.outcome === "failed" || (r.batch && r.outcome === "ok")) continue;
                Object.assign(r, { end: at, outcome: "failed" as StepOutcome });
                this.emit(r, "ended");
            }
        } else if (diag && diag.severity === "error") {
            const message = diag.message.replace(/\u001b\[[0-9;]*m/g, "").trim();
            const rs = diag.urn ? this.records(urnName(diag.urn)) : [];
            const perConsumer = rs.length && rs[0].batch ? batchErrors(message, rs) : undefined;
            for (const r of rs) {
                // A batch's consumer its error does not name is done (the batch kept it, provider/batch.ts).
                if (perConsumer?.size && !perConsumer.has(r)) {
                    if (r.outcome === "running") {
                        Object.assign(r, { end: at, outcome: "ok" as StepOutcome });
                        this.emit(r, "ended");
                    }
                    continue;
                }
                // The engine's error line for a failed step: keep the step provider's message only.
                const first = r.error === undefined && r.outcome !== "failed";
                // A pre-flight's error keeps its lines: one problem a line, read back by preflight().
                const error = perConsumer?.get(r) ?? stepError(message, r.phase === "preflight");
                r.error = r.error ? `${r.error} ${error}` : error;
                if (r.outcome !== "failed") Object.assign(r, { end: at, outcome: "failed" as StepOutcome });
                if (first) this.emit(r, "ended");
            }
            if (!rs.length) {
                // The engine's own errors; its closing "update failed" says nothing the exit code does not.
                const own = message.replace(/^error:\s*/i, "");
                if (own && !/^update failed$/i.test(own)) this.errors.push(own);
            }
        }
    }

    private emit(r: StepRecord, change: "started" | "ended"): void {
        for (const l of this.listeners) l(r, change);
    }

    /** Steps that were running when the run ended (killed, cancelled) count as failed without an error of their own. */
    finish(): void {
        const at = this.now();
        for (const r of this.steps)
            if (r.outcome === "running")
                Object.assign(r, { end: at, outcome: "failed" as StepOutcome, error: r.error ?? "the run ended while this step was running" });
    }

    /**
     * The run's pre-flight, from its pre-flight steps that ran (a generation
     * they had not checked yet): how long, how many consumers, every problem.
     */
    preflight(): PreflightResult | undefined {
        const ran = this.steps.filter((s) => s.phase === "preflight" && (s.outcome === "ok" || s.outcome === "failed"));
        if (!ran.length) return undefined;
        const problems = ran
            .filter((s) => s.outcome === "failed")
            .flatMap((s) => {
                const named = problemsOfStepError(s.secret, s.error ?? "");
                return named.length ? named : [{ secret: s.secret, at: "pre-flight", problem: s.error ?? "failed" }];
            });
        const seconds = (Math.max(...ran.map((s) => s.end ?? 0)) - Math.min(...ran.map((s) => s.start ?? 0))) / 1000;
        const consumers = this.secrets.filter((x) => ran.some((s) => s.secret === x.name)).reduce((n, x) => n + x.consumers.length, 0);
        return { ok: !problems.length, seconds, consumers, problems };
    }

    /** Whether the engine ran no step but pre-flights, and deletes the delete guard refused (nothing taken back). */
    ranOnlyPreflight(): boolean {
        return this.steps.every(
            (s) =>
                s.outcome === "pending" ||
                s.outcome === "unchanged" ||
                s.phase === "preflight" ||
                (s.op === "delete" && s.outcome === "failed" && /^kept "/.test(s.error ?? "")),
        );
    }

    failedSecrets(): string[] {
        return [...new Set(this.steps.filter((s) => s.outcome === "failed").map((s) => s.secret))];
    }
}

/** "error: <provider message>" → the provider's message, without the engine's wrapping; its lines joined, or kept. */
export function stepError(message: string, keepLines = false): string {
    return message
        .replace(/^error:\s*/i, "")
        .replace(/^(update|create|delete|updating|creating|deleting) failed:?\s*/i, "")
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean)
        .join(keepLines ? "\n" : " ");
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** What one consumer's line says: its step and where it is. */
function consumerState(r: StepRecord, now: number): string {
    switch (r.outcome) {
        case "pending":
            return "waiting";
        case "running":
            return `${r.op === "delete" ? "withdrawing" : "deploy, reload, health, log check"} ${seconds(now - (r.start ?? now))}`;
        case "ok":
            return `ok ${seconds((r.end ?? now) - (r.start ?? now))}`;
        case "unchanged":
            return "unchanged (done before)";
        case "failed":
            return `FAILED ${seconds((r.end ?? now) - (r.start ?? now))}`;
    }
}

const PHASE_LABEL: Record<string, string> = {
    preflight: "pre-flight",
    "read-previous": "read",
    generate: "generate",
    stage: "stage",
    grant: "grant",
    rollout: "rollout",
    guard: "guard",
    gate: "gate",
    revoke: "revoke",
    promote: "promote",
    verify: "verify",
    audit: "audit",
};

/** One secret's phases in plan order, each marked done (+), running (>), failed (!) or to come (.). */
function phaseLine(steps: StepRecord[]): string {
    const phases: string[] = [];
    for (const s of steps) if (s.phase !== "other" && !phases.includes(s.phase)) phases.push(s.phase);
    return phases
        .map((p) => {
            const of = steps.filter((s) => s.phase === p);
            const mark = of.some((s) => s.outcome === "failed")
                ? "!"
                : of.some((s) => s.outcome === "running")
                  ? ">"
                  : of.every((s) => s.outcome === "ok" || s.outcome === "unchanged")
                    ? "+"
                    : ".";
            const count = p === "rollout" ? ` ${of.filter((s) => s.outcome === "ok" || s.outcome === "unchanged").length}/${of.length}` : "";
            return `${mark}${PHASE_LABEL[p] ?? p}${count}`;
        })
        .join(" ");
}

/** The terminal view: a header per secret, then its consumers (summarized when they do not fit). */
export function renderFrame(tracker: RunTracker, title: string, now: number, rows: number, cols: number): string[] {
    const out: string[] = [title];
    const perSecret = Math.max(3, Math.floor((rows - 2) / Math.max(1, tracker.secrets.length)) - 2);
    for (const s of tracker.secrets) {
        const steps = tracker.steps.filter((r) => r.secret === s.name);
        // A secret the run found finished (a resume's others) is left out.
        if (steps.length && steps.every((r) => r.outcome === "unchanged")) continue;
        out.push(`${s.name} ${s.mode === "rollback" ? `roll back g${s.generation}` : `g${s.generation - 1} -> g${s.generation}`}: ${phaseLine(steps)}`);
        const consumers = steps.filter((r) => r.phase === "rollout");
        const width = Math.max(8, ...consumers.map((c) => (c.consumer ?? "").length));
        const shown =
            consumers.length <= perSecret ? consumers : consumers.filter((c) => c.outcome === "failed" || c.outcome === "running").slice(0, perSecret - 1);
        for (const c of shown)
            out.push(`  ${(c.consumer ?? "").padEnd(width)}  ${c.wave ? `w${c.wave} ` : ""}${consumerState(c, now)}${c.error ? `: ${c.error}` : ""}`);
        if (shown.length < consumers.length) {
            const count = (o: StepOutcome) => consumers.filter((c) => c.outcome === o).length;
            out.push(
                `  ${consumers.length} consumers: ${count("ok") + count("unchanged")} done, ${count("running")} running, ${count("pending")} waiting, ${count("failed")} failed`,
            );
        }
        // A pre-flight's error is a line per problem: each is a line of the frame (the redraw counts lines).
        for (const r of steps.filter((x) => x.phase !== "rollout" && x.outcome === "failed"))
            out.push(...`  ${r.step} FAILED: ${r.error ?? "(no message)"}`.split("\n").map((l, i) => (i ? `    ${l}` : l)));
    }
    return out.map((l) => (l.length > cols ? `${l.slice(0, cols - 1)}…` : l));
}

/** Redraws a block of lines in place on a terminal. */
export class LiveView {
    private drawn = 0;
    private timer?: NodeJS.Timeout;

    constructor(
        private readonly out: NodeJS.WriteStream,
        private readonly frame: () => string[],
    ) {}

    start(intervalMs = 250): void {
        this.out.write("\u001b[?25l"); // hide the cursor while redrawing
        this.draw();
        this.timer = setInterval(() => this.draw(), intervalMs);
    }

    draw(): void {
        const lines = this.frame();
        const up = this.drawn ? `\u001b[${this.drawn}A\r` : "";
        this.out.write(`${up}\u001b[0J${lines.join("\n")}\n`);
        this.drawn = lines.length;
    }

    stop(): void {
        if (this.timer) clearInterval(this.timer);
        this.draw();
        this.out.write("\u001b[?25h");
    }
}

/** The plain view: one timestamped line per change. */
export function plainLine(r: StepRecord, change: "started" | "ended", at: number): string {
    const what = `${r.secret} ${r.consumer ? `consumer ${r.consumer}` : r.phase === "other" ? `${r.step} (${r.op ?? "step"})` : r.phase === "verify" ? r.step : r.phase}`;
    const verb =
        change === "started"
            ? "started"
            : r.outcome === "failed"
              ? `FAILED${r.error ? `: ${r.error}` : ""}`
              : `${r.outcome} in ${seconds((r.end ?? at) - (r.start ?? at))}`;
    return `${new Date(at).toISOString()} ${what} ${verb}`;
}

export type { PlanStep };
