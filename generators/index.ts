/**
 * The generators, one line per kind: a secret's `generator` names one by its
 * `kind`. Adding a generator is one module (generators/kind.ts says what it
 * holds) and one line here; the order here is the order the config's error
 * for an unknown kind lists them in.
 */
import { z } from "zod";
import { command } from "./command";
import type { GeneratedSecret, GeneratorKind, GeneratorProblem } from "./kind";
import { manual } from "./manual";
import { random } from "./random";
import { vaultPasswordPolicy } from "./vaultPasswordPolicy";

export const GENERATORS = [random, command, vaultPasswordPolicy, manual] as const;

type Kind = (typeof GENERATORS)[number];

/** A secret's `generator`, as the stack config has it. */
export const generatorSchema = z.discriminatedUnion("kind", GENERATORS.map((g) => g.schema) as unknown as [Kind["schema"], ...Kind["schema"][]]);

/** How a secret's new generations are made: one member per generator. */
export type GeneratorSpec = z.output<Kind["schema"]>;

type AnyGenerator = GeneratorKind<Kind["schema"], ReturnType<Kind["step"]>>;

/** The generator of a kind; an unknown one (a config not validated by generatorSchema) is an error naming the known ones. */
export function generatorOf(kind: string): AnyGenerator {
    const generator = GENERATORS.find((g) => g.kind === kind);
    if (!generator) throw new Error(`unknown kind ${JSON.stringify(kind)}: must be one of ${GENERATORS.map((g) => JSON.stringify(g.kind)).join(", ")}`);
    return generator as unknown as AnyGenerator;
}

/** A generator's problems across fields for a secret of `type`, each with its path from the secret's `generator`. */
export function generatorProblems(generator: GeneratorSpec, type: GeneratedSecret["type"]): GeneratorProblem[] {
    return generatorOf(generator.kind).problems(generator, type);
}

/** Completes a generator's settings on this machine (files absolute, defaults from the environment): its problems, each under `at`. */
export function resolveGenerator(generator: GeneratorSpec, baseDir: string, at: string): string[] {
    return generatorOf(generator.kind).resolve?.(generator, baseDir, at) ?? [];
}

/** Asks a generator behind a server whether it can make a value (none to ask: no problems). */
export function askGenerator(generator: GeneratorSpec, secret: GeneratedSecret, at: string): Promise<string[]> {
    return generatorOf(generator.kind).ask?.(generator, secret, at) ?? Promise.resolve([]);
}

/** Whether a person types the generator's value at bin/rotate (the manual kind). */
export const isEntered = (generator: GeneratorSpec) => generatorOf(generator.kind).entered !== undefined;

/** What is wrong with a value typed for the generator, each problem prefixed by its field where it has one. */
export function enteredProblems(generator: GeneratorSpec, value: string): string[] {
    return generatorOf(generator.kind).entered?.(generator, value) ?? [];
}

export { ENTRY_SOCKET_ENV, noValueAdvice } from "./manual";

/**
 * The step that makes generation `generation` of the secret: the kind's title
 * and what it runs, its stdout captured as the value, audited as phase
 * "generated", and deleted only once the rotation is past this generation.
 * `nothing` is the error when it yields no value.
 */
export function generatedStep(generator: GeneratorSpec, secret: GeneratedSecret, generation: number) {
    const kind = generatorOf(generator.kind);
    return {
        args: { ...kind.step(generator, secret, generation), captureStdout: true, phase: "generated", guardDelete: { generation, kind: "value" as const } },
        nothing: `${secret.name}: ${kind.nothing}`,
    };
}
