/**
 * A source only a person can change (a vendor's console): the grant, the
 * revocation and a rollback's withdrawal each stop the rotation and say what
 * to do; the step goes through once the operator has confirmed it was done
 * (`bin/rotate confirm`, which appends a "confirmed" line to the audit log:
 * who, when, which step, which generation) and the rotation resumes. The
 * steps read that line, so the confirmation is the audit trail itself.
 * The verification is a machine's: `test` gets each secret on stdin,
 * NUL-terminated, as the command source's does. The engine's delete of the
 * previous generation's grant after a rotation is nobody's work: the
 * revocation took it away already (the audit log says so).
 */
import { z } from "zod";
import { shellCommand } from "../lib/fields";
import { shq } from "../lib/quote";
import { preamble } from "../lib/scripts/common";
import { defineSource, type Generations } from "./kind";

/** How a step that waits for a person says so (cli/run.ts gives the run its own exit code when it finds this). */
export const AWAITING_PERSON = "awaiting a person";

/** The exit status of a step that waits for a person (EX_TEMPFAIL): not a failure of the source. */
export const AWAITING_STATUS = 75;

/** The steps a person confirms, as `bin/rotate confirm --step` names them, by the audit phase of the step that waits. */
export const CONFIRMED_STEPS = { granted: "grant", revoked: "revoke", withdrawn: "withdraw" } as const;
export type ConfirmedStep = (typeof CONFIRMED_STEPS)[keyof typeof CONFIRMED_STEPS];

const instruction = z.string().regex(/^[^\r\n\0]{1,500}$/, "must be one line of at most 500 characters saying what a person does");

/**
 * Run with `node -e`: argv is the audit log, stack, secret, generation, step
 * and what to do (none secret). Exit 0 with who confirmed it when the log has
 * the confirmation; else AWAITING_STATUS and the instructions.
 */
const CHECK = `const [log, stack, secret, generation, step, todo] = process.argv.slice(1);
let text = "";
try { text = require("fs").readFileSync(log, "utf8"); } catch {}
let found, revoked;
for (const raw of text.split("\\n")) {
  if (!raw.includes(secret)) continue;
  let l; try { l = JSON.parse(raw); } catch { continue; }
  if (!l || l.stack !== stack || l.secret !== secret || l.outcome !== "ok") continue;
  if (l.generation === Number(generation) && l.phase === "confirmed" && l.step === step) found = l;
  if (l.generation === Number(generation) + 1 && l.phase === "revoked") revoked = l;
}
if (found) { process.stdout.write(step + " of " + secret + " g" + generation + " confirmed by " + found.confirmedBy + " at " + found.time + "\\n"); process.exit(0); }
// The grant of a generation the next one revoked is gone already: withdrawing it is nobody's work.
if (step === "withdraw" && revoked) { process.stdout.write(secret + " g" + generation + " was revoked by generation " + (Number(generation) + 1) + "\\n"); process.exit(0); }
process.stderr.write("${AWAITING_PERSON}: " + todo + "; once it is done: bin/rotate confirm --stack " + stack + " --secret " + secret + " --step " + step + " --yes\\n");
process.exit(${AWAITING_STATUS});
`;

/** The script of a step a person does: passes once the audit log holds its confirmation. */
function confirmed(g: Generations, step: ConfirmedStep, todo: string): string {
    if (!g.stack || !g.auditLog) return `echo ${shq(`manual source of ${g.secretName}: no stack or audit log given to the ${step} step`)} >&2; exit 1\n`;
    const args = [g.auditLog, g.stack, g.secretName, String(g.generation), step, todo].map(shq).join(" ");
    return `set -euo pipefail\nexec node -e ${shq(CHECK)} ${args}\n`;
}

export const manualSource = defineSource({
    kind: "manual",
    schema: z.strictObject({
        kind: z.literal("manual"),
        /** What a person does to enable the new secret beside the old one, e.g. "activate the new key in the vendor console". */
        grant: instruction,
        /** What a person does to revoke the previous secret. */
        revoke: instruction,
        /** What a person does to withdraw the new secret in a rollback; default: "withdraw the new secret (undo: <grant>)". */
        withdraw: instruction.optional(),
        /** Tests a secret given on stdin, NUL-terminated: exit 0 when the source accepts it. */
        test: shellCommand,
    }),
    types: ["password", "api-token"],
    scripts: (src, g) => ({
        target: { kind: "local" },
        grant: confirmed(g, "grant", `${src.grant} (${g.secretName} generation ${g.generation})`),
        withdraw: confirmed(g, "withdraw", `${src.withdraw ?? `withdraw the new secret (undo: ${src.grant})`} (${g.secretName} generation ${g.generation})`),
        revoke: confirmed(g, "revoke", `${src.revoke} (${g.secretName} generation ${g.generation - 1})`),
        verify: `${preamble("OLD", "NEW")}test_one() { printf '%s\\0' "$1" | bash -c ${shq(src.test)} >/dev/null 2>&1; }\ntest_one "$NEW" || fail ${shq(`manual source of ${g.secretName}: the new secret is rejected by the test command (source.test)`)}\n! test_one "$OLD" || fail ${shq(`manual source of ${g.secretName}: the old secret is still accepted by the test command (source.test): was it revoked?`)}\necho "source: old rejected, new accepted"\n`,
    }),
});
