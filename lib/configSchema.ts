/**
 * The `rotation:` stack config schema (zod): every field, its default and its
 * message. Parsing and the checks across fields are in config.ts.
 */
import { z } from "zod";
import { generatorSchema as generator } from "../generators";
import { writeSchema as write } from "../writers";
import { rolloutSchema } from "./waves";
import { windowSchema } from "./window";

/** Why a secret is rotated, as the runbook's audit trail names it. */
export const REASONS = ["scheduled", "incident", "personnel-change", "audit-finding"] as const;
export type Reason = (typeof REASONS)[number];

/** Config keys live in the `rotation:` namespace of each stack's config. */
export const CONFIG_NAMESPACE = "rotation";

/**
 * One raw `rotation:` value as Pulumi hands it over: an object or list
 * arrives as a JSON string. A string that looks like JSON but does not parse
 * is returned as it is, flagged.
 */
export function decodeConfigValue(value: unknown): { value: unknown; invalidJson: boolean } {
    if (typeof value !== "string" || !/^\s*[[{]/.test(value)) return { value, invalidJson: false };
    try {
        return { value: JSON.parse(value), invalidJson: false };
    } catch {
        return { value, invalidJson: true };
    }
}

/** An integer; a missing one is reported as missing, not as "not a whole number". */
const wholeNumber = () => z.int({ error: (issue) => (issue.input === undefined ? "is required" : "must be a whole number") });
const noNul = (s: string) => !s.includes("\0");
const text = z.string().min(1, "must not be empty").refine(noNul, "must not contain a NUL byte");
const name = z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be 1-63 lowercase letters, digits or '-', starting with a letter or digit");
const hostname = z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$/, "must be a host name or IP address");
const port = wholeNumber().min(1, "must be 1-65535").max(65535, "must be 1-65535");
const absPath = text.refine((p) => p.startsWith("/"), "must be an absolute path");
/** Paths on the operator's machine may be relative to the project directory. */
const localPath = text;
const hostKey = z
    .string()
    .regex(/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+$/, "must be an OpenSSH public host key line such as 'ssh-ed25519 AAAA...'");
const shellCommand = text.refine((s) => s.length <= 4096, "must be at most 4096 characters");
/** z.url() alone accepts any scheme (file:, javascript:, ftp:); these URLs are fetched with curl. */
const httpUrl = () => z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });

