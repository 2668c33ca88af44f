/**
 * The env-file credential store: one file of `KEY=value` lines holding many
 * secrets (a systemd EnvironmentFile, a `.env` on a bastion), on the
 * operator's machine: a host of the inventory is not reached in this first
 * cut. One secret's parts are lines of their own, named after its `key` by
 * ENV_FILE_PARTS (the secret in use, the staged new one, the one the last
 * promotion replaced, the generation whose revocation started); every other
 * line stays byte for byte as it was, its line ending included.
 *
 * Every write holds an flock on `<file>.lock` beside the file (two secrets of
 * one stack in the same file are staged and promoted at the same time), reads
 * the file again under it, and replaces it atomically (a temporary file in
 * the same directory, mode 0600, rename). Values are written as systemd's
 * EnvironmentFile and a shell's `set -a; . file` both read them back: plain
 * when they are only letters, digits and `_@%+=:,./-`, otherwise in double
 * quotes with `\` before `"`, `\`, `$` and backquote. What neither can hold
 * (a line break, bytes that are not UTF-8) is refused at stage, unprinted.
 *
 * The file is parsed in one place, the bash below; `values` and
 * `localCommitted` run it too.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { z } from "zod";
import { localPath } from "../lib/fields";
import { shq } from "../lib/quote";
import { preamble } from "../lib/scripts/common";
import { defineStore, type StoreValues } from "./kind";

/** The lines that hold one secret, by the suffix added to its key. Declared once: every script and check takes the names from here. */
export const ENV_FILE_PARTS = {
    /** The secret in use. */
    current: "",
    /** The new generation, staged until promotion. */
    staged: "_NEW",
    /** The secret the last promotion replaced (bin/rotate check tells a consumer still on it). */
    previous: "_PREVIOUS",
    /** The generation whose revocation started, a plain number; rollback is refused at or below it. */
    committed: "_COMMITTED",
} as const;

export type EnvFilePart = keyof typeof ENV_FILE_PARTS;

/** The variable that holds one part of the secret kept under `key`. */
export const envFileKey = (key: string, part: EnvFilePart = "current") => `${key}${ENV_FILE_PARTS[part]}`;

/** How long a phase waits for another one writing the same file. */
const LOCK_WAIT_SECONDS = 120;

/** Unquoted values a shell and systemd read alike: no quote, escape, expansion, tilde, comment or space. */
const PLAIN = "^[A-Za-z0-9_@%+=:,./-]+$";

/**
 * The bash that reads and edits the file: the parts' names as variables
 * (k_current, k_staged, ...), the file's lines in array L (each with its own
 * ending), ef_get/ef_set/ef_del on them and ef_save. Needs `fail`.
 */
