/**
 * The `rotation:` stack config schema (zod): every field, its default and its
 * message. Parsing and the checks across fields are in config.ts.
 */
import { z } from "zod";
import { type SourceConfig, sourceSchema } from "../sources";
import { type StoreConfig, storeSchema } from "../stores";
import { CONFIG_NAMESPACE, type HostConnection, SECRET_TYPES, hostKey, NAME_PATTERN, hostname, localPath, port, text, unixUser, wholeNumber } from "./fields";
import { generatorSchema as generator } from "../generators";
import { notifySchema, secretNotifySchema } from "../notify";
import { type ApiConsumerEntry, type ConfigFileEntry, consumerSchema } from "../consumers";
import { rolloutSchema } from "./waves";
import { windowSchema } from "./window";

export { CONFIG_NAMESPACE };
export type { SourceConfig, StoreConfig };
export type { SshTarget } from "./fields";

/** Why a secret is rotated, as the runbook's audit trail names it. */
export const REASONS = ["scheduled", "incident", "personnel-change", "audit-finding"] as const;
export type Reason = (typeof REASONS)[number];

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

const name = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be 1-63 lowercase letters, digits or '-', starting with a letter or digit");
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

const secret = z.strictObject({
    name,
    type: z.enum(SECRET_TYPES),
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

/** A secret's own settings, as the components see them. */
export interface SecretConfig {
    name: string;
    type: z.output<typeof secret>["type"];
    generator: z.output<typeof secret>["generator"];
    reason: Reason;
    note?: string;
    schedule?: string;
    operator: string;
}

/** A config-file consumer with its host expanded; `hostName` is the host's name in `rotation:hosts`. */
export type HostConsumerConfig = Omit<ConfigFileEntry, "host"> & HostConnection & { hostName?: string };
/** A config-file consumer as written (its host a name of rotation:hosts). */
export type HostConsumerEntry = ConfigFileEntry;
/** A consumer behind an API (consumers/), its local files made absolute. */
export type ApiConsumerConfig = ApiConsumerEntry;
/** A consumer as the components see it: on a host (its connection expanded), or behind an API. */
export type ConsumerConfig = HostConsumerConfig | ApiConsumerConfig;

/**
 * One secret's rotation as the components see it: the secret's entry of
 * `rotation:secrets` with each consumer's (and an SSH source's) host
 * expanded from `rotation:hosts`. Built by lib/config.ts after validation;
 * never parsed from YAML.
 */
export interface RotationConfig {
    generation: number;
    mode: "rotate" | "rollback";
    secret: SecretConfig;
    store: StoreConfig;
    source: SourceConfig;
    consumers: ConsumerConfig[];
    /** JSON-lines audit log on the operator's machine. */
    auditLog: string;
    /** Secrets of the same stack whose rotation must complete first. */
    after: string[];
    /** Canary waves and what a failure does (lib/waves.ts). */
    rollout: z.output<typeof rolloutSchema>;
    /** When bin/rotate may start a rotation of it (lib/window.ts); none: any time. */
    window?: z.output<typeof windowSchema>;
    /** Leave to rotate this generation outside its window (lib/gates.ts); the audit lines record it. */
    windowOverride?: WindowOverride;
    /** The ceremony's witnesses of this generation, verified from the request's signatures (lib/gates.ts). */
    approval?: Witnesses;
}

// ---- The stack config as written: rotation:hosts, rotation:secrets, rotation:auditLog ----

/** A host of the environment, once: every SSH connection of the stack names one of these. */
export const hostEntry = z.strictObject({
    address: hostname,
    port: port.default(22),
    user: unixUser,
    hostKey: hostKey.optional(),
    hostKeyFile: localPath.optional(),
    privateKeyFile: localPath,
});

/** A boolean as `pulumi config set --path` writes it (a string) or as YAML has it. */
const flag = z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean({ error: "must be true or false" }));

/** A ceremony: a second person must approve each rotation (lib/ceremony.ts). */
export const ceremonySchema = z.strictObject({
    required: flag.default(true),
    /** The team's allowed-signers file (ssh-keygen(1) ALLOWED SIGNERS): who may request and approve. */
    approvers: localPath,
    /** How long a request may wait for its approval and its start, e.g. "4h", "2d". */
    validFor: z
        .string()
        .regex(/^[1-9][0-9]{0,4}[smhd]$/, "must be a duration such as '30m', '4h' or '2d'")
        .default("24h"),
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
    store: storeSchema,
    source: sourceSchema,
    consumers: z.array(consumerSchema).min(1, "must list at least one consumer"),
    /** Secrets of this stack whose rotation (in the same run) must complete before this one starts. */
    after: z.array(z.string()).default([]),
    /** Canary waves, e.g. {waves: [1, "10%", "100%"], onFailure: rollback}; default one wave, stop. */
    rollout: rolloutSchema.default({ waves: ["100%"], onFailure: "stop", batch: "auto" }),
    /** When a rotation may start: {days: [mon, ...], start: "09:00", end: "17:00", timeZone: "Europe/Berlin"}. */
    window: windowSchema.optional(),
    /** Leave to rotate generation N outside the window: {generation: N, by: <who>, why: <text>} (bin/rotate start --outside-window <why> writes it). */
    outsideWindow: z.union([flag, windowOverride], { error: "must be {generation, by, why} (or false)" }).default(false),
    /** Two-person approval for this secret; overrides the stack's `rotation:ceremony`. */
    ceremony: ceremonySchema.optional(),
    /** The request that approves this generation (bin/rotate start --request <id> writes it); the program verifies its signatures. */
    approval: approvalSchema.optional(),
    /** Where this secret's events go, event by event (the others as rotation:notify.routes says). */
    notify: secretNotifySchema.optional(),
});

export const environmentSchema = z.strictObject({
    hosts: z.record(z.string(), hostEntry),
    secrets: z.record(z.string(), secretEntry),
    /** JSON-lines audit log on the operator's machine, shared by every secret of the stack. */
    auditLog: localPath.default(".state/audit.log"),
    /** Two-person approval for every secret of the stack (a secret's own `ceremony` overrides it). */
    ceremony: ceremonySchema.optional(),
    /** Who is told what: sinks (webhook, slack, pagerduty), the events each gets, how hard delivery tries (notify/). */
    notify: notifySchema.optional(),
});

export type EnvironmentConfig = z.output<typeof environmentSchema>;
export type CeremonyConfig = z.output<typeof ceremonySchema>;
export type Approval = z.output<typeof approvalSchema>;
export type Witnesses = z.output<typeof witnessSchema>;
export type WindowOverride = z.output<typeof windowOverride>;
export type HostEntry = z.output<typeof hostEntry>;
export type SecretEntry = z.output<typeof secretEntry>;
export type ConsumerEntry = z.output<typeof consumerSchema>;
/** The names secrets and hosts may have (they become parts of resource names). */
export const NAME = NAME_PATTERN;
