/**
 * Drift check on a consumer's host, without moving the secret: the host reads
 * the value its config holds, with the same rules the write format writes it
 * by (lib/configFormats.ts), and answers only an HMAC-SHA256 of it keyed with
 * a fresh nonce from the operator. The operator compares that with the HMACs
 * of the current and previous values it computes itself (lib/drift.ts). A
 * fresh nonce per consumer and run: no stable hash of the secret ever leaves
 * either side, and an answer cannot be replayed.
 *
 * Output, one line each: `CHECK hmac <hex>` per value found (an env file may
 * hold the key on several lines), or `CHECK missing <why>`. Needs openssl on
 * the host (as the lab's and Debian's base images have).
 */
import type { WriteSpec } from "../../writers/yamlKey";
import { shq } from "../quote";

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

/** The host script for one consumer. `nonce` is hex; the config path and format come from the validated config. */
export function driftCheckScript(configPath: string, write: WriteSpec, nonce: string): string {
    if (!/^[0-9a-f]{64}$/.test(nonce)) throw new Error("driftCheckScript: the nonce must be 32 random bytes in hex");
    const dgst = `openssl dgst -sha256 -mac HMAC -macopt hexkey:${nonce} -r`;
    const hmac = `${dgst} | cut -d' ' -f1`;
    const head = `set -uo pipefail
f=${shq(configPath)}
command -v openssl >/dev/null || { echo "CHECK missing openssl is not installed on this host"; exit 0; }
[ -e "$f" ] || { echo "CHECK missing no file $f"; exit 0; }
[ -r "$f" ] || { echo "CHECK missing $f is not readable"; exit 0; }
emit() { printf 'CHECK hmac %s\\n' "$(printf '%s' "$1" | ${hmac})"; }
`;
    switch (write.format) {
        case "template":
            return `${head}printf 'CHECK hmac %s\\n' "$(${dgst} < "$f" | cut -d' ' -f1)"\n`;
        case "env-line":
            // A line is the key's when its name is the key, as setEnvLine matches it; the value is all after the first '='.
            return `${head}key=${shq(write.key)}
found=0
while IFS= read -r line || [ -n "$line" ]; do
  line=\${line%$'\\r'}
  if [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)= && \${BASH_REMATCH[2]} == "$key" ]]; then emit "\${line#*=}"; found=1; fi
done < "$f"
[ "$found" = 1 ] || echo "CHECK missing no $key= line in $f"
`;
        case "yaml-key":
            return `${head}${YAML_DECODE}key=${shq(write.key)}
rest=$(keypath="$key" awk ${shq(YAML_LOCATE)} "$f") || { echo "CHECK missing no key $key in $f"; exit 0; }
val=""
decode_scalar "$rest" || { echo "CHECK missing key $key in $f holds no single value"; exit 0; }
[ -n "$val" ] || { echo "CHECK missing key $key in $f is empty"; exit 0; }
emit "$val"
`;
    }
}