/** The ceremony's witnesses of one generation: the request and who made and approved it, as their signatures say (lib/ceremony.ts). */
const principal = z.string().regex(/^[^\s"\\]{1,200}$/, "must be an allowed signer's principal");
const requestId = z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, "must be a request id");
const witnessSchema = z.strictObject({ request: requestId, requester: principal, approver: principal });
/**
 * In the stack config: which request approves this generation. The program
 * reads the witnesses from the request's signatures (lib/gates.ts); a
 * `requester` or `approver` written here (as 0.3 did) is never believed.
 */
const approvalSchema = z.strictObject({ request: requestId, requester: principal.optional(), approver: principal.optional() });

/**
 * Leave to rotate one generation outside the secret's window: for which
 * generation, who decided and why. Every audit line of that generation
 * records it; for any other generation it is ignored. `false` (or the 0.3
 * `true`, which says neither who nor why) is no leave.
 */
const windowOverride = z.strictObject({
    generation: z.preprocess((v) => (typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v), wholeNumber().min(1, "must be 1 or more")),
    by: text.refine((s) => s.length <= 100 && !/[\r\n]/.test(s), "must be one line of at most 100 characters"),
    why: text.refine((s) => s.length <= 200 && !/[\r\n]/.test(s), "must be one line of at most 200 characters"),
});

/** How to reach a host over SSH; the host key is pinned, inline or from a file. */
const sshFields = {
    host: hostname,
    port: port.default(22),
    user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Unix user name"),
    hostKey: hostKey.optional(),
    hostKeyFile: localPath.optional(),
    privateKeyFile: localPath,
};

const secret = z.strictObject({
    name,
    type: z.enum(["password", "api-token", "ssh-key"]),
    generator: generator.default({ kind: "random", length: 32, upper: true, lower: true, numeric: true, special: false }),
    /** Why this generation: one of REASONS (the runbook's list); free text goes in `note`. */
    reason: z.enum(REASONS, { error: `must be one of ${REASONS.join(", ")} (free text goes in note)` }).default("scheduled"),
    /** A free note for the audit line, e.g. the incident's ticket. */
    note: text.refine((s) => s.length <= 200 && !/[\r\n]/.test(s), "must be one line of at most 200 characters").optional(),
    schedule: z
        .string()
        .regex(/^[1-9][0-9]{0,3}[dw]$/, "must be an interval such as '90d' or '12w'")
        .optional(),
    operator: text.refine((s) => s.length <= 100 && !/[\r\n]/.test(s), "must be one line of at most 100 characters"),
});

const store = z.discriminatedUnion("kind", [
    z.strictObject({ kind: z.literal("file"), dir: localPath }),
    z.strictObject({
        kind: z.literal("vault"),
        /** The Vault (or OpenBao) server; default: the VAULT_ADDR environment variable. */
        address: httpUrl().optional(),
        mount: z.string().regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, "must be a KV v2 mount path such as 'secret'"),
        path: z
            .string()
            .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_.-]+)*$/, "must be a KV path such as 'apps/redis' (letters, digits, '_', '-', '.', separated by '/')")
            .refine((p) => !p.split("/").some((s) => s === "." || s === ".."), "must not contain '.' or '..' segments"),
        /** CA bundle that signs the server's certificate; default: VAULT_CACERT. */
        caFile: localPath.optional(),
        /** Enterprise / OpenBao namespace (X-Vault-Namespace); default: VAULT_NAMESPACE. */
        namespace: z.string().regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*\/?$/, "must be a namespace path such as 'team-a'").optional(),
        /** How the operator authenticates; the token never enters config, state or a command line. */
        auth: z
            .discriminatedUnion("method", [
                z.strictObject({
                    method: z.literal("token"),
                    /** A file holding the token; default: the VAULT_TOKEN environment variable. */
                    tokenFile: localPath.optional(),
                }),
                z.strictObject({
                    method: z.literal("approle"),
                    roleIdFile: localPath,
                    secretIdFile: localPath,
                    /** Where the AppRole auth method is mounted. */
                    mount: z.string().regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, "must be an auth mount path such as 'approle'").default("approle"),
                }),
            ])
            .default({ method: "token" }),
    }),
]);

const adminPasswordFile = localPath;
const source = z.discriminatedUnion("kind", [
    z.strictObject({
        kind: z.literal("redis-acl"),
        host: hostname,
        port: port.default(6379),
        user: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be a Redis ACL user name"),
        adminUser: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be a Redis ACL user name"),
        adminPasswordFile,
    }),
    z.strictObject({
        kind: z.literal("postgres-role"),
        host: hostname,
        port: port.default(5432),
        database: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lowercase SQL identifier"),
        group: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lowercase SQL identifier"),
        /** Generation N logs in as `${loginPrefix}${N}`. */
        loginPrefix: z.string().regex(/^[a-z_][a-z0-9_]{0,50}$/, "must be a lowercase SQL identifier prefix"),
        /** The login in use before the first managed rotation; defaults to `${loginPrefix}0`. */
        initialLogin: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lowercase SQL identifier").optional(),
        adminUser: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lowercase SQL identifier"),
        adminPasswordFile,
    }),
    z.strictObject({
        kind: z.literal("ssh-authorized-key"),
        ...sshFields,
        /** The authorized_keys file on the target whose lines the rotation edits. */
        authorizedKeysFile: absPath,
        /** The account the rotated key logs into (what consumers use). */
        loginUser: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Unix user name"),
    }),
    z.strictObject({
        kind: z.literal("http-token"),
        /** POST with JSON {name, token} creates a token. */
        createUrl: httpUrl(),
        /** DELETE removes a token; `{fingerprint}` is replaced by the first 16 hex digits of its SHA-256. */
        deleteUrl: httpUrl().refine((u) => u.includes("%7Bfingerprint%7D") || u.includes("{fingerprint}"), "must contain {fingerprint}"),
        /** GET with `Authorization: Bearer <token>` answers 200 for a valid token. */
        testUrl: httpUrl(),
        adminTokenFile: localPath,
        /** The CA bundle that signs the API's certificate (https with a private CA); default: the system's CAs. */
        caFile: localPath.optional(),
    }),
    z.strictObject({
        kind: z.literal("command"),
        /** Each command gets the secret(s) on stdin, NUL-terminated; see README. */
        grant: shellCommand,
        revoke: shellCommand,
        withdraw: shellCommand,
        test: shellCommand,
    }),
]);

