/**
 * The registry of credential store kinds: one line per kind. The order is the
 * order an unknown `kind` is answered with.
 */
import { z } from "zod";
import { envFileStore } from "./envFile";
import { fileStore } from "./file";
import type { StoreKind } from "./kind";
import { kubernetesSecretStore } from "./kubernetesSecret";
import { vaultStore } from "./vault";

export const STORES = [fileStore, vaultStore, envFileStore, kubernetesSecretStore] as const;

type Kind = (typeof STORES)[number];
/** A store as written in the stack config (and, resolved, as the components see it). */
export type StoreConfig = z.output<Kind["schema"]>;

/** The `store` member of a secret: one of the kinds, by `kind`. */
export const storeSchema = z.discriminatedUnion("kind", STORES.map((s) => s.schema) as unknown as [Kind["schema"], ...Kind["schema"][]]);

/** The kind of a store; every kind the schema admits is registered. */
export function storeOf(kind: string): StoreKind {
    const k = STORES.find((s) => s.kind === kind);
    if (!k) throw new Error(`unknown store kind ${JSON.stringify(kind)}: must be one of ${STORES.map((s) => JSON.stringify(s.kind)).join(", ")}`);
    return k as unknown as StoreKind;
}

export type { StoreAction, StoreStep, StoreValues } from "./kind";
