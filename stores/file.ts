/**
 * The file credential store, a directory on the operator's machine: for each
 * secret the parts of stores/fileLayout.ts (the secret in use, the staged new
 * one, the one the last promotion replaced, the generation whose revocation
 * started). All files mode 0600, written atomically. Its scripts run on the
 * operator's machine.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { localPath } from "../lib/fields";
import { shq } from "../lib/quote";
import { atomicWriteFn, preamble } from "../lib/scripts/common";
import { type FileStorePart, fileStorePath } from "./fileLayout";
import { defineStore, type StoreValues } from "./kind";

/** The scripts of each phase of a rotation of secret `name` to `generation` in the store at `dir`. */
export function fileStoreScripts(dir: string, name: string, generation: number, stack = "<stack>") {
    const at = (part: FileStorePart) => fileStorePath(dir, name, part);
    const current = shq(at("current"));
    const staged = shq(at("staged"));
    const committed = shq(at("committed"));
    const previous = shq(at("previous"));
    const same = (file: string, v: string) => `{ [ -f ${file} ] && cmp -s ${file} <(printf '%s' "$${v}"); }`;
    const k = shq(generation);
    /** Promotion keeps the secret it replaces as the previous part (bin/rotate check tells a consumer still on it). */
    const keepPrevious = `if [ -f ${current} ]; then cp -- ${current} ${previous}.tmp && chmod 600 ${previous}.tmp && mv -f -- ${previous}.tmp ${previous}; fi`;
    const resumeCmd = `bin/rotate resume --stack ${stack} --yes`;
    const reused = (which: string) =>
        `fail "store: the new secret of generation ${lit(generation)} is the same as ${which}: once the old one is revoked, that value would be revoked with it. Nothing was staged or granted. Make the generator (secret.generator) give a new value, then take generation ${lit(generation)} back (${lit(`bin/rotate rollback --stack ${stack} --secret ${name} --yes`)}) or start a new one (${lit(`bin/rotate start --stack ${stack} --secret ${name} --yes`)})."`;
    // Inside the double-quoted message: a value from config closes the quotes, enters as shq(), reopens them.
    const lit = (v: string | number) => `"${shq(v)}"`;
    const refuse = (what: string) => `fail "store: ${what}. Nothing was revoked; the old secret still works everywhere."`;
    return {
        /** stdout: the current secret (the previous generation, during a rotation). */
        readCurrent: `set -euo pipefail\n[ -f ${current} ] || { echo "store: no current secret at "${current} >&2; exit 1; }\ncat -- ${current}\n`,
        /** stdin: the new secret, then the one in use. A new secret equal to either, or to the one before, is refused. */
        stage: `${preamble("NEW", "OLD")}${atomicWriteFn()}mkdir -p -- ${shq(dir)}
[ "$NEW" != "$OLD" ] || ${reused("the secret in use")}
if ${same(current, "NEW")}; then exit 0; fi # already promoted by an earlier run whose state was lost
! ${same(previous, "NEW")} || ${reused(`${lit(at("previous"))} (the secret before the one in use)`)}
printf '%s' "$NEW" | atomic_write ${staged}
`,
        /** Removes the staged copy, but only if it is still this generation's. */
        unstage: `${preamble("NEW")}if ${same(staged, "NEW")}; then rm -f -- ${staged}; fi\n`,
        /**
         * The gate: marks that revocation of the previous secret starts now, once
         * the staged copy is still there byte for byte. A copy that went missing
         * (the store written behind the rotation's back, the secret in use kept)
         * is written again and the gate still refuses, so the operator learns of
         * the write; the next run finds it staged and goes on.
         */
        commit: `${preamble("NEW", "OLD")}${atomicWriteFn()}if ! { [ -f ${committed} ] && [ "$(cat -- ${committed})" -ge ${k} ]; }; then
  if ${same(staged, "NEW")} || ${same(current, "NEW")}; then
    :
  elif [ -e ${staged} ]; then
    ${refuse(`${lit(at("staged"))} holds another secret than generation ${lit(generation)} (modified $(stat -c %y -- ${staged})): written behind this rotation's back after staging; find out who wrote it, remove it, then ${lit(resumeCmd)}`)}
  elif ! ${same(current, "OLD")}; then
    ${refuse(`${lit(at("current"))} no longer holds the secret in use (modified $(stat -c %y -- ${current} 2>/dev/null || echo never)): written behind this rotation's back after generation ${lit(generation)} was staged; put the secret in use back, then ${lit(resumeCmd)}`)}
  else
    printf '%s' "$NEW" | atomic_write ${staged}
    ${refuse(`the staged copy of generation ${lit(generation)} was missing (${lit(at("staged"))}: removed behind this rotation's back after staging); it was staged again. Find out who wrote the store, then ${lit(resumeCmd)}`)}
  fi
fi
printf '%s\\n' ${k} > ${committed}.tmp && chmod 600 ${committed}.tmp && mv -f -- ${committed}.tmp ${committed}
`,
        /**
         * stdin: the new secret. The staged copy becomes current. Should it have
         * gone missing after the gate, the new secret is current all the same:
         * the previous one is revoked by now and every consumer holds this one.
         */
        promote: `${preamble("NEW")}${atomicWriteFn()}if ${same(staged, "NEW")}; then
  chmod 600 ${staged}
  ${keepPrevious}
  mv -f -- ${staged} ${current}
elif ${same(current, "NEW")}; then
  : # already promoted by an earlier, interrupted run
else
  ${keepPrevious}
  printf '%s' "$NEW" | atomic_write ${current}
  rm -f -- ${staged}
fi
`,
        /** Refuses rollback once revocation of the previous secret has started. */
        rollbackGuard: `set -euo pipefail
if [ -f ${committed} ] && [ "$(cat -- ${committed})" -ge ${k} ]; then
  echo "rollback refused: revocation of the previous secret started at generation "${k}"; the old secret may already be revoked. Roll forward instead: fix the cause and run up, or start a new generation (bin/rotate start)." >&2
  exit 1
fi
`,
    };
}

/** The generation whose revocation was started, from the store's marker (0 when none). */
export function committedGeneration(storeDir: string, secretName: string): number {
    const marker = fileStorePath(storeDir, secretName, "committed");
    if (!fs.existsSync(marker)) return 0;
    const n = Number(fs.readFileSync(marker, "utf8").trim());
    return Number.isInteger(n) && n >= 0 ? n : 0;
}

export const fileStore = defineStore({
    kind: "file",
    schema: z.strictObject({ kind: z.literal("file"), dir: localPath }),
    label: (store, secret) => `file store ${fileStorePath(store.dir, secret)}`,
    resolve(store, baseDir) {
        store.dir = path.resolve(baseDir, store.dir);
        return [];
    },
    localCommitted: (store, secret) => committedGeneration(store.dir, secret),
    step(store, action, { secret, generation, stack }) {
        const scripts = fileStoreScripts(store.dir, secret, generation, stack);
        const script = { read: scripts.readCurrent, stage: scripts.stage, commit: scripts.commit, promote: scripts.promote, guard: scripts.rollbackGuard }[
            action
        ];
        return { target: { kind: "local" }, script, ...(action === "stage" ? { deleteScript: scripts.unstage } : {}) };
    },
    preflight: (store, secret) => `dir=${shq(store.dir)}
[ -d "$dir" ] && [ -w "$dir" ] || problem "$dir is not a writable directory"
[ -f ${shq(fileStorePath(store.dir, secret))} ] || problem "no current secret at "${shq(fileStorePath(store.dir, secret))}`,
    async values(store, secret): Promise<StoreValues> {
        const read = (part: FileStorePart) => {
            const f = fileStorePath(store.dir, secret, part);
            return fs.existsSync(f) ? fs.readFileSync(f, "utf8") : undefined;
        };
        return { current: read("current"), previous: read("previous"), staged: read("staged") };
    },
});
