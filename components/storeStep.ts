import type { VaultAction } from "../lib/vault";
import { fileStoreScripts } from "../lib/scripts/store";
import { LOCAL, type RotationContext, type StoreStepArgs } from "./context";

/** The store phases of a rotation. "stage" is undone (the staged copy removed) when its step is deleted. */
export type StoreAction = Exclude<VaultAction, "unstage">;

/**
 * What a store phase runs, by store kind: a script on the operator's machine
 * for a file store (lib/scripts/store.ts), a call of the Vault HTTP API in the
 * step provider for a vault store (lib/vault.ts). The new secret, where the
 * phase needs it, comes on stdin either way.
 */
export function storeStep(ctx: RotationContext, action: StoreAction): StoreStepArgs {
    const { config } = ctx;
    const { store } = config;
    if (store.kind === "vault") return { op: "vault", vault: { action, store, generation: config.generation } };
    const scripts = fileStoreScripts(store.dir, config.secret.name, config.generation, ctx.stack);
    const script = { read: scripts.readCurrent, stage: scripts.stage, commit: scripts.commit, promote: scripts.promote, guard: scripts.rollbackGuard }[action];
    return { target: LOCAL, script, ...(action === "stage" ? { deleteScript: scripts.unstage } : {}) };
}
