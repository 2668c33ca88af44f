/**
 * What a consumer kind is: one kind of thing that uses the secret and must
 * get the new one before the old is revoked (a service's config file on a
 * host, a CI system's secret store), in one module (consumers/<kind>.ts),
 * registered by one line in consumers/index.ts. A consumer entry names its
 * kind with `kind`; an entry without one is a `config-file` consumer, so
 * every stack config written before kinds existed means what it meant.
 *
 * Two ways of reaching a consumer, each with its own runner:
 * - `ssh`: a config file on a host of rotation:hosts. The rollout, the drift
 *   question and the pre-flight are scripts run on the host over its pinned
 *   connection (provider/rollout.ts, lib/scripts/check.ts, lib/scripts/preflight.ts).
 * - `api`: a secret store behind an HTTP API. The step provider calls the
 *   kind's own methods (op "api-rollout", provider/apiConsumer.ts), in its
 *   own process: the admin token is read from its file there and sent in a
 *   header, never put on a command line.
 *
 * Rollback (before the revocation) is the same rollout step run again with
 * the previous credential: a config file gets the old value written back, a
 * CI secret store is given the old value again. Nothing of a consumer is
 * deleted by an engine delete.
 */
import { z } from "zod";
import type { Holding } from "../lib/drift";
import { NAME_PATTERN, wholeNumber } from "../lib/fields";

/** What a drift question answers for one consumer (a store that cannot give the secret back: `write-only`). */
export type ConsumerHolding = Holding;

/** The fields every consumer has, whatever its kind. */
export const consumerName = z.string().regex(NAME_PATTERN, "must be 1-63 lowercase letters, digits or '-', starting with a letter or digit");
export const consumerTimeout = wholeNumber().min(1, "must be 1-300").max(300, "must be 1-300").default(15);

interface KindBase<Schema extends z.ZodObject> {
    /** The `kind` literal; also in the schema (optional there for the default kind). */
    readonly kind: string;
    /** Its member of a consumer entry's union, as written in the stack config. */
    readonly schema: Schema;
    /** The parts its rollout step runs, in order (the plan picture, cli/planGraph.ts). */
    readonly rolloutParts: readonly string[];
    /** Where it is, in a few words, for messages and `bin/rotate check`: "config file /etc/app.yaml on host1". */
    describe(c: z.output<Schema>): string;
}

/** A consumer on a host of rotation:hosts, reached over SSH (its host key pinned). */
export interface HostConsumerKind<Schema extends z.ZodObject = z.ZodObject> extends KindBase<Schema> {
    readonly reach: "ssh";
    /** The host of rotation:hosts it is on. */
    hostRef(c: z.output<Schema>): string;
}

/** The credential a rollout gives an API consumer: the secret, the login of a postgres-role source, and their generation. */
export interface ApiCredential {
    secret: string;
    user?: string;
    generation: number;
}

/** What an API consumer's rollout step carries (no secret: that comes on stdin). */
export interface ApiRolloutSpec<C = Record<string, unknown>> {
    /** e.g. "app-redis → consumer ci"; starts every error about this consumer. */
    label: string;
    generation: number;
    /** The consumer as resolved: its local files absolute. */
    consumer: C;
}

/** What resolving an API consumer may ask of the operator's machine (adapters/resolve.ts). */
export interface ConsumerResolution {
    /** A file on the operator's machine named by field `field`: made absolute and checked to exist. */
    file(field: string, p: string): string;
}

/** A consumer behind an HTTP API: the step provider runs its methods. */
export interface ApiConsumerKind<Schema extends z.ZodObject = z.ZodObject> extends KindBase<Schema> {
    readonly reach: "api";
    /** Makes its local files absolute (in place). */
    resolve(c: z.output<Schema>, on: ConsumerResolution): void;
    /** Whether it passes a postgres-role login on too; without, such a source is refused for it. */
    writesUser(c: z.output<Schema>): boolean;
    /** What to set so that it does (for the config error). */
    readonly howToWriteUser: string;
    /**
     * The rollout (and, with the previous credential, the rollback): give the
     * API the credential and have it confirm it; then re-trigger what uses it
     * and wait for the outcome, when configured. Throws an Error whose message
     * starts with the spec's label and holds no secret.
     */
    deliver(spec: ApiRolloutSpec<z.output<Schema>>, credential: ApiCredential): Promise<void>;
    /**
     * The drift question: which of these values it holds. A store that cannot
     * give a secret back answers `write-only` (present, value unknowable),
     * never `current`.
     */
    holds(
        c: z.output<Schema>,
        values: { current: string; previous?: string; currentUser?: string; previousUser?: string },
    ): Promise<{ holds: ConsumerHolding; detail?: string }>;
    /** The pre-flight: every problem found (the API answers, the token reaches what the rollout writes). Read-only. */
    preflight(c: z.output<Schema>): Promise<string[]>;
}

export type ConsumerKind<Schema extends z.ZodObject = z.ZodObject> = HostConsumerKind<Schema> | ApiConsumerKind<Schema>;

/** Declares a consumer kind on a host; the types of its methods follow from its schema. */
export function defineHostConsumer<Schema extends z.ZodObject>(kind: HostConsumerKind<Schema>): HostConsumerKind<Schema> {
    return kind;
}

/** Declares a consumer kind behind an API; the types of its methods follow from its schema. */
export function defineApiConsumer<Schema extends z.ZodObject>(kind: ApiConsumerKind<Schema>): ApiConsumerKind<Schema> {
    return kind;
}
