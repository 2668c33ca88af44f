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
}

/** Declares a generator; the types of its methods follow from its schema. */
export function defineGenerator<Schema extends z.ZodObject, Step extends { title: string }>(
    generator: GeneratorKind<Schema, Step>,
): GeneratorKind<Schema, Step> {
    return generator;
}

/** A secret's length in characters, as every kind takes it. */
export const secretLength = wholeNumber().min(16, "must be at least 16").max(256, "must be at most 256").default(32);
