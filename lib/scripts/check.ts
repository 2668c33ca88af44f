/**
 * Drift check on a consumer's host, without moving the secret: the host reads
 * the value its config holds, by the same rules its writer writes it by
 * (each writer's part, writers/<kind>.ts), and answers only an HMAC-SHA256
 * of it keyed with a fresh nonce from the operator. The operator compares
 * that with the HMACs of the current and previous values it computes itself
 * (lib/drift.ts). A fresh nonce per question (one consumer, or one host's
 * consumers at the gate) and run: no stable hash of the secret ever leaves
 * either side, and an answer cannot be replayed.
 *
 * Output, one line each: `CHECK hmac <hex>` per value found (an env file may
 * hold the key on several lines), or `CHECK missing <why>`. Needs openssl on
 * the host (as the lab's and Debian's base images have).
 */
import { writerOf, type WriteSpec } from "../../writers";
import { shq } from "../quote";
import { splitBatch } from "./common";
import { logAnchorScript, type AnchorSource } from "./logCount";

const NONCE = /^[0-9a-f]{64}$/;
const hmacCommand = (nonce: string) => `openssl dgst -sha256 -mac HMAC -macopt hexkey:${nonce} -r`;

/**
 * The host script for one consumer: the checks every writer shares, then the
 * writer's own part. `nonce` is hex; the config path and format come from
 * the validated config.
 */
export function driftCheckScript(configPath: string, write: WriteSpec, nonce: string): string {
    if (!NONCE.test(nonce)) throw new Error("driftCheckScript: the nonce must be 32 random bytes in hex");
    const dgst = hmacCommand(nonce);
    return oneCheck(
        configPath,
        write,
        `emit() { local h; h=$(printf '%s' "$1" | ${dgst}); printf 'CHECK hmac %s\\n' "\${h%% *}"; }
emit_file() { local h; h=$(${dgst} < "$1"); printf 'CHECK hmac %s\\n' "\${h%% *}"; }`,
    );
}

/**
 * The same reading of the config without any HMAC (no openssl run): only
 * whether it holds a value, for the pre-flight, which asks nothing more.
 * `CHECK hmac -` stands for each value found.
 */
export function presenceCheckScript(configPath: string, write: WriteSpec): string {
    return oneCheck(configPath, write, "emit() { printf 'CHECK hmac -\\n'; }\nemit_file() { printf 'CHECK hmac -\\n'; }");
}

/**
 * presenceCheckScript's reading as shell functions for a script of many
 * consumers (the pre-flight of a host, lib/scripts/preflight.ts): `emit`
 * and `emit_file` as it has them, and `name <config path>`, which prints
 * what the script would (openssl's absence included).
 */
export function presenceCheckFunctions(name: string, write: WriteSpec): string {
    return `emit() { printf 'CHECK hmac -\\n'; }
emit_file() { printf 'CHECK hmac -\\n'; }
${checkFunction(`${name}_read`, write)}
${name}() { command -v openssl >/dev/null || { echo "CHECK missing openssl is not installed on this host"; return 0; }; ${name}_read "$1"; }`;
}

function oneCheck(configPath: string, write: WriteSpec, emitters: string): string {
    return `set -uo pipefail
${OPENSSL}
${emitters}
${checkFunction("check", write)}
check ${shq(configPath)}
`;
}

const OPENSSL = `command -v openssl >/dev/null || { echo "CHECK missing openssl is not installed on this host"; exit 0; }`;

/** A writer's check as a shell function of the config path: the checks every writer shares, then the writer's part. */
function checkFunction(name: string, write: WriteSpec): string {
    return `${name}() {
local f=$1 key found line rest val
[ -e "$f" ] || { echo "CHECK missing no file $f"; return 0; }
[ -r "$f" ] || { echo "CHECK missing $f is not readable"; return 0; }
${writerOf(write.format).driftCheck(write)}}`;
}

/** One consumer of a host's drift questions: its config, and the log whose anchor the gate notes. */
export interface DriftItem {
    configPath: string;
    write: WriteSpec;
    log?: AnchorSource;
}

/** Values hashed by one openssl run: each an open descriptor of its own, well under the usual 1024. */
const HASH_CHUNK = 100;

