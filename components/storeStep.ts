import { storeOf, type StoreAction } from "../stores";
import type { RotationContext, StoreStepArgs } from "./context";

export type { StoreAction };

/**
 * What a store phase runs, as its store's kind says (stores/): a script on
 * the operator's machine for a file store, a call of the Vault HTTP API in
 * the step provider for a vault store. The new secret, where the phase needs
 * it, comes on stdin either way.
 */
export function storeStep(ctx: RotationContext, action: StoreAction): StoreStepArgs {
    const { config } = ctx;
    return storeOf(config.store.kind).step(config.store, action, { secret: config.secret.name, generation: config.generation, stack: ctx.stack });
}
