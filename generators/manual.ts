/**
 * The `manual` generator, for secrets a vendor issues (an API key made in its
 * console): a person types the value at `bin/rotate start` (echo off,
 * typeahead discarded) or pipes it to it. bin/rotate checks it against the
 * rules below without printing it, then serves it for this run only on a
 * Unix socket in a private 0700 directory (cli/entry.ts); the generate step
 * reads it from there. So the value is never in argv, the environment, a
 * file or the step's inputs: it becomes the step's secret output, encrypted
 * in state, as a generated one does.
 *
 * Nothing else can supply it: a plain `pulumi up` whose rotation still needs
 * the value is refused before anything is registered (adapters/resolve.ts,
 * checkEntered), and the step itself fails with the same advice.
 */
import { z } from "zod";
import { wholeNumber } from "../lib/fields";
import { shq } from "../lib/quote";
import { CLASSES } from "./random";
import { defineGenerator, type GeneratorProblem } from "./kind";

/** The environment variable that names bin/rotate's socket for this run (a path, never a value). */
export const ENTRY_SOCKET_ENV = "ROTATION_ENTRY_SOCKET";

const CLASS_NAMES = ["upper", "lower", "numeric", "special"] as const;
const length = (what: string) => wholeNumber().min(1, `${what} must be at least 1`).max(4096, `${what} must be at most 4096`);

const schema = z.strictObject({
    kind: z.literal("manual"),
    /** Fewest characters the value may have. */
    minLength: length("minLength").default(16),
    /** Most characters the value may have. */
    maxLength: length("maxLength").default(256),
    /** Classes the value must hold at least one character of (random.ts's classes; `special` is any other printable character). */
    require: z.array(z.enum(CLASS_NAMES)).default([]),
    /** A regular expression (JavaScript) the whole value must match, e.g. the vendor's key format `^sk_live_[A-Za-z0-9]{24}$`. */
    pattern: z.string().min(1).max(500).optional(),
    /** What the prompt asks for, e.g. "the new Stripe key from the dashboard". */
    prompt: z
        .string()
        .regex(/^[^\r\n\0]{1,200}$/, "must be one line of at most 200 characters")
        .optional(),
});

type ManualGenerator = z.output<typeof schema>;

function compiled(pattern: string): RegExp | string {
    try {
        return new RegExp(pattern, "u");
    } catch (e) {
        return (e as Error).message;
    }
}

const isClass = (c: (typeof CLASS_NAMES)[number], ch: string) =>
    c === "special" ? !/[A-Za-z0-9]/.test(ch) : CLASSES[c as Exclude<typeof c, "special">].includes(ch);

/** What is wrong with a typed value, never quoting it: length, control characters, required classes, the pattern. */
export function enteredProblems(g: ManualGenerator, value: string): string[] {
    const problems: string[] = [];
    const n = [...value].length;
    if (!n) return ["nothing was entered"];
    if (n < g.minLength) problems.push(`minLength: it has ${n} characters, fewer than ${g.minLength}`);
    if (n > g.maxLength) problems.push(`maxLength: it has ${n} characters, more than ${g.maxLength}`);
    if (/[\u0000-\u001f\u007f]/.test(value)) problems.push("it holds a control character (a tab, a line break, an escape): one line of printable characters");
    if (/^\s|\s$/.test(value)) problems.push("it starts or ends with a space");
    for (const c of g.require) if (![...value].some((ch) => isClass(c, ch))) problems.push(`require: it has no ${c} character`);
    if (g.pattern) {
        const re = compiled(g.pattern);
        if (typeof re !== "string" && !re.test(value)) problems.push(`pattern: it does not match ${g.pattern}`);
    }
    return problems;
}

/**
 * Run by the step with `node -e`: argv is the socket, the secret's name and
 * the generation. Asks bin/rotate for that value and prints it; bin/rotate
 * answers `ok\0<value>` or one line saying why not.
 */
const CLIENT = `const [sock, secret, generation] = process.argv.slice(1);
const c = require("net").connect(sock);
const chunks = [];
c.setTimeout(30000, () => { process.stderr.write("bin/rotate did not answer within 30s\\n"); process.exit(1); });
c.on("connect", () => c.end(JSON.stringify({ secret, generation: Number(generation) }) + "\\n"));
c.on("data", (d) => chunks.push(d));
c.on("error", (e) => { process.stderr.write("cannot reach bin/rotate, which holds the entered value (" + (e.code || e.message) + "): run bin/rotate again\\n"); process.exit(1); });
c.on("end", () => {
  const b = Buffer.concat(chunks);
  const i = b.indexOf(0);
  if (i > 0 && b.subarray(0, i).toString() === "ok") return void process.stdout.write(b.subarray(i + 1));
  process.stderr.write((b.toString("utf8") || "bin/rotate gave no value") + "\\n");
  process.exit(1);
});
`;

/** Why a rotation that needs a typed value has none, and what to do (the program's refusal and the step's error say it alike). */
export function noValueAdvice(secret: string, generation: number, stack = "<stack>"): string {
    return (
        `${secret} generation ${generation} has generator kind "manual" and no value was entered for it: only bin/rotate can ask for it. ` +
        `Run bin/rotate start --stack ${stack} --secret ${secret} --yes (or bin/rotate resume --stack ${stack} --yes once generation ${generation} is set) on a terminal, or pipe the value to it`
    );
}

export const manual = defineGenerator({
    kind: "manual",
    schema,
    problems(g, type) {
        const problems: GeneratorProblem[] = [];
        if (type === "ssh-key") problems.push({ path: ["kind"], message: 'an ssh-key secret needs generator kind "command" (a key is not typed)' });
        if (g.minLength > g.maxLength) problems.push({ path: ["minLength"], message: `must not be more than maxLength (${g.maxLength})` });
        if (g.pattern) {
            const re = compiled(g.pattern);
            if (typeof re === "string") problems.push({ path: ["pattern"], message: `is not a regular expression: ${re}` });
        }
        return problems;
    },
    step: (_g, secret, generation) => ({
        title: `${secret.name}: take the entered secret g${generation} (manual)`,
        target: { kind: "local" as const },
        script:
            `set -euo pipefail\ns=\${${ENTRY_SOCKET_ENV}:-}\n` +
            `[ -n "$s" ] && [ -S "$s" ] || { echo ${shq(noValueAdvice(secret.name, generation))} >&2; exit 1; }\n` +
            `exec node -e ${shq(CLIENT)} "$s" ${shq(secret.name)} ${shq(generation)}\n`,
    }),
    nothing: "no value was entered",
    entered: enteredProblems,
});
