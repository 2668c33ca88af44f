/**
 * The `yaml-key` writer: the secret (and a generational login) as the value
 * of a dotted key path in block-style YAML, double-quoted. The rewrite
 * changes only that value and keeps every other byte, comment and line
 * ending; the drift check finds the key by the same rules on the host.
 */
import { z } from "zod";
import { shq } from "../lib/quote";
import { defineWriter, keyedWriter } from "./kind";

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
            out += `\\u${cp.toString(16).padStart(4, "0")}`;
        } else out += ch;
    }
    return `${out}"`;
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
            const comment = /\s+#[\s\S]*$/.exec(rest.slice(from));
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

/**
 * Finds a dotted key's line in block YAML as setYamlKey does (each part a
 * direct child of the one before) and prints what follows its colon.
 * mawk-compatible (Debian's default awk). The key path comes from the
 * environment: `awk -v` would read its backslashes as escapes.
 */
const YAML_LOCATE = String.raw`BEGIN { n = split(ENVIRON["keypath"], parts, "."); depth = 1; parent = -1; child = -1 }
{
  line = $0; sub(/\r$/, "", line)
  if (!match(line, /^ *([A-Za-z0-9_-]+|"[^"]*"|'[^']*'):/)) next
  head = RLENGTH
  if (head < length(line) && substr(line, head + 1, 1) !~ /[ \t]/) next
  indent = match(line, /[^ ]/) - 1
  if (indent <= parent) exit 3
  if (child < 0) child = indent
  if (indent != child) next
  key = substr(line, indent + 1, head - indent - 1)
  if (key ~ /^".*"$/ || key ~ /^'.*'$/) key = substr(key, 2, length(key) - 2)
  if (key != parts[depth]) next
  if (depth == n) { print substr(line, head + 1); found = 1; exit 0 }
  depth++; parent = indent; child = -1
}
END { if (!found) exit 3 }`;

/** Decodes the YAML scalar in $rest into $val: double-quoted (the writer's form), single-quoted or plain. */
const YAML_DECODE = String.raw`decode_scalar() {
  local r=$1 i=0 c out=""
  r=${"$"}{r#"${"$"}{r%%[![:space:]]*}"}
  case "$r" in
    '"'*)
      r=${"$"}{r:1}
      while [ "$i" -lt "${"$"}{#r}" ]; do
        c=${"$"}{r:i:1}
        if [ "$c" = '\' ]; then out+=${"$"}{r:i:2}; i=$((i + 2)); continue; fi
        [ "$c" = '"' ] && break
        out+=$c; i=$((i + 1))
      done
      [ "$i" -lt "${"$"}{#r}" ] || return 1
      out=${"$"}{out//\\\"/\\x22}
      printf -v val '%b' "$out" ;;
    "'"*)
      r=${"$"}{r:1}
      while [ "$i" -lt "${"$"}{#r}" ]; do
        c=${"$"}{r:i:1}
        if [ "$c" = "'" ]; then
          [ "${"$"}{r:i+1:1}" = "'" ] || break
          out+="'"; i=$((i + 2)); continue
        fi
        out+=$c; i=$((i + 1))
      done
      [ "$i" -lt "${"$"}{#r}" ] || return 1
      val=$out ;;
    '|'* | '>'* | '' | '#'*) return 1 ;;
    *)
      r=${"$"}{r%%[[:space:]]#*}
      val=${"$"}{r%"${"$"}{r##*[![:space:]]}"} ;;
  esac
}
`;

export const yamlKey = defineWriter({
    format: "yaml-key",
    schema: z.strictObject({
        format: z.literal("yaml-key"),
        key: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "must be a dotted YAML key path such as 'redis.password'"),
        userKey: z
            .string()
            .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "must be a dotted YAML key path")
            .optional(),
    }),
    ...keyedWriter(setYamlKey),
    driftCheck: (spec) => `${YAML_DECODE}key=${shq(spec.key)}
rest=$(keypath="$key" awk ${shq(YAML_LOCATE)} "$f") || { echo "CHECK missing no key $key in $f"; return 0; }
val=""
decode_scalar "$rest" || { echo "CHECK missing key $key in $f holds no single value"; return 0; }
[ -n "$val" ] || { echo "CHECK missing key $key in $f is empty"; return 0; }
emit "$val"
`,
});
