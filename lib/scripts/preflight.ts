/**
 * Pre-flight: what a rotation needs, checked before anything changes. On each
 * consumer's host: the config file exists, is a file (or a link to one) in a
 * directory the rollout can replace it in, holds the key its write format
 * expects (read as the drift check reads it), the reload command's program
 * exists, there is room for the new file beside it and its `.bak`, and for a
 * log check in a unit's journal, journalctl is there and may read it. At
 * the source and the store (on the operator's machine, or the source's host):
 * the admin credential works and the store is writable.
 *
 * Output: `PREFLIGHT <problem>` per problem, nothing when all is well.
 */
import type { WriteSpec } from "../../writers";
import type { RotationConfig } from "../config";
import { shq } from "../quote";
import type { JournalLogCheck } from "../logCheck";
import { presenceCheckFunctions } from "./check";
import { journalPreflightSnippet } from "./journal";
import { sourceOf } from "../../sources";
import { storeOf } from "../../stores";

/**
 * The reload command's program exists: its first word, when that is a plain
 * program name or path (a command starting with a variable assignment, a
 * subshell or a quote is the operator's own shell; it is not second-guessed).
 */
function reloadProgramCheck(reload: string): string {
    const first = reload.trim().split(/\s+/)[0] ?? "";
    if (!/^[A-Za-z0-9_./+-]+$/.test(first)) return "";
    return `type -t -- ${shq(first)} >/dev/null 2>&1 || problem "the reload command's program "${shq(first)}" is not found on this host"\n`;
}

/**
 * The checks on a consumer's host. The drift check is embedded exactly as
 * built, in a subshell (its `exit`s end only the subshell): no script is
 * rewritten after values are quoted into it, since an indentation that
 * rewrote every newline also rewrote those inside a quoted config path.
 * Its `CHECK missing` message is its last output and names the path, which
 * may run over lines: all of it is kept.
 */
export function consumerPreflightScript(configPath: string, write: WriteSpec, reload: string, journal?: Pick<JournalLogCheck, "unit">): string {
    return `${PREFLIGHT_HEAD}${presenceCheckFunctions("holds", write)}
${consumerPreflightFunction("preflight", "holds", reload, journal)}
preflight ${shq(configPath)}
`;
}

/** What every consumer's pre-flight uses: its problem line, and the free bytes of a directory (asked once per directory). */
const PREFLIGHT_HEAD = `set -uo pipefail
problem() { printf 'PREFLIGHT %s\\n' "$*"; }
declare -A free=()
free_bytes() {
  local a
  if [ -z "\${free[$1]+x}" ]; then a=$(df --output=avail -B1 -- "$1" 2>/dev/null); a=\${a##*$'\\n'}; free[$1]=\${a//[[:space:]]/}; fi
  printf -v avail '%s' "\${free[$1]}"
}
`;

/**
 * One kind of consumer's checks as the shell function `name <config path>`
 * (it returns where a problem leaves nothing more to check); `holds` names
 * the presence check's function (presenceCheckFunctions).
 */
function consumerPreflightFunction(name: string, holds: string, reload: string, journal?: Pick<JournalLogCheck, "unit">): string {
    return `${name}() {
local f=$1 t d size need avail held seen l
t=$f
if [ -L "$f" ]; then t=$(readlink -e -- "$f") || { problem "$f is a symbolic link to nothing"; return 0; }; fi
if [ ! -e "$t" ]; then problem "no config file $f"; return 0; fi
[ -f "$t" ] || { problem "$f is not a regular file"; return 0; }
d=\${t%/*}; d=\${d:-/}
[ -w "$d" ] || problem "the directory $d is not writable: the new config could not replace $f"
${reloadProgramCheck(reload)}${journal ? journalPreflightSnippet(journal) : ""}size=$(stat -c %s -- "$t")
need=$((2 * size + 65536))
free_bytes "$d"
[ -n "$avail" ] && [ "$avail" -lt "$need" ] && problem "only $avail bytes free in $d; the new $f and its .bak need $need"
# Whether the config holds a value, read as its writer writes it: from the first "missing" line on, as problems.
held=$(${holds} "$f")
seen=0
while IFS= read -r l; do
  if [ "$seen" = 0 ]; then case $l in "CHECK missing "*) seen=1; printf 'PREFLIGHT %s\\n' "\${l#CHECK missing }" ;; esac
  else printf '%s\\n' "$l"; fi
done <<<"$held"
}`;
}

/** A consumer whose host's pre-flight runs with its host's others (preflightBatchScript). */
export interface PreflightItem {
    configPath: string;
    write: WriteSpec;
    reload: string;
    journal?: Pick<JournalLogCheck, "unit">;
}

/**
 * Every consumer of one host checked by one script in one shell: each one's
 * problems after a `<boundary> <i>` line (splitBatch). Against a job per
 * consumer, at a thousand consumers: seconds of process starts saved, and
 * `df` asked once per directory, not per consumer. Consumers alike (writer,
 * reload program, journal) share one function, so the script grows by a
 * line or two per consumer.
 */
export function preflightBatchScript(items: PreflightItem[], boundary: string): string {
    if (!/^[A-Za-z0-9-]+$/.test(boundary)) throw new Error("preflightBatchScript: the boundary must be letters, digits and dashes");
    const kinds = new Map<string, { name: string; text: string }>();
    const writers = new Map<string, string>();
    const fns: string[] = [];
    const calls = items.map((it, i) => {
        const wkey = JSON.stringify(it.write);
        if (!writers.has(wkey)) {
            writers.set(wkey, `holds_${writers.size}`);
            fns.push(presenceCheckFunctions(writers.get(wkey)!, it.write));
        }
        const fn = consumerPreflightFunction("NAME", writers.get(wkey)!, it.reload, it.journal);
        if (!kinds.has(fn)) {
            const name = `preflight_${kinds.size}`;
            kinds.set(fn, { name, text: fn.replace(/^NAME\(\)/, `${name}()`) });
            fns.push(kinds.get(fn)!.text);
        }
        return `printf '%s ${i}\\n' "$boundary"; ${kinds.get(fn)!.name} ${shq(it.configPath)}`;
    });
    return `${PREFLIGHT_HEAD}boundary=${boundary}
${fns.join("\n")}
${calls.join("\n")}
`;
}

/**
 * The problems in a pre-flight script's output. A problem runs to the next
 * `PREFLIGHT ` line, not to the end of its own: a config path may hold a
 * newline, and the problem that names the path must name all of it.
 */
export function problemsOf(stdout: string): string[] {
    const body = stdout.endsWith("\n") ? stdout.slice(0, -1) : stdout;
    return `\n${body}`.split("\nPREFLIGHT ").slice(1);
}

const PROBLEM = `set -uo pipefail\nproblem() { printf 'PREFLIGHT %s\\n' "$*"; }\n`;

/** The store's check on the operator's machine, as its kind says (a store behind a server is asked by checkStores). */
export function storePreflightScript(config: RotationConfig): string | undefined {
    const check = storeOf(config.store.kind).preflight?.(config.store, config.secret.name);
    return check === undefined ? undefined : `${PROBLEM}${check}\n`;
}

/** The source's admin credential (or, for an SSH key, its authorized_keys file), checked where the source's scripts run. */
export function sourcePreflightScript(config: RotationConfig): string | undefined {
    const check = sourceOf(config.source.kind).preflight?.(config.source);
    return check === undefined ? undefined : `${PROBLEM}${check}\n`;
}
