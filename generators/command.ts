/**
 * The `command` generator: a command on the operator's machine prints the
 * new secret (trailing newlines dropped). Without one, a default by secret
 * type: random alphanumerics from openssl, or for an ssh-key a new ed25519
 * private key from ssh-keygen.
 */
import { z } from "zod";
import { shellCommand } from "../lib/fields";
import { shq } from "../lib/quote";
import { defineGenerator, secretLength } from "./kind";

/** Default generator commands; their stdout (trailing newlines dropped) is the secret. */
export function defaultGeneratorCommand(type: string, length: number, comment: string): string {
    if (type === "ssh-key") {
        return `d=$(mktemp -d); ssh-keygen -q -t ed25519 -N '' -C ${shq(comment)} -f "$d/key" </dev/null >/dev/null && cat -- "$d/key"; rc=$?; rm -rf -- "$d"; exit $rc`;
    }
    return `openssl rand -base64 ${shq(length * 3)} | tr -dc 'A-Za-z0-9' | head -c ${shq(length)}`;
}

export const command = defineGenerator({
    kind: "command",
    schema: z.strictObject({
        kind: z.literal("command"),
        /** Runs on the operator's machine; its stdout is the new secret. Defaults by secret type. */
        command: shellCommand.optional(),
        length: secretLength,
    }),
    problems: () => [],
    step(g, secret, generation) {
        const command = g.command ?? defaultGeneratorCommand(secret.type, g.length, `rotation:${secret.name}:g${generation}`);
        return {
            title: `${secret.name}: generate secret g${generation}`,
            target: { kind: "local" as const },
            script: `set -euo pipefail\nv=$( ${command} )\n[ -n "$v" ] || { echo "the generator printed nothing" >&2; exit 1; }\nprintf '%s' "$v"\n`,
        };
    },
    nothing: "the generator printed nothing",
});
