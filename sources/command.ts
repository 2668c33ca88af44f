/**
 * The operator's own commands: grant, withdraw, revoke and test, each given
 * the secret on stdin, NUL-terminated (docs/kinds.md, the command source). Any kind
 * of secret; nothing to check before the grant.
 */
import { z } from "zod";
import { shellCommand } from "../lib/fields";
import { shq } from "../lib/quote";
import { preamble } from "../lib/scripts/common";
import { defineSource } from "./kind";

export const command = defineSource({
    kind: "command",
    schema: z.strictObject({
        kind: z.literal("command"),
        /** Each command gets the secret(s) on stdin, NUL-terminated; see docs/kinds.md. */
        grant: shellCommand,
        revoke: shellCommand,
        withdraw: shellCommand,
        test: shellCommand,
    }),
    types: ["password", "api-token", "ssh-key"],
    scripts: (src, g) => ({
        // The operator's own commands read the same NUL-terminated stdin.
        target: { kind: "local" },
        grant: src.grant,
        withdraw: src.withdraw,
        revoke: src.revoke,
        verify: `${preamble("OLD", "NEW")}test_one() { printf '%s\\0' "$1" | bash -c ${shq(src.test)} >/dev/null 2>&1; }\ntest_one "$NEW" || fail ${shq(`command source of ${g.secretName}: the new secret is rejected by the test command (source.test)`)}\n! test_one "$OLD" || fail ${shq(`command source of ${g.secretName}: the old secret is still accepted by the test command (source.test)`)}\necho "source: old rejected, new accepted"\n`,
    }),
});
