import type { ConsumerConfig } from "../config";
import { shq } from "../quote";

/** Health check of a consumer: an URL fetched from the operator's machine, or a command on the host. */
export function healthScript(c: ConsumerConfig): { where: "local" | "host"; script: string } {
    if ("url" in c.health) {
        return {
            where: "local",
            script: `set -uo pipefail
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time ${shq(c.timeoutSeconds)} -- ${shq(c.health.url)})
[ "$code" = ${shq(c.health.expectStatus)} ] || { echo "health check "${shq(c.health.url)}" answered $code, expected "${shq(c.health.expectStatus)} >&2; exit 1; }
`,
        };
    }
    return { where: "host", script: c.health.command };
}

/** Fails when the consumer's log gains lines matching the auth-failure pattern during the window. */
export function logCheckScript(c: ConsumerConfig): string | undefined {
    if (!c.logCheck) return undefined;
    const f = shq(c.logCheck.path);
    return `set -uo pipefail
before=$(stat -c %s -- ${f} 2>/dev/null || echo 0)
sleep ${shq(c.logCheck.windowSeconds)}
if tail -c +$((before + 1)) -- ${f} 2>/dev/null | grep -Eq -- ${shq(c.logCheck.pattern)}; then
  echo "log check: "${f}" shows auth failures after the reload" >&2
  exit 1
fi
`;
}
