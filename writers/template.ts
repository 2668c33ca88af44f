/**
 * The `template` writer: the whole file, rendered from a template in the
 * stack config. `{{secret}}` (and `{{user}}`, a generational login) are
 * replaced; nothing else is interpreted. The drift check HMACs the whole file.
 */
import { z } from "zod";
import { noNul } from "../lib/fields";
import { defineWriter } from "./kind";

/** Renders a whole-file template; `{{secret}}` and `{{user}}` are replaced, nothing else is interpreted. */
export function renderTemplate(template: string, secret: string, user?: string): string {
    return template
        .split("{{secret}}")
        .map((part) => (user === undefined ? part : part.split("{{user}}").join(user)))
        .join(secret);
}

export const template = defineWriter({
    format: "template",
    schema: z.strictObject({
        format: z.literal("template"),
        /** The whole file; `{{secret}}` (and `{{user}}`) are replaced. */
        template: z
            .string()
            .refine(noNul, "must not contain a NUL byte")
            .refine((t) => t.includes("{{secret}}"), "must contain {{secret}}"),
    }),
    rewrite: (spec, _current, secret, user) => renderTemplate(spec.template, secret, user),
    checked: (spec, secret, user) => renderTemplate(spec.template, secret, user),
    driftCheck: () => `emit_file "$f"\n`,
    writesUser: (spec) => spec.template.includes("{{user}}"),
    howToWriteUser: "the template must contain {{user}}",
    // `{{user}}` without a login is left as it is: nothing to refuse.
    userFields: () => [],
});