/**
 * The gate's questions to every consumer of one host as one script in one
 * shell: each consumer's answer after a `<boundary> <i>` line (its log's
 * anchor, then its `CHECK` lines), and the values found hashed at the end by
 * one openssl run per hundred (`HMAC <k> <hex>`, which `CHECK hmac @<k>`
 * lines stand for). Against a job per consumer, which at a thousand
 * consumers cost the gate seconds of process starts: no process per
 * consumer but the one that feeds openssl its value, and one `stat` per log
 * file, however many consumers log to it. A value found reaches openssl only
 * through a pipe (process substitution), never an argv or a file. Writers
 * with the same settings share one function, so the script grows by a line
 * per consumer.
 */
export function driftBatchScript(items: DriftItem[], nonce: string, boundary: string): string {
    if (!NONCE.test(nonce)) throw new Error("driftBatchScript: the nonce must be 32 random bytes in hex");
    if (!/^[A-Za-z0-9-]+$/.test(boundary)) throw new Error("driftBatchScript: the boundary must be letters, digits and dashes");
    const fns = new Map<string, string>();
    const fnOf = (w: WriteSpec) => {
        const key = JSON.stringify(w);
        if (!fns.has(key)) fns.set(key, checkFunction(`check_${fns.size}`, w));
        return `check_${[...fns.keys()].indexOf(key)}`;
    };
    const anchor = (log: AnchorSource) => ("path" in log ? `anchor_file ${shq(log.path)}\n` : `(\n${logAnchorScript(log)})\n`);
    const body = items.map((it, i) => `printf '%s ${i}\\n' "$boundary"\n${it.log ? anchor(it.log) : ""}${fnOf(it.write)} ${shq(it.configPath)}`).join("\n");
    return `set -uo pipefail
boundary=${boundary}
if ! command -v openssl >/dev/null; then
  for ((i = 0; i < ${items.length}; i++)); do printf '%s %s\\nCHECK missing openssl is not installed on this host\\n' "$boundary" "$i"; done
  exit 0
fi
kinds=() data=()
emit() { printf 'CHECK hmac @%s\\n' "\${#data[@]}"; kinds+=(v); data+=("$1"); }
emit_file() { printf 'CHECK hmac @%s\\n' "\${#data[@]}"; kinds+=(f); data+=("$1"); }
declare -A sizes=()
anchor_file() {
  [ -n "\${sizes[$1]+x}" ] || sizes[$1]=$(stat -c %s -- "$1" 2>/dev/null || echo 0)
  printf 'LOGSIZE %s\\n' "\${sizes[$1]}"
}
${[...fns.values()].join("\n")}
${body}
printf '%s hmacs\\n' "$boundary"
for ((a = 0; a < \${#data[@]}; a += ${HASH_CHUNK})); do
  args=
  for ((k = a; k < a + ${HASH_CHUNK} && k < \${#data[@]}; k++)); do
    if [ "\${kinds[k]}" = f ]; then args+=" <(cat -- \\"\\\${data[$k]}\\")"; else args+=" <(printf '%s' \\"\\\${data[$k]}\\")"; fi
  done
  k=$a
  while read -r h _; do printf 'HMAC %s %s\\n' "$k" "$h"; k=$((k + 1)); done < <(eval "${hmacCommand(nonce)}$args")
done
`;
}

/** Each consumer's answer from a batch's output, its `CHECK hmac @<k>` lines given their HMACs; undefined for one the output lacks. */
export function splitDriftBatch(stdout: string, count: number, boundary: string): (string | undefined)[] {
    const tail = `\n${boundary} hmacs\n`;
    const at = `\n${stdout}`.lastIndexOf(tail);
    const hmacs = new Map<string, string>();
    if (at >= 0) for (const m of `\n${stdout}`.slice(at + tail.length).matchAll(/^HMAC (\d+) ([0-9a-f]+)$/gm)) hmacs.set(m[1], m[2]);
    // An HMAC the host could not make (openssl failed on it) stays a placeholder: holding() counts it as unknown.
    return splitBatch(at < 0 ? stdout : stdout.slice(0, at), count, boundary).map((text) =>
        text?.replace(/^CHECK hmac @(\d+)$/gm, (line, k: string) => (hmacs.has(k) ? `CHECK hmac ${hmacs.get(k)}` : line)),
    );
}
