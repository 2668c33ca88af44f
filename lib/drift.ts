/**
 * The operator's side of the drift check (lib/scripts/check.ts runs on the
 * host): a fresh nonce per question (a consumer, or at the gate a host's
 * consumers) and run, the HMACs of the values the
 * consumer should hold, and the verdict from the host's answer. Values never
 * leave this process; the host's answer is an HMAC under a nonce used once.
 */
import { createHmac, randomBytes } from "node:crypto";
import { writerOf, type WriteSpec } from "../writers";

/**
 * `staged`: the value staged by a rotation in progress (only when one is asked
 * about). `write-only`: a consumer whose store cannot give a secret back (a
 * CI system's secrets, consumers/): it holds one, which is unknowable.
 */
export type Holding = "current" | "previous" | "staged" | "unknown" | "missing" | "unreachable" | "write-only";

/** Whether a consumer counts as on the current secret: it holds it, or it is write-only (its rollout was confirmed, nothing more can be known). */
export const onCurrent = (h: string): boolean => h === "current" || h === "write-only";

/** 32 random bytes, hex: the HMAC key for one question (a consumer, or a host's consumers at the gate) in one check. */
export const freshNonce = (): string => randomBytes(32).toString("hex");

export const hmacOf = (nonceHex: string, value: string): string => createHmac("sha256", Buffer.from(nonceHex, "hex")).update(value, "utf8").digest("hex");

/** What the host HMACs for a consumer holding `value`: the value, or for a template the whole rendered file. */
export const hmacInput = (write: WriteSpec, value: string, user?: string): string => writerOf(write.format).checked(write, value, user);

/**
 * What the consumer holds, from the host script's output and the expected
 * HMACs (`previous` absent when the store no longer keeps it, `staged` only
 * during a rotation). Several values (an env file with the key twice): the
 * worst of them counts.
 */
export function holding(output: string, expected: { current: string; previous?: string; staged?: string }): { holds: Holding; detail?: string } {
    // The host's one `CHECK missing` message is its last output; it names the config path, which may hold a newline.
    const missing = /(?:^|\n)CHECK missing ([\s\S]*?)\n?$/.exec(output);
    if (missing) return { holds: "missing", detail: missing[1] };
    const lines = output.split("\n").filter((l) => l.startsWith("CHECK "));
    const hmacs = lines.filter((l) => l.startsWith("CHECK hmac ")).map((l) => l.slice("CHECK hmac ".length).trim());
    if (!hmacs.length) return { holds: "unknown", detail: "the host gave no answer" };
    const each = hmacs.map(
        (h): Holding => (h === expected.current ? "current" : h === expected.previous ? "previous" : h === expected.staged ? "staged" : "unknown"),
    );
    const worst = (["unknown", "previous", "staged", "current"] as const).find((x) => each.includes(x))!;
    return { holds: worst, ...(hmacs.length > 1 && new Set(each).size > 1 ? { detail: `the key appears ${hmacs.length} times with different values` } : {}) };
}
