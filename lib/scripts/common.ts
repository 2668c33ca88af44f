import { shq } from "../quote";

/**
 * Every script starts strict and reads its secrets from stdin, NUL-terminated,
 * into the named variables. Nothing that holds a secret is echoed; values from
 * config enter only through shq().
 */
export function preamble(...vars: string[]): string {
    const reads = vars.map((v) => `IFS= read -r -d '' ${v} || { echo "missing ${v} on stdin" >&2; exit 2; }`).join("\n");
    return `set -euo pipefail\numask 077\n${reads}\nfail() { echo "$*" >&2; exit 1; }\n`;
}

/** A bash function `name` that writes stdin to `path` atomically (same dir, mode 0600). */
export function atomicWriteFn(): string {
    return `atomic_write() {
  local f=$1 tmp
  tmp=$(mktemp "$(dirname -- "$f")/.rotation.XXXXXX")
  cat > "$tmp" && chmod 600 "$tmp" && mv -f -- "$tmp" "$f" || { rm -f -- "$tmp"; return 1; }
}
`;
}

/** A known_hosts file with one pinned key, for ssh run from a local script. */
export function pinnedKnownHosts(varName: string, host: string, port: number, hostKey: string): string {
    const pattern = port === 22 ? host : `[${host}]:${port}`;
    return `${varName}=$(mktemp)\ntrap 'rm -f -- "$${varName}"' EXIT\nprintf '%s %s\\n' ${shq(pattern)} ${shq(hostKey)} > "$${varName}"\n`;
}

/** Each item's output from a batch's (`<boundary> <i>` lines before each); undefined for one the output lacks (cut short). */
export function splitBatch(stdout: string, count: number, boundary: string): (string | undefined)[] {
    const answers: (string | undefined)[] = Array.from({ length: count }, () => undefined);
    for (const part of `\n${stdout}`.split(`\n${boundary} `).slice(1)) {
        const nl = part.indexOf("\n");
        const i = Number(part.slice(0, nl < 0 ? undefined : nl));
        if (Number.isInteger(i) && i >= 0 && i < count) answers[i] = nl < 0 ? "" : part.slice(nl + 1);
    }
    return answers;
}
