/**
 * The gate's drift check: before the revocation, every consumer of the
 * secret (not only those this run deployed to) answers an HMAC, under a fresh
 * nonce, of the value its config holds (lib/scripts/check.ts). Any consumer
 * not on the new secret keeps the gate shut, named: one restored from a
 * backup, edited by hand or unreachable would otherwise lose its access at
 * the revocation.
 */
import { freshNonce, hmacInput, hmacOf, holding, type Holding } from "../lib/drift";
import { driftCheckScript } from "../lib/scripts/check";
import { hostKeyRefusal, runAt } from "./exec";
import { StepError, redact } from "./outcome";
import type { DriftCheck, SshTarget } from "./types";

/** A consumer's config as the drift check reads it. */
export type DriftTarget = Pick<DriftCheck, "configPath" | "write" | "timeoutSeconds">;

/**
 * Asks one consumer which of these values its config holds: a fresh nonce,
 * the host's HMAC, compared with ours. `users` are the logins a template
 * renders with for each value (postgres-role). Shared by the gate and
 * `bin/rotate check`.
 */
export async function askHolding(
    target: SshTarget,
    c: DriftTarget,
    values: { current: string; previous?: string; staged?: string },
    users: { current?: string; previous?: string } = {},
): Promise<{ holds: Holding; detail?: string }> {
    const nonce = freshNonce();
    const r = await runAt(target, driftCheckScript(c.configPath, c.write, nonce), "", c.timeoutSeconds);
    if (r.timedOut || r.code !== 0) {
        return { holds: "unreachable", detail: hostKeyRefusal(target, r.stderr) ?? (r.timedOut ? `no answer within ${c.timeoutSeconds}s` : r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`) };
    }
    const mac = (v: string | undefined, user?: string) => (v === undefined ? undefined : hmacOf(nonce, hmacInput(c.write, v, user)));
    return holding(r.stdout, { current: mac(values.current, users.current)!, previous: mac(values.previous, users.previous), staged: mac(values.staged, users.current) });
}

/** What one consumer holds, in words, or undefined when it holds the new secret. */
async function askOne(c: DriftCheck, target: SshTarget, next: string, previous: string | undefined, users?: { current: string; previous: string }): Promise<string | undefined> {
    const v = await askHolding(target, c, { current: next, previous }, users);
    if (v.holds === "current") return undefined;
    const what = { previous: "holds the previous secret", staged: "holds a staged secret", unknown: "holds neither the new nor the previous secret", missing: "holds no secret", unreachable: "is unreachable" }[v.holds];
    return `${what}${v.detail ? ` (${v.detail})` : ""}`;
}

/** Resolves when every consumer holds the new secret; otherwise a StepError naming each one that does not. */
export async function checkDrift(title: string, checks: DriftCheck[], hosts: Record<string, SshTarget>, secrets: string[], users?: { current: string; previous: string }): Promise<void> {
    const [next, previous] = secrets;
    const answers = await Promise.all(checks.map(async (c) => ({ c, off: await askOne(c, hosts[c.host], next, previous, users) })));
    const off = answers.filter((a) => a.off !== undefined);
    if (off.length) {
        const redeploy = off.map((a) => `--redeploy ${a.c.consumer}`).join(" ");
        throw new StepError(redact(`${title}: ${off.length} of ${checks.length} consumers are not on the new secret, so nothing is revoked: ${off.map((a) => `${a.c.label} ${a.off}`).join("; ")}. Once they are reachable, deploy the new secret to them again and let the gate ask again: bin/rotate resume --stack <stack> --secret ${checks[0].label.split(" → ")[0]} ${redeploy} --yes`, secrets));
    }
}