function envFileLib(file: string, key: string): string {
    const parts = (Object.keys(ENV_FILE_PARTS) as EnvFilePart[]).map((p) => `k_${p}=${shq(envFileKey(key, p))}`).join("\n");
    return `export LC_ALL=C
ef_file=${shq(file)}
${parts}
ef_plain=${shq(PLAIN)}
ef_family=("$k_current" "$k_staged" "$k_previous" "$k_committed")
# The file, through any symbolic link (the link stays a link), its lines in L.
ef_load() {
  ef_real=$(readlink -e -- "$ef_file") && [ -f "$ef_real" ] || fail "store: no env file $ef_file (the env-file store of $k_current)"
  tr -d '\\000' < "$ef_real" | cmp -s - "$ef_real" || fail "store: $ef_file holds a NUL byte: not an env file this store can edit"
  L=()
  mapfile L < "$ef_real"
}
# Holds the lock beside the file until the script ends; then loads it.
ef_lock() {
  ef_real=$(readlink -e -- "$ef_file") || fail "store: no env file $ef_file (the env-file store of $k_current)"
  exec 9>>"$ef_real.lock" || fail "store: cannot open the lock file $ef_real.lock"
  flock -w ${LOCK_WAIT_SECONDS} 9 || fail "store: $ef_real.lock was held for ${LOCK_WAIT_SECONDS} s by another run writing $ef_file; try again once it is done"
  ef_load
}
# I: the index of the line setting $1 (returns 1 when none).
ef_index() {
  local i n=0
  I=-1
  for i in "\${!L[@]}"; do
    if [[ \${L[i]} == "$1="* ]]; then I=$i; n=$((n + 1)); fi
  done
  [ "$n" -le 1 ] || fail "store: $ef_file sets $1 on $n lines; keep one"
  [ "$I" -ge 0 ]
}
ef_unreadable() {
  fail "store: the line $1= in $ef_file is in a form this store does not read: write it as $1=\\"...\\" (with \\\\ before \\", \\\\, \\$ and \\\`), $1='...' or unquoted letters, digits and _@%+=:,./-"
}
# V: the value of $1 as systemd and a shell read it (returns 1 when there is no such line).
ef_get() {
  ef_index "$1" || return 1
  local l=\${L[I]} v c out= i=0
  l=\${l%$'\\n'}
  l=\${l%$'\\r'}
  v=\${l#"$1="}
  if [[ \${#v} -ge 2 && $v == \\"*\\" ]]; then
    v=\${v:1:\${#v}-2}
    while [ "$i" -lt "\${#v}" ]; do
      c=\${v:i:1}
      if [ "$c" = '\\' ]; then
        i=$((i + 1))
        c=\${v:i:1}
        case $c in '"' | '\\' | '$' | '\`') out+=$c ;; '') ef_unreadable "$1" ;; *) out+="\\\\$c" ;; esac
      elif [[ $c == '"' || $c == '$' || $c == '\`' ]]; then
        ef_unreadable "$1"
      else
        out+=$c
      fi
      i=$((i + 1))
    done
    V=$out
  elif [[ \${#v} -ge 2 && $v == "'"*"'" && \${v:1:\${#v}-2} != *"'"* ]]; then
    V=\${v:1:\${#v}-2}
  elif [[ $v =~ $ef_plain ]]; then
    V=$v
  else
    ef_unreadable "$1"
  fi
}
# E: the line ending of line $1 (CR LF, LF, or none on an unterminated last line).
ef_end() {
  case \${L[$1]} in *$'\\r\\n') E=$'\\r\\n' ;; *$'\\n') E=$'\\n' ;; *) E= ;; esac
}
# Sets $1 to $2, in place, or on a new line after the secret's last line (the end of the file without one).
ef_set() {
  local v=$2 q a=-1 k
  if [[ $v =~ $ef_plain ]]; then
    q=$v
  else
    v=\${v//'\\'/'\\\\'}
    v=\${v//'"'/'\\"'}
    v=\${v//'$'/'\\$'}
    v=\${v//'\`'/'\\\`'}
    q="\\"$v\\""
  fi
  if ef_index "$1"; then
    ef_end "$I"
    L[I]="$1=$q$E"
    return 0
  fi
  for k in "\${ef_family[@]}"; do
    if ef_index "$k" && [ "$I" -gt "$a" ]; then a=$I; fi
  done
  [ "$a" -ge 0 ] || a=$((\${#L[@]} - 1))
  if [ "$a" -lt 0 ]; then
    L=("$1=$q"$'\\n')
    return 0
  fi
  ef_end "$a"
  [ -n "$E" ] || L[a]+=$'\\n'
  L=("\${L[@]:0:a+1}" "$1=$q$E" "\${L[@]:a+1}")
}
# Removes the line of $1. An unterminated last line goes with its ending: the line before it ends the file as before, when it is this secret's.
ef_del() {
  local k p
  ef_index "$1" || return 0
  ef_end "$I"
  if [ -z "$E" ] && [ "$I" -gt 0 ]; then
    p=\${L[I-1]}
    for k in "\${ef_family[@]}"; do
      if [[ $p == "$k="* ]]; then p=\${p%$'\\n'}; L[I-1]=\${p%$'\\r'}; break; fi
    done
  fi
  unset 'L[I]'
  L=("\${L[@]}")
}
# The file replaced by L, atomically, mode 0600.
ef_save() {
  local tmp
  tmp=$(mktemp "$(dirname -- "$ef_real")/.rotation.XXXXXX") || fail "store: cannot create a temporary file beside $ef_file"
  { printf '%s' "\${L[@]}" > "$tmp" && chmod 600 "$tmp" && mv -f -- "$tmp" "$ef_real"; } || { rm -f -- "$tmp"; fail "store: could not write $ef_file"; }
}
# C: the committed generation (0 when none).
ef_committed() {
  C=0
  if ef_get "$k_committed"; then
    [[ $V =~ ^[0-9]{1,9}$ ]] || fail "store: $k_committed in $ef_file is not a generation number"
    C=$((10#$V))
  fi
}
ef_is() { ef_get "$1" && [ "$V" = "$2" ]; }
ef_mtime() { stat -c %y -- "$ef_real"; }
`;
}

