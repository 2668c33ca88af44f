import { z } from "zod";
import { ConfigError } from "./errors";

/** Config keys live in the `rotation:` namespace of each stack's config. */
export const CONFIG_NAMESPACE = "rotation";

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

/** How to reach a host over SSH; the host key is pinned, inline or from a file. */
const sshFields = {
    host: hostname,
    port: port.default(22),
    user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Unix user name"),
    hostKey: hostKey.optional(),
    hostKeyFile: localPath.optional(),
    privateKeyFile: localPath,
};

const generator = z.discriminatedUnion("kind", [
    z.strictObject({
        kind: z.literal("random"),
        length: wholeNumber().min(16, "must be at least 16").max(256, "must be at most 256").default(32),
        upper: z.boolean().default(true),
        lower: z.boolean().default(true),
        numeric: z.boolean().default(true),
        special: z.boolean().default(false),
    }),
    z.strictObject({
        kind: z.literal("command"),
        /** Runs on the operator's machine; its stdout is the new secret. Defaults by secret type. */
        command: shellCommand.optional(),
        length: wholeNumber().min(16, "must be at least 16").max(256, "must be at most 256").default(32),
    }),
]);

const secret = z.strictObject({
    name,
    type: z.enum(["password", "api-token", "ssh-key"]),
    generator: generator.default({ kind: "random", length: 32, upper: true, lower: true, numeric: true, special: false }),
    reason: text.refine((s) => s.length <= 200 && !/[\r\n]/.test(s), "must be one line of at most 200 characters"),
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
        mount: z.string().regex(/^[A-Za-z0-9_-]+$/, "must be a KV v2 mount name"),
        path: z.string().regex(/^[A-Za-z0-9_./-]+$/, "must be a KV path"),
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

const write = z.discriminatedUnion("format", [
    z.strictObject({
        format: z.literal("yaml-key"),
        key: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "must be a dotted YAML key path such as 'redis.password'"),
        userKey: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "must be a dotted YAML key path").optional(),
    }),
    z.strictObject({
        format: z.literal("env-line"),
        key: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a variable name such as 'DB_PASSWORD'"),
        userKey: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be a variable name").optional(),
    }),
    z.strictObject({
        format: z.literal("template"),
        /** The whole file; `{{secret}}` (and `{{user}}`) are replaced. */
        template: z.string().refine(noNul, "must not contain a NUL byte").refine((t) => t.includes("{{secret}}"), "must contain {{secret}}"),
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

export const rotationConfigSchema = z.strictObject({
    generation: wholeNumber().min(0, "must be 0 or more"),
    mode: z.enum(["rotate", "rollback"]).default("rotate"),
    secret,
    store,
    source,
    consumers: z.array(consumer).min(1, "must list at least one consumer"),
    /** JSON-lines audit log on the operator's machine. */
    auditLog: localPath.default(".state/audit.log"),
});

export type RotationConfig = z.output<typeof rotationConfigSchema>;
export type ConsumerConfig = RotationConfig["consumers"][number];
export type SourceConfig = RotationConfig["source"];
export type StoreConfig = RotationConfig["store"];
export type SecretConfig = RotationConfig["secret"];
export type SshTarget = { host: string; port: number; user: string; hostKey: string; privateKeyFile: string };

function formatPath(path: readonly PropertyKey[]): string {
    let out = CONFIG_NAMESPACE;
    path.forEach((p, i) => {
        if (typeof p === "number") out += `[${p}]`;
        else out += i === 0 ? `:${String(p)}` : `.${String(p)}`;
    });
    return out;
}

const article = (word: string) => (/^(ssh|[aeiou])/.test(word) ? "an" : "a");
const TYPE_NAMES: Record<string, string> = {
    string: "a string", number: "a number", int: "a whole number", boolean: "true or false", object: "an object", array: "a list",
};
const quoted = (values: readonly unknown[]) => values.map((v) => JSON.stringify(v)).join(", ");

/** Messages for the issues the schema gives no message of its own (zod's defaults name no field or values). */
function fallbackMessage(issue: z.core.$ZodRawIssue): string | undefined {
    switch (issue.code) {
        case "invalid_type":
            return issue.input === undefined ? "is required" : `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
        case "invalid_value":
            return issue.values.length === 1 ? `must be ${quoted(issue.values)}` : `must be one of ${quoted(issue.values)}`;
        case "invalid_union": {
            // A discriminated union (kind, format) whose discriminator matches no option.
            const { discriminator, options } = issue as { discriminator?: string; options?: unknown[] };
            if (!discriminator || !options) return undefined;
            const given = (issue.input as Record<string, unknown> | undefined)?.[discriminator];
            return given === undefined
                ? `is required: one of ${quoted(options)}`
                : `unknown ${discriminator} ${JSON.stringify(given)}: must be one of ${quoted(options)}`;
        }
        case "too_small":
            return issue.origin === "array" ? `must list at least ${issue.minimum}` : issue.origin === "string" ? `must be at least ${issue.minimum} characters` : `must be at least ${issue.minimum}`;
        case "too_big":
            return issue.origin === "array" ? `must list at most ${issue.maximum}` : issue.origin === "string" ? `must be at most ${issue.maximum} characters` : `must be at most ${issue.maximum}`;
        default:
            return undefined;
    }
}

/** Checks that need the whole config (zod checks one field at a time). */
function crossFieldProblems(cfg: RotationConfig): string[] {
    const problems: string[] = [];
    const at = (path: (string | number)[], msg: string) => problems.push(`${formatPath(path)}: ${msg}`);
    const pinned = (path: (string | number)[], t: { hostKey?: string; hostKeyFile?: string }) => {
        if (!t.hostKey && !t.hostKeyFile) at(path, "a pinned host key is required: set hostKey or hostKeyFile");
        if (t.hostKey && t.hostKeyFile) at(path, "set only one of hostKey or hostKeyFile");
    };

    const seen = new Map<string, number>();
    const seenTargets = new Map<string, number>();
    cfg.consumers.forEach((c, i) => {
        const first = seen.get(c.name);
        if (first !== undefined) at(["consumers", i, "name"], `duplicate consumer name "${c.name}" (also consumers[${first}])`);
        else seen.set(c.name, i);
        const target = `${c.host}:${c.port}:${c.configPath}`;
        const firstTarget = seenTargets.get(target);
        if (firstTarget !== undefined) at(["consumers", i, "configPath"], `consumers[${firstTarget}] already writes ${c.configPath} on ${c.host}`);
        else seenTargets.set(target, i);
        pinned(["consumers", i], c);
        if (cfg.source.kind === "postgres-role") {
            const needsUser = c.write.format === "template" ? !c.write.template.includes("{{user}}") : !c.write.userKey;
            if (needsUser) {
                at(["consumers", i, "write"], c.write.format === "template"
                    ? "a postgres-role credential is a user and password pair: the template must contain {{user}}"
                    : "a postgres-role credential is a user and password pair: set userKey");
            }
        } else if (c.write.format !== "template" && c.write.userKey) {
            at(["consumers", i, "write", "userKey"], `only a postgres-role source has a per-generation user (source is ${cfg.source.kind})`);
        }
    });

    const { secret: s, source: src } = cfg;
    if (src.kind === "ssh-authorized-key") pinned(["source"], src);
    // An ssh-key needs a source that takes a public key; a command source takes any secret.
    const fits = s.type === "ssh-key" ? src.kind === "ssh-authorized-key" || src.kind === "command" : src.kind !== "ssh-authorized-key";
    if (!fits) {
        at(["source", "kind"], `${article(s.type)} ${s.type} secret cannot be rotated at ${article(src.kind)} ${src.kind} source`);
    }
    if (s.type === "ssh-key" && s.generator.kind !== "command") {
        at(["secret", "generator", "kind"], 'an ssh-key secret needs generator kind "command" (ed25519 via ssh-keygen)');
    }
    if (cfg.mode === "rollback" && cfg.generation === 0) {
        at(["mode"], "nothing to roll back at generation 0");
    }
    return problems;
}

/**
 * Validates a stack's `rotation:` config. `raw` maps each key under the
 * namespace (without the prefix) to its value; object values may be JSON
 * strings as Pulumi stores them. Throws ConfigError listing every problem.
 */
export function parseRotationConfig(stack: string, raw: Record<string, unknown>): RotationConfig {
    const decoded: Record<string, unknown> = {};
    const problems: string[] = [];
    for (const [key, value] of Object.entries(raw)) {
        if (typeof value === "string" && /^\s*[[{]/.test(value)) {
            try {
                decoded[key] = JSON.parse(value);
                continue;
            } catch {
                problems.push(`${CONFIG_NAMESPACE}:${key}: is not valid JSON`);
            }
        }
        // Pulumi hands every scalar over as a string; a numeric generation is checked as a number.
        decoded[key] = key === "generation" && typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
    }
    if (problems.length) throw new ConfigError(stack, problems);

    const result = rotationConfigSchema.safeParse(decoded, { error: fallbackMessage });
    if (!result.success) {
        throw new ConfigError(
            stack,
            result.error.issues.flatMap((issue) =>
                issue.code === "unrecognized_keys"
                    ? issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown key`)
                    : [`${formatPath(issue.path)}: ${issue.message}`],
            ),
        );
    }
    const crossProblems = crossFieldProblems(result.data);
    if (crossProblems.length) throw new ConfigError(stack, crossProblems);
    return result.data;
}
