/**
 * What a notification sink kind is: one module per kind (notify/<kind>.ts),
 * registered by one line in notify/index.ts, like the stores and sources.
 * A kind says how it is written in the stack config, which events it takes
 * when the routes do not say, and how one event becomes its HTTP requests.
 * Its URL and keys come from files (not readable by group or others) or
 * the environment, never from the stack file or a command line, and are
 * never printed: messages name the field, not the value.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import type { EventName, NotifyEvent } from "./event";

/** An environment variable's name. */
export const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "must be an environment variable's name");

/** A sink's credentials once read: its URL and, for some kinds, a key. Never printed. */
export interface SinkCredentials {
    url: string;
    key?: string;
}

/** One HTTP request a sink makes for an event: POST `url` with `body` (JSON). */
export interface SinkRequest {
    /** What the request is, in the sink's words (e.g. "trigger", "resolve", "change"). */
    action: string;
    url: string;
    headers: Record<string, string>;
    body: string;
}

export interface SinkKind<Schema extends z.ZodObject = z.ZodObject> {
    /** The `kind` literal; also in the schema. */
    readonly kind: string;
    /** Its member of the `sinks.<name>` union, as written in the stack config. */
    readonly schema: Schema;
    /** The events it gets when `rotation:notify.routes` does not name it. */
    readonly defaultEvents: readonly EventName[];
    /** Reads its URL and keys from their files or variables; each problem names its field under `at`. */
    credentials(sink: z.output<Schema>, baseDir: string, at: string, env: NodeJS.ProcessEnv): { problems: string[]; credentials?: SinkCredentials };
    /** The requests for one event (none: this kind has nothing to say about it). */
    requests(sink: z.output<Schema>, credentials: SinkCredentials, event: NotifyEvent, deliveryId: string): SinkRequest[];
}

/** Declares a sink kind; the types of its methods follow from its schema. */
export function defineSink<Schema extends z.ZodObject>(kind: SinkKind<Schema>): SinkKind<Schema> {
    return kind;
}

/**
 * One credential: from `<name>File` (relative to the project, not readable
 * by group or others, trailing whitespace dropped) or `<name>Env`. Exactly
 * one of the two, unless `fallback` gives a default.
 */
export function readCredential(
    sink: Record<string, unknown>,
    name: string,
    baseDir: string,
    at: string,
    env: NodeJS.ProcessEnv,
    fallback?: string,
): { problem?: string; value?: string } {
    const file = sink[`${name}File`] as string | undefined;
    const variable = sink[`${name}Env`] as string | undefined;
    if (file !== undefined && variable !== undefined) return { problem: `${at}: set only one of ${name}File or ${name}Env` };
    if (variable !== undefined) {
        const v = env[variable]?.trim();
        return v ? { value: v } : { problem: `${at}.${name}Env: the environment variable ${variable} is not set (or empty)` };
    }
    if (file === undefined) return fallback !== undefined ? { value: fallback } : { problem: `${at}: set ${name}File (a file, mode 0600) or ${name}Env` };
    const abs = path.resolve(baseDir, file);
    let st: fs.Stats;
    try {
        st = fs.statSync(abs);
    } catch {
        return { problem: `${at}.${name}File: ${file} does not exist` };
    }
    if (!st.isFile()) return { problem: `${at}.${name}File: ${file} is not a file` };
    if (st.mode & 0o077) return { problem: `${at}.${name}File: ${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it` };
    let value: string;
    try {
        value = fs.readFileSync(abs, "utf8").trim();
    } catch (e) {
        return { problem: `${at}.${name}File: ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? "error"})` };
    }
    return value ? { value } : { problem: `${at}.${name}File: ${file} is empty` };
}

/** The URL read by readCredential, checked to be http(s) without naming it. */
export function checkUrl(r: { problem?: string; value?: string }, at: string, name = "url"): { problem?: string; value?: string } {
    if (r.problem || r.value === undefined) return r;
    let u: URL;
    try {
        u = new URL(r.value);
    } catch {
        return { problem: `${at}: the ${name} read from ${name}File or ${name}Env is not a URL` };
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") return { problem: `${at}: the ${name} read from ${name}File or ${name}Env must be http(s)` };
    return r;
}