/** The scripts of each phase of a rotation of secret `name` to `generation` in the env file `file`, under `key`. */
export function envFileScripts(file: string, key: string, name: string, generation: number, stack = "<stack>") {
    const lib = envFileLib(file, key);
    const k = shq(generation);
    const lit = (v: string | number) => `"${shq(v)}"`;
    const resumeCmd = `bin/rotate resume --stack ${stack} --yes`;
    const wayBack = `take generation ${lit(generation)} back (${lit(`bin/rotate rollback --stack ${stack} --secret ${name} --yes`)}) or start a new one (${lit(`bin/rotate start --stack ${stack} --secret ${name} --yes`)})`;
    const reused = (which: string) =>
        `fail "store: the new secret of generation ${lit(generation)} is the same as ${which}: once the old one is revoked, that value would be revoked with it. Nothing was staged or granted. Make the generator (secret.generator) give a new value, then ${wayBack}."`;
    const unfit = (why: string) =>
        `fail "store: the new secret of generation ${lit(generation)} ${why}, so $ef_file cannot hold it as $k_staged. Nothing was staged or granted. Make the generator (secret.generator) give such values, then ${wayBack}."`;
    const refuse = (what: string) => `fail "store: ${what}. Nothing was revoked; the old secret still works everywhere."`;
    return {
        /** stdout: the current secret (the previous generation, during a rotation). */
        readCurrent: `set -euo pipefail\nfail() { echo "$*" >&2; exit 1; }\n${lib}ef_load\nef_get "$k_current" || fail "store: no line $k_current= in $ef_file"\nprintf '%s' "$V"\n`,
        /** stdin: the new secret, then the one in use. A new secret equal to either, or to the one before, is refused; so is one the file cannot hold. */
        stage: `${preamble("NEW", "OLD")}${lib}case $NEW in *$'\\n'* | *$'\\r'*) ${unfit("holds a line break, which an env file line cannot")} ;; esac
[ -n "$NEW" ] || ${unfit("is empty")}
printf '%s' "$NEW" | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1 || ${unfit("is not UTF-8 text, which systemd refuses in an environment file")}
[ "$NEW" != "$OLD" ] || ${reused("the secret in use")}
ef_lock
if ef_is "$k_current" "$NEW"; then exit 0; fi # already promoted by an earlier run whose state was lost
! ef_is "$k_previous" "$NEW" || ${reused(`$k_previous in $ef_file (the secret before the one in use)`)}
ef_set "$k_staged" "$NEW"
ef_save
`,
        /** Removes the staged line, but only if it still holds this generation's secret. */
        unstage: `${preamble("NEW")}${lib}ef_lock\nif ef_is "$k_staged" "$NEW"; then ef_del "$k_staged"; ef_save; fi\n`,
        /**
         * The gate: marks that revocation of the previous secret starts now, once
         * the staged line holds the new secret and the line in use the old one.
         * A staged line that went missing (the file rewritten behind the
         * rotation's back, the secret in use kept) is written again and the
         * gate still refuses, so the operator learns of the write; the next run
         * finds it staged and goes on.
         */
        commit: `${preamble("NEW", "OLD")}${lib}ef_lock
ef_committed
if [ "$C" -lt ${k} ]; then
  if ef_is "$k_current" "$NEW"; then
    : # promoted by an earlier run
  elif ef_is "$k_staged" "$NEW"; then
    ef_is "$k_current" "$OLD" || ${refuse(`$k_current in $ef_file no longer holds the secret in use (file modified $(ef_mtime)): written behind this rotation's back after generation ${lit(generation)} was staged; put the secret in use back, then ${lit(resumeCmd)}`)}
  elif ef_index "$k_staged"; then
    ${refuse(`$k_staged in $ef_file holds another secret than generation ${lit(generation)} (file modified $(ef_mtime)): written behind this rotation's back after staging; find out who wrote it, remove the line, then ${lit(resumeCmd)}`)}
  elif ! ef_is "$k_current" "$OLD"; then
    ${refuse(`$k_current in $ef_file no longer holds the secret in use (file modified $(ef_mtime)): written behind this rotation's back after generation ${lit(generation)} was staged; put the secret in use back, then ${lit(resumeCmd)}`)}
  else
    ef_set "$k_staged" "$NEW"
    ef_save
    ${refuse(`the staged copy of generation ${lit(generation)} was missing ($k_staged in $ef_file: removed behind this rotation's back after staging); it was staged again. Find out who wrote the file, then ${lit(resumeCmd)}`)}
  fi
fi
ef_set "$k_committed" ${k}
ef_save
`,
        /**
         * stdin: the new secret. It becomes the line in use, the one it replaces
         * the previous, the staged line goes: one write. Should the staged line
         * have gone missing after the gate, the new secret is current all the
         * same: the previous one is revoked by now and every consumer holds this one.
         */
        promote: `${preamble("NEW")}${lib}ef_lock
if ef_is "$k_current" "$NEW"; then exit 0; fi # already promoted by an earlier, interrupted run
if ef_get "$k_current"; then ef_set "$k_previous" "$V"; fi
ef_set "$k_current" "$NEW"
ef_del "$k_staged"
ef_save
`,
        /** Refuses rollback once revocation of the previous secret has started. */
        rollbackGuard: `set -euo pipefail\nfail() { echo "$*" >&2; exit 1; }\n${lib}C=0
if [ -e "$ef_file" ]; then ef_load; ef_committed; fi
if [ "$C" -ge ${k} ]; then
  echo "rollback refused: revocation of the previous secret started at generation "${k}"; the old secret may already be revoked. Roll forward instead: fix the cause and run up, or start a new generation (bin/rotate start)." >&2
  exit 1
fi
`,
        /** stdout: for current, previous, staged and committed, `1<value>` or `0`, each NUL-terminated (nothing of it is printed). */
        values: `set -euo pipefail\nfail() { echo "$*" >&2; exit 1; }\n${lib}ef_load
for k in "$k_current" "$k_previous" "$k_staged" "$k_committed"; do
  if ef_get "$k"; then printf '1%s\\0' "$V"; else printf '0\\0'; fi
done
`,
        /** Pre-flight, with `problem` defined: the file, its directory writable, flock, the key's line present and every part readable. */
        preflight: `f=${shq(file)}
if [ ! -f "$f" ]; then
  problem "no env file $f (the env-file store of "${shq(key)}")"
else
  d=$(dirname -- "$(readlink -e -- "$f")")
  [ -w "$d" ] || problem "the directory $d is not writable: the env file $f could not be replaced in it"
  command -v flock >/dev/null 2>&1 || problem "flock (util-linux) is not installed: the env-file store locks $f with it"
  why=$( (
    fail() { echo "$*" >&2; exit 1; }
${lib}ef_load
    ef_get "$k_current" || fail "no line $k_current= in $ef_file"
    for k in "$k_staged" "$k_previous"; do ef_get "$k" || :; done
    ef_committed
  ) 2>&1 >/dev/null) || problem "\${why#store: }"
fi`,
    };
}

/** The parts of a secret as the file holds them now (absent parts undefined), read by the scripts' own parser; its values are returned, never printed. */
function readParts(file: string, key: string): { current?: string; previous?: string; staged?: string; committed?: string } {
    const r = spawnSync("bash", ["-c", envFileScripts(file, key, "", 0).values], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    if (r.status !== 0) throw new Error((r.stderr || String(r.error)).trim().replace(/^store: /, ""));
    const [current, previous, staged, committed] = r.stdout.split("\0").map((f) => (f.startsWith("1") ? f.slice(1) : undefined));
    return { current, previous, staged, committed };
}

export const envFileStore = defineStore({
    kind: "env-file",
    schema: z.strictObject({
        kind: z.literal("env-file"),
        /** The env file on the operator's machine; relative to the project directory. */
        path: localPath,
        /** The variable that holds the secret in use; its parts are this name with the suffixes of ENV_FILE_PARTS. */
        key: z
            .string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a variable name") })
            .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "must be a variable name: letters, digits and '_', not starting with a digit (at most 128)"),
    }),
    label: (store) => `env-file store ${store.path} (key ${store.key})`,
    resolve(store, baseDir) {
        store.path = path.resolve(baseDir, store.path);
        return [];
    },
    /** From the file's committed line; 0 when there is none or it cannot be read (the phases' scripts then refuse, saying why). */
    localCommitted(store) {
        let committed: string | undefined;
        try {
            committed = readParts(store.path, store.key).committed;
        } catch {
            return 0;
        }
        const n = Number(committed ?? 0);
        return Number.isInteger(n) && n >= 0 ? n : 0;
    },
    step(store, action, { secret, generation, stack }) {
        const scripts = envFileScripts(store.path, store.key, secret, generation, stack);
        const script = { read: scripts.readCurrent, stage: scripts.stage, commit: scripts.commit, promote: scripts.promote, guard: scripts.rollbackGuard }[
            action
        ];
        return { target: { kind: "local" }, script, ...(action === "stage" ? { deleteScript: scripts.unstage } : {}) };
    },
    preflight: (store, secret) => envFileScripts(store.path, store.key, secret, 0).preflight,
    async values(store): Promise<StoreValues> {
        const { current, previous, staged } = readParts(store.path, store.key);
        return { current, previous, staged };
    },
});
