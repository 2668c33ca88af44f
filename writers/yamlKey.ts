/**
 * Pure rewrites of a consumer's config file: the new file content for a new
 * secret (and, for generational logins, a new user). They change only the
 * targeted value and keep every other byte, comment and line ending.
 *
 * The step provider (provider/rollout.ts) runs them on the operator's
 * machine: a consumer's file is read over SSH, rewritten here, written back.
 */

export type WriteSpec =
    | { format: "yaml-key"; key: string; userKey?: string }
    | { format: "env-line"; key: string; userKey?: string }
    | { format: "template"; template: string };

/** A YAML double-quoted scalar holding exactly `value` (YAML 1.2 escapes). */
export function yamlQuote(value: string): string {
    let out = '"';
    for (const ch of value) {
        const cp = ch.codePointAt(0)!;
        if (ch === "\\") out += "\\\\";
        else if (ch === '"') out += '\\"';
        else if (ch === "\n") out += "\\n";
        else if (ch === "\t") out += "\\t";
        else if (ch === "\r") out += "\\r";
        else if (cp < 0x20 || cp === 0x7f || (cp >= 0x80 && cp < 0xa0) || cp === 0x2028 || cp === 0x2029 || cp === 0xfeff) {
            out += "\\u" + cp.toString(16).padStart(4, "0");
        } else out += ch;
    }
    return out + '"';
}

/**
 * Replaces the scalar value of a dotted key path in block-style YAML. Each
 * part of the path must be a direct child of the previous one: a key of the
 * same name deeper in the section (or in another section) is not the target.
 */
export function setYamlKey(content: string, keyPath: string, value: string): string {
    const parts = keyPath.split(".");
    const lines = content.split("\n");
    const keyLine = /^( *)([A-Za-z0-9_-]+|"[^"]*"|'[^']*'):(\s|$)/;
    let depth = 0;
    let parentIndent = -1;
    /** The indentation of the current section's direct children, from its first key. */
    let childIndent = -1;
    for (let i = 0; i < lines.length; i++) {
        const line = lines[i];
        const m = keyLine.exec(line);
        if (!m) continue;
        const indent = m[1].length;
        if (indent <= parentIndent) {
            throw new Error(`YAML key "${keyPath}" not found (section "${parts.slice(0, depth).join(".")}" ends at line ${i + 1})`);
        }
        if (childIndent < 0) childIndent = indent;
        if (indent !== childIndent) continue;
        const key = m[2].replace(/^["']|["']$/g, "");
        if (key !== parts[depth]) continue;
        if (depth === parts.length - 1) {
            const cr = line.endsWith("\r") ? "\r" : "";
            // The value and any trailing comment, without the line's CR (which `.` and `$` would stop at).
            const rest = line.slice(m[0].length - m[3].length, line.length - cr.length);
            const lead = /^\s*/.exec(rest)![0].length;
            const quoted = /^(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*')/.exec(rest.slice(lead));
            const from = quoted ? lead + quoted[0].length : 0;
            const comment = /\s+#[^]*$/.exec(rest.slice(from));
            const tail = comment ? rest.slice(from + comment.index) : "";
            if (/^\s*[|>]/.test(rest)) throw new Error(`YAML key "${keyPath}" holds a block scalar, which this writer does not replace`);
            if (rest.slice(0, rest.length - tail.length).trim() === "") {
                const next = lines.slice(i + 1).find((l) => l.trim() !== "" && !/^\s*#/.test(l));
                const nextIndent = next === undefined ? -1 : /^ */.exec(next)![0].length;
                if (next !== undefined && (nextIndent > indent || (nextIndent === indent && /^ *- /.test(next)))) {
                    throw new Error(`YAML key "${keyPath}" holds a mapping or list, not a single value`);
                }
            }
            lines[i] = `${m[1]}${m[2]}: ${yamlQuote(value)}${tail}${cr}`;
            return lines.join("\n");
        }
        depth++;
        parentIndent = indent;
        childIndent = -1;
    }
    throw new Error(`YAML key "${keyPath}" not found`);
}

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

/** Renders a whole-file template; `{{secret}}` and `{{user}}` are replaced, nothing else is interpreted. */
export function renderTemplate(template: string, secret: string, user?: string): string {
    return template.split("{{secret}}").map((part) => (user === undefined ? part : part.split("{{user}}").join(user))).join(secret);
}

/** The consumer's new config content for this credential. */
export function rewriteConfig(spec: WriteSpec, current: string, secret: string, user?: string): string {
    switch (spec.format) {
        case "yaml-key": {
            const withSecret = setYamlKey(current, spec.key, secret);
            return spec.userKey && user !== undefined ? setYamlKey(withSecret, spec.userKey, user) : withSecret;
        }
        case "env-line": {
            const withSecret = setEnvLine(current, spec.key, secret);
            return spec.userKey && user !== undefined ? setEnvLine(withSecret, spec.userKey, user) : withSecret;
        }
        case "template":
            return renderTemplate(spec.template, secret, user);
    }
}
