/**
 * The building blocks of the `rotation:` schema that every family of kinds
 * (sources/, stores/, generators/, writers/) and lib/configSchema.ts share:
 * field types with their messages, and the connection types they resolve to.
 * It imports no registry, so a kind can use it without a cycle.
 */
import { z } from "zod";

/** Config keys live in the `rotation:` namespace of each stack's config. */
export const CONFIG_NAMESPACE = "rotation";

/** An integer; a missing one is reported as missing, not as "not a whole number". */
export const wholeNumber = () => z.int({ error: (issue) => (issue.input === undefined ? "is required" : "must be a whole number") });
export const noNul = (s: string) => !s.includes("\0");
export const text = z.string().min(1, "must not be empty").refine(noNul, "must not contain a NUL byte");
export const hostname = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$/, "must be a host name or IP address");
export const port = wholeNumber().min(1, "must be 1-65535").max(65535, "must be 1-65535");
export const absPath = text.refine((p) => p.startsWith("/"), "must be an absolute path");
/** Paths on the operator's machine may be relative to the project directory. */
export const localPath = text;
export const unixUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Unix user name");
export const hostKey = z
    .string()
    .regex(/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+$/, "must be an OpenSSH public host key line such as 'ssh-ed25519 AAAA...'");
export const shellCommand = text.refine((s) => s.length <= 4096, "must be at most 4096 characters");
/** z.url() alone accepts any scheme (file:, javascript:, ftp:); these URLs are fetched with curl. */
export const httpUrl = () => z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });
/** A lowercase SQL identifier (PostgreSQL roles, databases). */
export const sqlIdentifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lowercase SQL identifier");

/** The names secrets, hosts and consumers may have (they become parts of resource names). */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A reference to a host of `rotation:hosts`; existence is checked across fields (lib/config.ts). */
export const hostRef = z.string({
    error: (issue) => (issue.input === undefined ? "is required: a host of rotation:hosts" : "must be the name of a host of rotation:hosts"),
});

/** The kinds of secret; a source says which it can rotate. */
export const SECRET_TYPES = ["password", "api-token", "ssh-key"] as const;
export type SecretType = (typeof SECRET_TYPES)[number];

/** A host of `rotation:hosts` as a connection: what a consumer or an SSH source is expanded to. */
export interface HostConnection {
    host: string;
    port: number;
    user: string;
    hostKey?: string;
    hostKeyFile?: string;
    privateKeyFile: string;
}

/** An SSH connection as a step makes it: the host's address, its pinned key, the operator's private key. The one definition. */
export type SshTarget = { kind: "ssh"; host: string; port: number; user: string; hostKey: string; privateKeyFile: string };

/** Where a script runs: the operator's machine, or a host over SSH with its host key pinned. */
export type ScriptTarget = { kind: "local" } | SshTarget;
