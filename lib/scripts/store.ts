import { shq } from "../quote";
import { atomicWriteFn, preamble } from "./common";

/**
 * The file credential store: `<dir>/<name>` holds the current secret,
 * `<dir>/<name>.new` the staged one, `<dir>/<name>.previous` the one the last
 * promotion replaced (so `bin/rotate check` can tell a consumer still on it),
 * `<dir>/<name>.committed` the generation
 * whose revocation was started (after which rollback is refused). All files
 * mode 0600, written atomically. Scripts run on the operator's machine.
 */
export function fileStoreScripts(dir: string, name: string, generation: number) {
    const current = shq(`${dir}/${name}`);
    const staged = shq(`${dir}/${name}.new`);
    const committed = shq(`${dir}/${name}.committed`);
    const previous = shq(`${dir}/${name}.previous`);
    const same = (file: string, v: string) => `{ [ -f ${file} ] && cmp -s ${file} <(printf '%s' "$${v}"); }`;
    return {
        /** stdout: the current secret (the previous generation, during a rotation). */
        readCurrent: `set -euo pipefail\n[ -f ${current} ] || { echo "store: no current secret at "${current} >&2; exit 1; }\ncat -- ${current}\n`,
        stage: `${preamble("NEW")}${atomicWriteFn()}mkdir -p -- ${shq(dir)}\nprintf '%s' "$NEW" | atomic_write ${staged}\n`,
        /** Removes the staged copy, but only if it is still this generation's. */
        unstage: `${preamble("NEW")}if ${same(staged, "NEW")}; then rm -f -- ${staged}; fi\n`,
        /** Marks that revocation of the previous secret starts now. */
        commit: `set -euo pipefail\nprintf '%s\\n' ${shq(generation)} > ${committed}.tmp && chmod 600 ${committed}.tmp && mv -f -- ${committed}.tmp ${committed}\n`,
        promote: `${preamble("NEW")}if ${same(staged, "NEW")}; then
  chmod 600 ${staged}
  if [ -f ${current} ]; then cp -- ${current} ${previous}.tmp && chmod 600 ${previous}.tmp && mv -f -- ${previous}.tmp ${previous}; fi
  mv -f -- ${staged} ${current}
elif ${same(current, "NEW")}; then
  : # already promoted by an earlier, interrupted run
else
  fail "store: the staged secret for generation "${shq(generation)}" is missing; run the rotation again to re-stage it"
fi
`,
        /** Refuses rollback once revocation of the previous secret has started. */
        rollbackGuard: `set -euo pipefail
if [ -f ${committed} ] && [ "$(cat -- ${committed})" -ge ${shq(generation)} ]; then
  echo "rollback refused: revocation of the previous secret started at generation "${shq(generation)}"; the old secret may already be revoked. Roll forward instead: fix the cause and run up, or start a new generation (bin/rotate start)." >&2
  exit 1
fi
`,
    };
}
