/**
 * Canary waves: a secret's consumers rolled out in slices, each slice only
 * after every consumer of the one before passed its deploy, reload, health
 * and log check. The semantics are Ansible's `serial`: an entry is a count
 * or a percentage of all the secret's consumers (rounded down, never less
 * than one); the last entry repeats until every consumer is in a wave;
 * consumers keep their inventory order.
 */
import { z } from "zod";

export type WaveEntry = number | string;

const PERCENT = /^([1-9][0-9]?|100)%$/;

export const waveEntry = z.union(
    [z.number().int("a count must be a whole number").min(1, "a count must be 1 or more"), z.string().regex(PERCENT, 'a percentage must be "1%" to "100%"')],
    { error: 'each wave is a count (1 or more) or a percentage ("10%")' },
);

export const rolloutSchema = z.strictObject({
    /** e.g. [1, "10%", "100%"]; default: one wave of every consumer. */
    waves: z.array(waveEntry).min(1, "must list at least one wave").default(["100%"]),
    /** stop: consumers moved so far stay (both secrets valid); rollback: bin/rotate takes the rotation back at once. */
    onFailure: z.enum(["stop", "rollback"], { error: 'must be "stop" or "rollback"' }).default("stop"),
    /**
     * Consumers per rollout resource (lib/plan.ts batchSizeOf): "auto" (the
     * default) gives each consumer a resource of its own up to
     * BATCH_FROM - 1 consumers and about MAX_BATCHES resources beyond; a count
     * fixes it (1: one resource per consumer at any size).
     */
    batch: z
        .union([z.literal("auto"), z.number().int("a count must be a whole number").min(1, "a count must be 1 or more")], {
            error: 'must be "auto" or a count of consumers per rollout resource (1 or more)',
        })
        .default("auto"),
});

export type BatchSetting = z.output<typeof rolloutSchema>["batch"];

/** From this many consumers, "auto" rolls out in batches: one resource per consumer below it. */
export const BATCH_FROM = 21;
/** "auto" batches a large fleet into about this many rollout resources. */
export const MAX_BATCHES = 16;

/**
 * Consumers per rollout resource for `total` consumers. The engine rewrites
 * the whole checkpoint after every step operation, one at a time (design
 * notes, third round), so a resource per consumer makes a large fleet's
 * rotation wait on bookkeeping; a batch's consumers run at once in the step
 * provider, so fewer, larger resources cost no rollout time.
 */
export function batchSizeOf(total: number, setting: BatchSetting = "auto"): number {
    if (setting !== "auto") return setting;
    return total < BATCH_FROM ? 1 : Math.ceil(total / MAX_BATCHES);
}

/** How many of `total` consumers one entry takes. */
function sizeOf(entry: WaveEntry, total: number): number {
    if (typeof entry === "number") return entry;
    return Math.max(1, Math.floor((total * Number(entry.slice(0, -1))) / 100));
}

/** The consumers in waves, in order; every consumer in exactly one. */
export function formWaves<T>(items: readonly T[], spec: readonly WaveEntry[]): T[][] {
    const waves: T[][] = [];
    let at = 0;
    for (let i = 0; at < items.length; i++) {
        const size = sizeOf(spec[Math.min(i, spec.length - 1)], items.length);
        waves.push(items.slice(at, at + size));
        at += size;
    }
    return waves;
}
