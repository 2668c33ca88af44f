/**
 * The config writers, one line per kind: a consumer's `write` names one by
 * its `format`. Adding a writer is one module (writers/kind.ts says what it
 * holds) and one line here; the order here is the order the config's error
 * for an unknown format lists them in.
 */
import { z } from "zod";
import { envLine } from "./envLine";
import type { WriterKind } from "./kind";
import { template } from "./template";
import { yamlKey } from "./yamlKey";

export const WRITERS = [yamlKey, envLine, template] as const;

type Kind = (typeof WRITERS)[number];

/** A consumer's `write`, as the stack config has it. */
export const writeSchema = z.discriminatedUnion("format", WRITERS.map((w) => w.schema) as unknown as [Kind["schema"], ...Kind["schema"][]]);

/** How a consumer's config takes the secret: one member per writer. */
export type WriteSpec = z.output<Kind["schema"]>;

/** The writer of a format; an unknown one (a config not validated by writeSchema) is an error naming the known ones. */
export function writerOf(format: string): WriterKind<Kind["schema"]> {
    const writer = WRITERS.find((w) => w.format === format);
    if (!writer) throw new Error(`unknown format ${JSON.stringify(format)}: must be one of ${WRITERS.map((w) => JSON.stringify(w.format)).join(", ")}`);
    return writer as unknown as WriterKind<Kind["schema"]>;
}

/** The consumer's new config content for this credential (provider/rollout.ts writes it back). */
export function rewriteConfig(spec: WriteSpec, current: string, secret: string, user?: string): string {
    return writerOf(spec.format).rewrite(spec, current, secret, user);
}
