/**
 * The registry of secret source kinds: one line per kind. The order is the
 * order an unknown `kind` is answered with.
 */
import { z } from "zod";
import { command } from "./command";
import { httpToken } from "./httpToken";
import type { Generations, SourceKind, SourceScripts } from "./kind";
import { manualSource } from "./manual";
import { postgresRole } from "./postgresRole";
import { redisAcl } from "./redisAcl";
import { sshAuthorizedKey } from "./sshAuthorizedKey";

export const SOURCES = [redisAcl, postgresRole, sshAuthorizedKey, httpToken, command, manualSource] as const;

type Kind = (typeof SOURCES)[number];
/** A source as written in the stack config. */
export type SourceEntry = z.output<Kind["schema"]>;
/** A source as the components see it (hosts expanded). */
export type SourceConfig = Kind extends infer K ? (K extends SourceKind<z.ZodObject, infer R> ? R : never) : never;

/** The `source` member of a secret: one of the kinds, by `kind`. */
export const sourceSchema = z.discriminatedUnion("kind", SOURCES.map((s) => s.schema) as unknown as [Kind["schema"], ...Kind["schema"][]]);

/** The kind of a source; every kind the schema admits is registered. */
export function sourceOf(kind: string): SourceKind<z.ZodObject, SourceConfig> {
    const k = SOURCES.find((s) => s.kind === kind);
    if (!k) throw new Error(`unknown source kind ${JSON.stringify(kind)}: must be one of ${SOURCES.map((s) => JSON.stringify(s.kind)).join(", ")}`);
    return k as unknown as SourceKind<z.ZodObject, SourceConfig>;
}

export type { Generations, SourceScripts } from "./kind";

/** The scripts of a source at generation `g.generation`, as its kind writes them. */
export function sourceScripts(src: SourceConfig, g: Generations, hostKey?: string): SourceScripts {
    return sourceOf(src.kind).scripts(src, g, hostKey);
}

/** The login a credential of generation `g` uses, for a source whose credential is a login and password pair. */
export function loginOf(src: SourceConfig, g: number): string | undefined {
    return sourceOf(src.kind).login?.(src, g);
}
