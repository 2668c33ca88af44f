/**
 * The `random` generator, run by the step provider with Node's CSPRNG
 * (crypto.randomInt draws without modulo bias) instead of @pulumi/random,
 * whose provider plugin cannot be had on these machines. A secret is drawn
 * uniformly from the requested character classes; a draw that misses a
 * requested class is thrown away and drawn again, so every string that has
 * at least one character of each class is equally likely.
 */
import { randomInt } from "crypto";

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

/** A new secret per the spec; throws on a spec that cannot be met. */
export function randomSecret(spec: RandomSpec): string {
    const classes = (Object.keys(CLASSES) as (keyof typeof CLASSES)[]).filter((k) => spec[k]).map((k) => CLASSES[k]);
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