const health = z.union([
    z.strictObject({ command: shellCommand }),
    z.strictObject({ url: httpUrl(), expectStatus: wholeNumber().min(100, "must be 100-599").max(599, "must be 100-599").default(200) }),
], { error: 'must be either {command} (run on the host) or {url, expectStatus} (fetched from the operator\'s machine)' });

const consumer = z
    .strictObject({
        name,
        ...sshFields,
        configPath: absPath,
        write,
        reload: shellCommand,
        health,
        retries: wholeNumber().min(0, "must be 0-30").max(30, "must be 0-30").default(5),
        retryDelaySeconds: z.number().min(0, "must be 0-60").max(60, "must be 0-60").default(2),
        timeoutSeconds: wholeNumber().min(1, "must be 1-300").max(300, "must be 1-300").default(15),
        logCheck: z
            .strictObject({
                path: absPath,
                /** An extended regular expression (grep -E) that marks an auth failure. */
                pattern: text,
                windowSeconds: wholeNumber().min(1, "must be 1-60").max(60, "must be 1-60").default(3),
            })
            .optional(),
    });

/**
 * One secret's rotation as the components see it: the secret's entry of
 * `rotation:secrets` with each consumer's (and an SSH source's) host
 * expanded from `rotation:hosts`. Built by lib/config.ts after validation;
 * never parsed from YAML.
 */
const rotationConfigSchema = z.strictObject({
    generation: wholeNumber().min(0, "must be 0 or more"),
    mode: z.enum(["rotate", "rollback"]).default("rotate"),
    secret,
    store,
    source,
    consumers: z.array(consumer.extend({ hostName: z.string().optional() })).min(1, "must list at least one consumer"),
    /** JSON-lines audit log on the operator's machine. */
    auditLog: localPath.default(".state/audit.log"),
    /** Secrets of the same stack whose rotation must complete first. */
    after: z.array(name).default([]),
    /** Canary waves and what a failure does (lib/waves.ts). */
    rollout: rolloutSchema.default({ waves: ["100%"], onFailure: "stop" }),
    /** When bin/rotate may start a rotation of it (lib/window.ts); none: any time. */
    window: windowSchema.optional(),
    /** Leave to rotate this generation outside its window (lib/gates.ts); the audit lines record it. */
    windowOverride: windowOverride.optional(),
    /** The ceremony's witnesses of this generation, verified from the request's signatures (lib/gates.ts). */
    approval: witnessSchema.optional(),
});

export type RotationConfig = z.output<typeof rotationConfigSchema>;
/** A consumer with its host expanded; `hostName` is the host's name in `rotation:hosts`. */
export type ConsumerConfig = RotationConfig["consumers"][number];
export type SourceConfig = RotationConfig["source"];
export type StoreConfig = RotationConfig["store"];
export type SecretConfig = RotationConfig["secret"];
/** An SSH connection as a step makes it: the host's address, its pinned key, the operator's private key. The one definition. */
export type SshTarget = { kind: "ssh"; host: string; port: number; user: string; hostKey: string; privateKeyFile: string };

// ---- The stack config as written: rotation:hosts, rotation:secrets, rotation:auditLog ----

/** A host of the environment, once: every SSH connection of the stack names one of these. */
export const hostEntry = z.strictObject({
    address: hostname,
    port: port.default(22),
    user: sshFields.user,
    hostKey: hostKey.optional(),
    hostKeyFile: localPath.optional(),
    privateKeyFile: localPath,
});

/** A reference to a host of `rotation:hosts`; existence is checked across fields. */
const hostRef = z.string({ error: (issue) => (issue.input === undefined ? "is required: a host of rotation:hosts" : "must be the name of a host of rotation:hosts") });

