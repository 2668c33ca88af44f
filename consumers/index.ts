/**
 * The registry of consumer kinds: one line per kind. A consumer entry names
 * its kind with `kind` (none: `config-file`); the order here is the order an
 * unknown kind is answered with.
 */
import { z } from "zod";
import { configFile } from "./configFile";
import { giteaActions } from "./giteaActions";
import { githubActions } from "./githubActions";
import type { ApiConsumerKind, ConsumerKind } from "./kind";

export const CONSUMERS = [configFile, giteaActions, githubActions] as const;

type Kind = (typeof CONSUMERS)[number];

/** A consumer entry, as the stack config has it: one of the kinds, by `kind`. */
export const consumerSchema = z.discriminatedUnion("kind", CONSUMERS.map((k) => k.schema) as unknown as [Kind["schema"], ...Kind["schema"][]]);

/** A consumer as written in the stack config. */
export type ConsumerEntry = z.output<typeof consumerSchema>;
/** A config-file consumer (kind absent or "config-file"), as written. */
export type ConfigFileEntry = z.output<typeof configFile.schema>;
/** A consumer behind an API, as written. */
export type ApiConsumerEntry = Exclude<ConsumerEntry, ConfigFileEntry>;

/** The kind an entry names; an entry without `kind` is a config file. */
export const kindName = (c: { kind?: string }): string => c.kind ?? configFile.kind;

/** The kind of a consumer; every kind the schema admits is registered. */
export function consumerOf(kind: string | undefined): ConsumerKind {
    const k = CONSUMERS.find((x) => x.kind === (kind ?? configFile.kind));
    if (!k) throw new Error(`unknown consumer kind ${JSON.stringify(kind)}: must be one of ${CONSUMERS.map((x) => JSON.stringify(x.kind)).join(", ")}`);
    return k as unknown as ConsumerKind;
}

/** Whether a consumer is a config file on a host (reached over SSH). */
export function isHostConsumer<C extends { kind?: string }>(c: C): c is Extract<C, { kind?: "config-file" }> {
    return consumerOf(c.kind).reach === "ssh";
}

/** The kind of an API consumer (one that is not on a host). */
export function apiConsumerOf(kind: string | undefined): ApiConsumerKind {
    const k = consumerOf(kind);
    if (k.reach !== "api") throw new Error(`consumer kind ${JSON.stringify(kind)} is not reached through an API`);
    return k;
}

export type { ApiConsumerKind, ApiCredential, ApiRolloutSpec, ConsumerHolding, HostConsumerKind } from "./kind";
