/**
 * What a credential store kind is: everything the rotation needs of one kind
 * of store, in one module (stores/<kind>.ts), registered by one line in
 * stores/index.ts. The store keeps the secret in use, the new one staged
 * beside it, the one before (for `check`), and the generation whose
 * revocation started (after which rollback is refused).
 */
import type { z } from "zod";
import type { VaultStepSpec } from "../adapters/vault";
import type { ScriptTarget } from "../lib/fields";
import type { KubernetesStepSpec } from "./kubernetesApi";

/** The phases of a rotation at its store. "stage" is undone (the staged copy removed) when its step is deleted. */
export type StoreAction = "read" | "stage" | "commit" | "promote" | "guard";

/**
 * What a store phase runs: a script on the operator's machine (with its undo,
 * for "stage"), or a call the step provider makes itself (op "vault",
 * "kubernetes"; a "stage" is undone by the same call's "unstage"). The new
 * secret, where the phase needs it, comes on stdin either way; "read" prints
 * the secret in use.
 */
export type StoreStep =
    | { target: ScriptTarget; script: string; deleteScript?: string }
    | { op: "vault"; vault: VaultStepSpec }
    | { op: "kubernetes"; kubernetes: KubernetesStepSpec };

/** The store's values of one secret, for `bin/rotate check` (never printed). */
export interface StoreValues {
    current?: string;
    previous?: string;
    staged?: string;
}

export interface StoreKind<Schema extends z.ZodObject = z.ZodObject> {
    /** The `kind` literal; also in the schema. */
    readonly kind: string;
    /** Its member of the `store` union, as written in the stack config. */
    readonly schema: Schema;
    /** How messages name the store (a directory, a server and path). */
    label(store: z.output<Schema>, secret: string): string;
    /**
     * Completes the store's settings on this machine, in place: paths made
     * absolute against `baseDir` and present, defaults from the environment.
     * Returns the problems, each naming its field under `at` (e.g. `secrets.app.store`).
     */
    resolve(store: z.output<Schema>, baseDir: string, at: string): string[];
    /** A store on this machine: the generation whose revocation started, read while the config is resolved (0: none). */
    localCommitted?(store: z.output<Schema>, secret: string): number;
    /** A store behind a server: asked before anything is registered whether it answers, holds the secret, and its committed generation. */
    ask?(store: z.output<Schema>, secret: string): Promise<{ committed: number; exists: boolean }>;
    /** What each phase of a rotation to `generation` runs. */
    step(store: z.output<Schema>, action: StoreAction, at: { secret: string; generation: number; stack: string }): StoreStep;
    /** The pre-flight's check, on the operator's machine: bash calling `problem "<text>"` per problem. */
    preflight?(store: z.output<Schema>, secret: string): string;
    /** The current, previous and staged values (bin/rotate check). */
    values(store: z.output<Schema>, secret: string): Promise<StoreValues>;
}

/** Declares a store kind; the types of its methods follow from its schema. */
export function defineStore<Schema extends z.ZodObject>(kind: StoreKind<Schema>): StoreKind<Schema> {
    return kind;
}