const { kind: _k, ...sshSourceRest } = (source.options[2] as typeof source.options[2]).shape;
void _k;
const envSource = z.discriminatedUnion("kind", [
    source.options[0],
    source.options[1],
    z.strictObject({
        kind: z.literal("ssh-authorized-key"),
        /** The host (of rotation:hosts) whose authorized_keys file the rotation edits. */
        host: hostRef,
        authorizedKeysFile: sshSourceRest.authorizedKeysFile,
        loginUser: sshSourceRest.loginUser,
    }),
    source.options[3],
    source.options[4],
]);

const { host: _h, port: _p, user: _u, hostKey: _hk, hostKeyFile: _hkf, privateKeyFile: _pk, ...consumerOwn } = consumer.shape;
void [_h, _p, _u, _hk, _hkf, _pk];
/** A consumer: its host by name, plus what is specific to this secret there. */
export const consumerEntry = z.strictObject({ ...consumerOwn, host: hostRef });

/** A boolean as `pulumi config set --path` writes it (a string) or as YAML has it. */
const flag = z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean({ error: "must be true or false" }));

/** A ceremony: a second person must approve each rotation (lib/ceremony.ts). */
export const ceremonySchema = z.strictObject({
    required: flag.default(true),
    /** The team's allowed-signers file (ssh-keygen(1) ALLOWED SIGNERS): who may request and approve. */
    approvers: localPath,
    /** How long a request may wait for its approval and its start, e.g. "4h", "2d". */
    validFor: z.string().regex(/^[1-9][0-9]{0,4}[smhd]$/, "must be a duration such as '30m', '4h' or '2d'").default("24h"),
    /** Where requests and approvals are kept; a directory the team shares if they work from different checkouts. */
    dir: localPath.default(".state/ceremony"),
});

export const secretEntry = z.strictObject({
    /** Bump to rotate (bin/rotate start does it); 0 is the secret in place before the first managed rotation. */
    generation: wholeNumber().min(0, "must be 0 or more").default(0),
    mode: z.enum(["rotate", "rollback"]).default("rotate"),
    type: secret.shape.type,
    generator: secret.shape.generator,
    reason: secret.shape.reason,
    note: secret.shape.note,
    schedule: secret.shape.schedule,
    operator: secret.shape.operator,
    store,
    source: envSource,
    consumers: z.array(consumerEntry).min(1, "must list at least one consumer"),
    /** Secrets of this stack whose rotation (in the same run) must complete before this one starts. */
    after: z.array(z.string()).default([]),
    /** Canary waves, e.g. {waves: [1, "10%", "100%"], onFailure: rollback}; default one wave, stop. */
    rollout: rolloutSchema.default({ waves: ["100%"], onFailure: "stop" }),
    /** When a rotation may start: {days: [mon, ...], start: "09:00", end: "17:00", timeZone: "Europe/Berlin"}. */
    window: windowSchema.optional(),
    /** Leave to rotate generation N outside the window: {generation: N, by: <who>, why: <text>} (bin/rotate start --outside-window <why> writes it). */
    outsideWindow: z.union([flag, windowOverride], { error: "must be {generation, by, why} (or false)" }).default(false),
    /** Two-person approval for this secret; overrides the stack's `rotation:ceremony`. */
    ceremony: ceremonySchema.optional(),
    /** The request that approves this generation (bin/rotate start --request <id> writes it); the program verifies its signatures. */
    approval: approvalSchema.optional(),
});

export const environmentSchema = z.strictObject({
    hosts: z.record(z.string(), hostEntry),
    secrets: z.record(z.string(), secretEntry),
    /** JSON-lines audit log on the operator's machine, shared by every secret of the stack. */
    auditLog: localPath.default(".state/audit.log"),
    /** Two-person approval for every secret of the stack (a secret's own `ceremony` overrides it). */
    ceremony: ceremonySchema.optional(),
});

export type EnvironmentConfig = z.output<typeof environmentSchema>;
export type CeremonyConfig = z.output<typeof ceremonySchema>;
export type Approval = z.output<typeof approvalSchema>;
export type Witnesses = z.output<typeof witnessSchema>;
export type WindowOverride = z.output<typeof windowOverride>;
export type HostEntry = z.output<typeof hostEntry>;
export type SecretEntry = z.output<typeof secretEntry>;
export type ConsumerEntry = z.output<typeof consumerEntry>;
/** The names secrets and hosts may have (they become parts of resource names). */
export const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
