/**
 * The `random` generator (the default): drawn by the step provider with
 * Node's CSPRNG (crypto.randomInt draws without modulo bias) instead of
 * @pulumi/random, whose provider plugin cannot be had on these machines. A secret is drawn
 * uniformly from the requested character classes; a draw that misses a
 * requested class is thrown away and drawn again, so every string that has
 * at least one character of each class is equally likely.
 */
import { randomInt } from "node:crypto";
import { z } from "zod";
import { defineGenerator, secretLength, type GeneratorProblem } from "./kind";

export interface RandomSpec {
    length: number;
    upper: boolean;
    lower: boolean;
    numeric: boolean;
    special: boolean;
}

export const CLASSES = {
    upper: "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    lower: "abcdefghijklmnopqrstuvwxyz",
    numeric: "0123456789",
    // No quotes, backslash, `$` or backtick: values are often written into env files and templates.
    special: "!#%+,-.:=@^_~",
} as const;

const CLASS_NAMES = Object.keys(CLASSES) as (keyof typeof CLASSES)[];

/** A new secret per the spec; throws on a spec that cannot be met. */
export function randomSecret(spec: RandomSpec): string {
    const classes = CLASS_NAMES.filter((k) => spec[k]).map((k) => CLASSES[k]);
    if (!classes.length) throw new Error("random generator: no character class requested");
    if (!Number.isInteger(spec.length) || spec.length < classes.length || spec.length > 4096) {
        throw new Error(`random generator: length ${spec.length} cannot hold one character of each of ${classes.length} classes`);
    }
    const alphabet = classes.join("");
    for (;;) {
        let s = "";
        for (let i = 0; i < spec.length; i++) s += alphabet[randomInt(alphabet.length)];
        if (classes.every((c) => [...s].some((ch) => c.includes(ch)))) return s;
    }
}

export const random = defineGenerator({
    kind: "random",
    schema: z.strictObject({
        kind: z.literal("random"),
        length: secretLength,
        upper: z.boolean().default(true),
        lower: z.boolean().default(true),
        numeric: z.boolean().default(true),
        special: z.boolean().default(false),
    }),
    problems(g, type) {
        const problems: GeneratorProblem[] = [];
        if (type === "ssh-key") problems.push({ path: ["kind"], message: 'an ssh-key secret needs generator kind "command" (ed25519 via ssh-keygen)' });
        if (!CLASS_NAMES.some((k) => g[k])) {
            problems.push({ path: [], message: "a random generator needs at least one of upper, lower, numeric or special" });
        }
        return problems;
    },
    // Drawn in the step provider (randomSecret above): no @pulumi/random plugin needed.
    step: (g, secret, generation) => ({
        title: `${secret.name}: generate secret g${generation} (random, ${g.length} characters)`,
        op: "random" as const,
        random: { length: g.length, upper: g.upper, lower: g.lower, numeric: g.numeric, special: g.special } satisfies RandomSpec,
    }),
    nothing: "the random generator returned nothing",
});
