import { z } from "zod";
import { ConfigError } from "./errors";
import { inventoryProblems, type InventoryFile } from "./inventory";
import { CONFIG_NAMESPACE, rotationConfigSchema, type RotationConfig } from "./configSchema";

export * from "./configSchema";

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
 * strings as Pulumi stores them. When the consumers came from
 * `rotation:consumersFile` (lib/inventory.ts), errors about them name that file.
 * Throws ConfigError listing every problem.
 */
export function parseRotationConfig(stack: string, raw: Record<string, unknown>, inventory?: InventoryFile): RotationConfig {
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
            inventoryProblems(result.error.issues.flatMap((issue) =>
                issue.code === "unrecognized_keys"
                    ? issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown key`)
                    : [`${formatPath(issue.path)}: ${issue.message}`],
            ), inventory),
        );
    }
    const crossProblems = crossFieldProblems(result.data);
    if (crossProblems.length) throw new ConfigError(stack, inventoryProblems(crossProblems, inventory));
    return result.data;
}
