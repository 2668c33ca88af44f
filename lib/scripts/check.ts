/**
 * Drift check on a consumer's host, without moving the secret: the host reads
 * the value its config holds, by the same rules its writer writes it by
 * (each writer's part, writers/<kind>.ts), and answers only an HMAC-SHA256
 * of it keyed with a fresh nonce from the operator. The operator compares
 * that with the HMACs of the current and previous values it computes itself
 * (lib/drift.ts). A fresh nonce per consumer and run: no stable hash of the
 * secret ever leaves either side, and an answer cannot be replayed.
 *
 * Output, one line each: `CHECK hmac <hex>` per value found (an env file may
 * hold the key on several lines), or `CHECK missing <why>`. Needs openssl on
 * the host (as the lab's and Debian's base images have).
 */
import { writerOf, type WriteSpec } from "../../writers";
import { shq } from "../quote";

/**
 * The host script for one consumer: the checks every writer shares, then the
 * writer's own part. `nonce` is hex; the config path and format come from
 * the validated config.
 */
export function driftCheckScript(configPath: string, write: WriteSpec, nonce: string): string {
    if (!/^[0-9a-f]{64}$/.test(nonce)) throw new Error("driftCheckScript: the nonce must be 32 random bytes in hex");
    const dgst = `openssl dgst -sha256 -mac HMAC -macopt hexkey:${nonce} -r`;
    return (
        checkHead(configPath, `emit() { local h; h=$(printf '%s' "$1" | ${dgst}); printf 'CHECK hmac %s\\n' "\${h%% *}"; }`) +
        writerOf(write.format).driftCheck(write, dgst)
    );
}

/**
 * The same reading of the config without any HMAC (no openssl run): only
 * whether it holds a value, for the pre-flight, which asks nothing more.
 * `CHECK hmac -` stands for each value found.
 */
export function presenceCheckScript(configPath: string, write: WriteSpec): string {
    return checkHead(configPath, "emit() { printf 'CHECK hmac -\\n'; }") + writerOf(write.format).driftCheck(write, "true");
}

/** What every check shares: the file there and readable, openssl on the host (the gate needs it), and how a value found is told. */
function checkHead(configPath: string, emit: string): string {
    return `set -uo pipefail
f=${shq(configPath)}
command -v openssl >/dev/null || { echo "CHECK missing openssl is not installed on this host"; exit 0; }
[ -e "$f" ] || { echo "CHECK missing no file $f"; exit 0; }
[ -r "$f" ] || { echo "CHECK missing $f is not readable"; exit 0; }
${emit}
`;
}
