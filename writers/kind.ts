/**
 * What a config writer is: one way of putting the secret into a consumer's
 * config file (a YAML key, a KEY=value line, a whole-file template), in one
 * module (writers/<kind>.ts), registered by one line in writers/index.ts.
 * The rollout rewrites the file with it on the operator's machine
 * (provider/rollout.ts); the drift check reads the value back on the host by
 * the same rules (lib/scripts/check.ts), so what one writes the other finds.
 */
import type { z } from "zod";

/** One kind of writer; `Schema` is its member of a consumer's `write` union. */
export interface WriterKind<Schema extends z.ZodObject = z.ZodObject> {
    /** The `format` literal; also in the schema. */
    readonly format: string;
    /** Its member of the `write` union, as written in the stack config. */
    readonly schema: Schema;
    /**
     * The consumer's new config content for this secret (and, for a
     * generational login, its user). Keeps every other byte, comment and line
     * ending; throws, naming the key, when the file has no place for it.
     */
    rewrite(spec: z.output<Schema>, current: string, secret: string, user?: string): string;
    /**
     * What the host HMACs for a config holding `secret`: the value its key
     * holds, or for a whole-file writer the file (lib/drift.ts computes the same).
     */
    checked(spec: z.output<Schema>, secret: string, user?: string): string;
    /**
     * The drift check's part for this writer, run on the host as the body of
     * a shell function after the common head (lib/scripts/check.ts), which
     * sets `f` (the config path) and gives `emit <value>` (answers a value
     * found) and `emit_file <path>` (answers a whole file). Calls one of them
     * per value found, or prints one `CHECK missing <why>` and `return`s
     * (never `exit`: a host's consumers are checked in one script).
     */
    driftCheck(spec: z.output<Schema>): string;
    /** Whether it writes a per-generation login too (a postgres-role credential is a user and password pair). */
    writesUser(spec: z.output<Schema>): boolean;
    /** What to change when it must write the login and does not, e.g. "set userKey". */
    readonly howToWriteUser: string;
    /** The fields that name where a login goes, when set: refused for a source that has no per-generation login. */
    userFields(spec: z.output<Schema>): string[];
}

/** Declares a writer; the types of its methods follow from its schema. */
export function defineWriter<Schema extends z.ZodObject>(writer: WriterKind<Schema>): WriterKind<Schema> {
    return writer;
}

/** A spec that names a key for the secret and, optionally, one for the login. */
interface KeyedSpec {
    key: string;
    userKey?: string;
}

/**
 * What the writers that set one key's value (yaml-key, env-line) share: the
 * secret into `key`, the login into `userKey` when both are given, and the
 * host HMACs the key's value. `set` replaces one key's value in the content.
 */
export function keyedWriter(set: (content: string, key: string, value: string) => string) {
    return {
        rewrite(spec: KeyedSpec, current: string, secret: string, user?: string): string {
            const withSecret = set(current, spec.key, secret);
            return spec.userKey && user !== undefined ? set(withSecret, spec.userKey, user) : withSecret;
        },
        checked: (_spec: KeyedSpec, secret: string) => secret,
        writesUser: (spec: KeyedSpec) => !!spec.userKey,
        howToWriteUser: "set userKey",
        userFields: (spec: KeyedSpec) => (spec.userKey ? ["userKey"] : []),
    };
}
