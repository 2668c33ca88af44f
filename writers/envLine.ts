/**
 * The `env-line` writer: the secret (and a generational login) as the value
 * of `KEY=value` lines (an env file, optionally `export KEY=...`). The value
 * is the raw rest of the line, so it cannot hold a line break.
 */
import { z } from "zod";
import { shq } from "../lib/quote";
import { defineWriter, keyedWriter } from "./kind";

/** Replaces the value of a `KEY=value` line; the value is the raw rest of the line. */
export function setEnvLine(content: string, key: string, value: string): string {
    if (/[\r\n]/.test(value)) throw new Error(`the value for ${key} contains a line break, which a KEY=value line cannot hold`);
    const lines = content.split("\n");
    let found = 0;
    for (let i = 0; i < lines.length; i++) {
        const m = /^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)=/.exec(lines[i]);
        if (m && m[2] === key) {
            const cr = lines[i].endsWith("\r") ? "\r" : "";
            lines[i] = `${m[1]}${key}=${value}${cr}`;
            found++;
        }
    }
    if (!found) throw new Error(`no ${key}= line found`);
    return lines.join("\n");
}

export const envLine = defineWriter({
    format: "env-line",
    schema: z.strictObject({
        format: z.literal("env-line"),
        key: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a variable name such as 'DB_PASSWORD'"),
        userKey: z
            .string()
            .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a variable name")
            .optional(),
    }),
    ...keyedWriter(setEnvLine),
    // A line is the key's when its name is the key, as setEnvLine matches it; the value is all after the first '='.
    driftCheck: (spec) => `key=${shq(spec.key)}
found=0
while IFS= read -r line || [ -n "$line" ]; do
  line=\${line%$'\\r'}
  if [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)= && \${BASH_REMATCH[2]} == "$key" ]]; then emit "\${line#*=}"; found=1; fi
done < "$f"
[ "$found" = 1 ] || echo "CHECK missing no $key= line in $f"
`,
});
