// The engine's event log (`pulumi up --event-log`) read as the tests and
// the benchmark ask it: when a step started and ended, which steps changed.
// Pure: the file is read by workspace.ts.

import { STEP_TYPE } from "../../provider/types";
import { rolloutResourceNames, rotationPlan } from "../../lib/plan";
import type { BatchSetting } from "../../lib/waves";

export interface EngineEvent {
    sequence: number;
    resourcePreEvent?: { metadata: { urn: string; op: string; type: string } };
    resOutputsEvent?: { metadata: { urn: string; op: string; type: string } };
    resOpFailedEvent?: { metadata: { urn: string; op: string; type: string } };
    diagnosticEvent?: { message: string; severity: string; urn?: string };
    [k: string]: unknown;
}

/** The events of an event log's text, in sequence order; a half-written last line is skipped. */
export function parseEvents(text: string): EngineEvent[] {
    const out: EngineEvent[] = [];
    for (const line of text.split("\n")) {
        if (!line.trim()) continue;
        try {
            out.push(JSON.parse(line));
        } catch {
            // the last line may be half-written while the engine runs
        }
    }
    return out.sort((a, b) => a.sequence - b.sequence);
}

/** The resource name at the end of a URN. */
export const urnName = (urn: string) => urn.split("::").pop()!;

/** The operations in which a step's command runs (a new generation updates steps in place). */
const RUNS = new Set(["create", "create-replacement", "update"]);
const isStep = (type: string) => type === STEP_TYPE;

/** Sequence numbers of a step's start and successful end in one update. */
export function stepTimeline(events: EngineEvent[], name: string): { start?: number; end?: number; failed?: number } {
    const t: { start?: number; end?: number; failed?: number } = {};
    for (const e of events) {
        const pre = e.resourcePreEvent?.metadata;
        const outs = e.resOutputsEvent?.metadata;
        const fail = e.resOpFailedEvent?.metadata;
        if (pre && urnName(pre.urn) === name && isStep(pre.type) && RUNS.has(pre.op) && t.start === undefined) t.start = e.sequence;
        if (outs && urnName(outs.urn) === name && isStep(outs.type) && RUNS.has(outs.op) && t.end === undefined) t.end = e.sequence;
        if (fail && urnName(fail.urn) === name && isStep(fail.type)) t.failed = e.sequence;
    }
    return t;
}

/** Names of rotation steps that did anything (not "same") in one update. */
export function changedSteps(events: EngineEvent[]): string[] {
    return events
        .map((e) => e.resourcePreEvent?.metadata)
        .filter((m): m is { urn: string; op: string; type: string } => !!m && isStep(m.type) && m.op !== "same")
        .map((m) => `${urnName(m.urn)}:${m.op}`);
}

/**
 * The step resource that rolls out each consumer of a rotation (a resource
 * of its own, or its batch's, lib/plan.ts), as the program names them.
 */
export function rolloutResources(secret: string, consumers: string[], batch: BatchSetting = "auto"): Map<string, string> {
    return rolloutResourceNames(secret, rotationPlan({ mode: "rotate", consumers: consumers.map((name) => ({ name })), batch }), 1, "rotate");
}
