/**
 * What a generator is: one way of making a new generation of a secret (drawn
 * at random, or printed by a command), in one module (generators/<kind>.ts),
 * registered by one line in generators/index.ts. A generator is the secret's
 * `generator` in the stack config; it contributes the one step that makes the
 * value (components/secretVersion.ts) and its checks across fields.
 */
import type { z } from "zod";
import { wholeNumber, type SecretType } from "../lib/fields";

/** A problem of a generator across fields: its path from the secret's `generator`, and its message. */
export interface GeneratorProblem {
    path: (string | number)[];
    message: string;
}

/** The secret a generation is made for. */
export interface GeneratedSecret {
    name: string;
    type: SecretType;
}

/**
 * One kind of generator. `Schema` is its member of the `generator` union;
 * `Step` what it contributes to the step that makes the value: its title and
 * what it runs (its stdout, the secret, is captured; the rest every kind
 * shares is added by generators/index.ts).
 */
export interface GeneratorKind<Schema extends z.ZodObject = z.ZodObject, Step extends { title: string } = { title: string }> {
    /** The `kind` literal; also in the schema. */
    readonly kind: string;
    /** Its member of the `generator` union, as written in the stack config. */
    readonly schema: Schema;
    /** What the schema cannot see on its own: the secret's type, fields that make sense only together. */
    problems(generator: z.output<Schema>, type: SecretType): GeneratorProblem[];
    /** The step's title and what it runs, for generation `generation` of `secret`. */
    step(generator: z.output<Schema>, secret: GeneratedSecret, generation: number): Step;
    /** What went wrong when the step yields nothing (after the secret's name). */
    readonly nothing: string;
    /**
     * Completes the generator's settings on this machine, in place (files made
     * absolute against `baseDir` and checked, defaults from the environment).
     * Returns the problems, each naming its field under `at` (e.g. `rotation:secrets.app.generator`).
     */
    resolve?(generator: z.output<Schema>, baseDir: string, at: string): string[];
    /**
     * A generator behind a server: asked before anything is registered (and by
     * bin/rotate before it writes the stack file) whether it can make a value
     * for `secret`. Returns the problems, each naming its field under `at`.
     */
    ask?(generator: z.output<Schema>, secret: GeneratedSecret, at: string): Promise<string[]>;
    /**
     * A generator whose value a person types at `bin/rotate start`: the rules
     * that value must meet. Each problem says what is wrong without quoting
     * the value.
     */
    entered?(generator: z.output<Schema>, value: string): string[];
}

/** Declares a generator; the types of its methods follow from its schema. */
export function defineGenerator<Schema extends z.ZodObject, Step extends { title: string }>(
    generator: GeneratorKind<Schema, Step>,
): GeneratorKind<Schema, Step> {
    return generator;
}

/** A secret's length in characters, as every kind takes it. */
export const secretLength = wholeNumber().min(16, "must be at least 16").max(256, "must be at most 256").default(32);
