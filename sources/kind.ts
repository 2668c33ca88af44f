/**
 * What a secret source kind is: everything the rotation needs to know of one
 * kind of source, in one module (sources/<kind>.ts), registered by one line
 * in sources/index.ts. The source is where a secret is valid: a grant enables
 * the new one beside the old (dual-active), the revocation ends the old, the
 * verification proves the old fails and the new works.
 */
import type { z } from "zod";
import type { HostConnection, ScriptTarget, SecretType } from "../lib/fields";

/**
 * What the rotation does at the source, as scripts. Secrets arrive on stdin
 * (lib/scripts/common.ts preamble): grant and withdraw get the new credential,
 * revoke the previous one, verify both (previous first). For an ssh-key source
 * the grant material is the public key, the verify material the private keys.
 */
export interface SourceScripts {
    /** Where grant, withdraw and revoke run (verify always runs locally). */
    target: ScriptTarget;
    grant: string;
    withdraw: string;
    revoke: string;
    verify: string;
}

export interface Generations {
    /** The generation being rolled out. */
    generation: number;
    secretName: string;
    /** The stack, and the audit log its steps append to: a source whose steps a person confirms (manual) reads the confirmations there. */
    stack?: string;
    auditLog?: string;
}

/** What resolving a source may ask of the machine it runs on (lib/resolve.ts). */
export interface SourceResolution {
    /** A file on the operator's machine named by field `field` of the source: made absolute and checked to exist. */
    file(field: string, p: string): string;
    /** The pinned key of a host of rotation:hosts, by name. */
    hostKey(host: string): string | undefined;
}

/**
 * One kind of source. `Written` is its member of `source` as the stack config
 * has it; `Resolved` what the components see (hosts expanded; the same when
 * it names no host).
 */
export interface SourceKind<Schema extends z.ZodObject = z.ZodObject, Resolved = z.output<Schema>> {
    /** The `kind` literal; also in the schema. */
    readonly kind: string;
    /** Its member of the `source` union, as written in the stack config. */
    readonly schema: Schema;
    /** The kinds of secret it can rotate. */
    readonly types: readonly SecretType[];
    /** The hosts of rotation:hosts it names (each must exist; the ceremony's plan covers them). */
    hostRefs?(written: z.output<Schema>): string[];
    /** The source with its host references expanded; without it, the source is used as written. */
    expand?(written: z.output<Schema>, hostOf: (ref: string) => HostConnection): Resolved;
    /** A source whose credential is a login and password pair: the login of generation `g`. */
    login?(src: Resolved, g: number): string;
    /** Makes its local files absolute (in place) and returns the pinned key of the host its scripts run on, if any. */
    // biome-ignore lint/suspicious/noConfusingVoidType: a kind with no host to report returns nothing
    resolve?(src: Resolved, written: z.output<Schema>, on: SourceResolution): { hostKey?: string } | void;
    /** Grant, withdraw, revoke and verify at this source. */
    scripts(src: Resolved, g: Generations, hostKey?: string): SourceScripts;
    /**
     * The pre-flight's check of the source's admin credential, run where its
     * scripts run: bash calling `problem "<text>"` per problem (lib/scripts/preflight.ts
     * defines it). None when there is nothing to ask before the grant.
     */
    preflight?(src: Resolved): string;
}

/** Declares a source kind; the types of its methods follow from its schema. */
export function defineSource<Schema extends z.ZodObject, Resolved = z.output<Schema>>(kind: SourceKind<Schema, Resolved>): SourceKind<Schema, Resolved> {
    return kind;
}
