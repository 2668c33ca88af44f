import type { z } from "zod";
import { ConfigError } from "./errors";
import { inventoryProblems, type InventoryFile } from "./inventory";
import { resourceNames } from "./plan";
import { generatorProblems } from "../generators";
import { routeProblems } from "../notify";
import { SOURCES, sourceOf } from "../sources";
import { writerOf } from "../writers";
import { apiConsumerOf, isHostConsumer } from "../consumers";
import {
    CONFIG_NAMESPACE,
    NAME,
    decodeConfigValue,
    environmentSchema,
    type ConsumerConfig,
    type EnvironmentConfig,
    type RotationConfig,
    type SecretEntry,
    type SourceConfig,
} from "./configSchema";
import type { HostConnection } from "./fields";

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
    string: "a string",
    number: "a number",
    int: "a whole number",
    boolean: "true or false",
    object: "an object",
    array: "a list",
    record: "a mapping",
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
            const { discriminator, options: all } = issue as { discriminator?: string; options?: unknown[] };
            if (!discriminator || !all) return undefined;
            // The consumer kind is optional (none: config-file): its undefined option is no value to name.
            const options = all.filter((o) => o !== undefined && o !== null);
            const given = (issue.input as Record<string, unknown> | undefined)?.[discriminator];
            return given === undefined
                ? `is required: one of ${quoted(options)}`
                : `unknown ${discriminator} ${JSON.stringify(given)}: must be one of ${quoted(options)}`;
        }
        case "too_small":
            return issue.origin === "array"
                ? `must list at least ${issue.minimum}`
                : issue.origin === "string"
                  ? `must be at least ${issue.minimum} characters`
                  : `must be at least ${issue.minimum}`;
        case "too_big":
            return issue.origin === "array"
                ? `must list at most ${issue.maximum}`
                : issue.origin === "string"
                  ? `must be at most ${issue.maximum} characters`
                  : `must be at most ${issue.maximum}`;
        default:
            return undefined;
    }
}

/** Keys of 0.2's one-secret layout, now under rotation:secrets.<name> and rotation:hosts. */
const LEGACY_KEYS = ["generation", "mode", "secret", "store", "source", "consumers", "consumersFile"];

type Path = (string | number)[];

/** The machine a host of rotation:hosts is (address and port): two logins of one machine write the same files. */
const machineOf = (env: EnvironmentConfig, host: string) => (env.hosts[host] ? `${env.hosts[host].address}:${env.hosts[host].port}` : host);

/** The source kinds whose credential is a login and password pair, as messages name them ("a postgres-role"). */
const withLogin = SOURCES.filter((k) => k.login)
    .map((k) => `${article(k.kind)} ${k.kind}`)
    .join(" or ");

/** Checks that need the whole config (zod checks one field at a time). */
function crossFieldProblems(env: EnvironmentConfig): string[] {
    const problems: string[] = [];
    const at = (path: Path, msg: string) => problems.push(`${formatPath(path)}: ${msg}`);

    const hostNames = Object.keys(env.hosts);
    const sameHost = new Map<string, string>();
    for (const [h, host] of Object.entries(env.hosts)) {
        const id = `${host.address}:${host.port}:${host.user}`;
        const first = sameHost.get(id);
        if (first !== undefined) at(["hosts", h], `same address, port and user as hosts.${first}; list each host once`);
        else sameHost.set(id, h);
        if (!NAME.test(h)) at(["hosts", h], "a host name must be 1-63 lowercase letters, digits or '-', starting with a letter or digit");
        if (!host.hostKey && !host.hostKeyFile) at(["hosts", h], "a pinned host key is required: set hostKey or hostKeyFile");
        if (host.hostKey && host.hostKeyFile) at(["hosts", h], "set only one of hostKey or hostKeyFile");
    }
    const hostExists = (path: Path, ref: string) => {
        if (!(ref in env.hosts)) {
            at(path, `no host ${JSON.stringify(ref)} in rotation:hosts${hostNames.length ? "" : " (it lists no hosts)"}`);
            return false;
        }
        return true;
    };

    const names = Object.keys(env.secrets);
    if (!names.length) at(["secrets"], "must list at least one secret");
    for (const [name, s] of Object.entries(env.secrets)) {
        const P = (...rest: Path): Path => ["secrets", name, ...rest];
        if (!NAME.test(name)) {
            at(P(), "a secret name must be 1-63 lowercase letters, digits or '-', starting with a letter or digit (it names resources and the store entry)");
            continue;
        }
        const source = sourceOf(s.source.kind);
        const seen = new Map<string, number>();
        const seenTargets = new Map<string, number>();
        s.consumers.forEach((c, i) => {
            const first = seen.get(c.name);
            if (first !== undefined) at(P("consumers", i, "name"), `duplicate consumer name "${c.name}" (also consumers[${first}])`);
            else seen.set(c.name, i);
            if (!isHostConsumer(c)) {
                // A consumer behind an API passes a per-generation login on only where it says so.
                const api = apiConsumerOf(c.kind);
                if (source.login && !api.writesUser(c))
                    at(P("consumers", i), `${article(s.source.kind)} ${s.source.kind} credential is a user and password pair: ${api.howToWriteUser}`);
                return;
            }
            if (hostExists(P("consumers", i, "host"), c.host)) {
                const target = `${machineOf(env, c.host)}:${c.configPath}`;
                const firstTarget = seenTargets.get(target);
                if (firstTarget !== undefined) at(P("consumers", i, "configPath"), `consumers[${firstTarget}] already writes ${c.configPath} on ${c.host}`);
                else seenTargets.set(target, i);
            }
            const writer = writerOf(c.write.format);
            if (source.login) {
                if (!writer.writesUser(c.write))
                    at(
                        P("consumers", i, "write"),
                        `${article(s.source.kind)} ${s.source.kind} credential is a user and password pair: ${writer.howToWriteUser}`,
                    );
            } else {
                for (const f of writer.userFields(c.write))
                    at(P("consumers", i, "write", f), `only ${withLogin} source has a per-generation user (source is ${s.source.kind})`);
            }
        });

        for (const h of source.hostRefs?.(s.source) ?? []) hostExists(P("source", "host"), h);
        // Each source kind says which kinds of secret it takes (an ssh-key needs one that takes a public key).
        if (!source.types.includes(s.type))
            at(P("source", "kind"), `${article(s.type)} ${s.type} secret cannot be rotated at ${article(s.source.kind)} ${s.source.kind} source`);
        for (const p of generatorProblems(s.generator, s.type)) at(P("generator", ...p.path), p.message);
        if (s.mode === "rollback" && s.generation === 0) at(P("mode"), "nothing to roll back at generation 0");

        const afterSeen = new Set<string>();
        s.after.forEach((a, i) => {
            if (a === name) at(P("after", i), "a secret cannot wait for itself");
            else if (!(a in env.secrets)) at(P("after", i), `no secret ${JSON.stringify(a)} in rotation:secrets`);
            else if (afterSeen.has(a)) at(P("after", i), `${JSON.stringify(a)} is listed twice`);
            afterSeen.add(a);
        });
    }
    problems.push(...sharedFileProblems(env));
    const cycle = afterCycle(env.secrets);
    if (cycle) at(["secrets", cycle[0], "after"], `a cycle: ${cycle.join(" waits for ")}; no secret of it could start`);
    problems.push(...nameCollisions(env));
    for (const p of routeProblems(env.notify, env.secrets)) at(p.path, p.message);
    return problems;
}

/**
 * Two secrets that write the same file on the same host must not roll out at
 * the same moment: a rollout reads the whole file, rewrites it and writes it
 * back (provider/rollout.ts), so two at once could lose one secret's update
 * and leave a consumer on a value about to be revoked. One must wait for the
 * other (`after`, directly or through others).
 */
function sharedFileProblems(env: EnvironmentConfig): string[] {
    const problems: string[] = [];
    const waitsFor = (a: string, b: string, seen = new Set<string>()): boolean => {
        for (const x of env.secrets[a]?.after ?? []) {
            if (x === b) return true;
            if (!seen.has(x) && x in env.secrets) {
                seen.add(x);
                if (waitsFor(x, b, seen)) return true;
            }
        }
        return false;
    };
    const first = new Map<string, { secret: string; index: number }>();
    for (const [name, s] of Object.entries(env.secrets)) {
        if (!NAME.test(name)) continue;
        s.consumers.forEach((c, i) => {
            if (!isHostConsumer(c)) return;
            const key = `${machineOf(env, c.host)}\0${c.configPath}`;
            const other = first.get(key);
            if (!other) first.set(key, { secret: name, index: i });
            else if (other.secret !== name && !waitsFor(name, other.secret) && !waitsFor(other.secret, name)) {
                problems.push(
                    `${formatPath(["secrets", name, "consumers", i, "configPath"])}: secret "${other.secret}" (consumers[${other.index}]) also writes ${c.configPath} on ${c.host}; their rollouts would overwrite each other: list "${other.secret}" in this secret's after`,
                );
            }
        });
    }
    return problems;
}

/** The first cycle in the `after` graph, as the list of secrets around it (first repeated at the end). */
function afterCycle(secrets: Record<string, SecretEntry>): string[] | undefined {
    const state = new Map<string, "visiting" | "done">();
    const stack: string[] = [];
    const visit = (n: string): string[] | undefined => {
        if (state.get(n) === "done") return undefined;
        if (state.get(n) === "visiting") return [...stack.slice(stack.indexOf(n)), n];
        state.set(n, "visiting");
        stack.push(n);
        for (const a of secrets[n]?.after ?? []) {
            if (a === n || !(a in secrets)) continue;
            const c = visit(a);
            if (c) return c;
        }
        stack.pop();
        state.set(n, "done");
        return undefined;
    };
    for (const n of Object.keys(secrets).sort()) {
        const c = visit(n);
        if (c) return c;
    }
    return undefined;
}

/**
 * Two secrets whose resources would get the same name (say secret "app" and
 * secret "app-grant": "app-grant-g3" is both the grant of app's generation 3
 * and a resource of app-grant). Refused before anything runs; the engine
 * would otherwise fail at registration, possibly halfway through a run.
 * Generations up to the next one are checked: older ones are what state holds.
 */
function nameCollisions(env: EnvironmentConfig): string[] {
    const owner = new Map<string, string>();
    const problems: string[] = [];
    for (const n of Object.keys(env.secrets).filter((x) => NAME.test(x))) {
        const s = env.secrets[n];
        const clashes = new Map<string, string>();
        for (const r of resourceNames(
            n,
            s.consumers.map((c) => c.name),
            s.generation + 1,
        )) {
            const other = owner.get(r);
            if (other === undefined) owner.set(r, n);
            else if (other !== n && !clashes.has(other)) clashes.set(other, r);
        }
        for (const [other, r] of clashes)
            problems.push(`${formatPath(["secrets", n])}: resource name "${r}" would belong to both secret "${other}" and secret "${n}"; rename one of them`);
    }
    return problems;
}

/** Decodes the raw `rotation:` keys: object values may be JSON strings as Pulumi stores them. */
function decode(stack: string, raw: Record<string, unknown>): Record<string, unknown> {
    const decoded: Record<string, unknown> = {};
    const problems: string[] = [];
    for (const [key, given] of Object.entries(raw)) {
        const { value, invalidJson } = decodeConfigValue(given);
        if (invalidJson) problems.push(`${CONFIG_NAMESPACE}:${key}: is not valid JSON`);
        decoded[key] = value;
    }
    const legacy = LEGACY_KEYS.filter((k) => k in decoded);
    for (const k of legacy) {
        problems.push(
            `${CONFIG_NAMESPACE}:${k}: the one-secret layout of 0.2 is no longer read: move the secret under rotation:secrets.<name> and its hosts under rotation:hosts (docs/operating.md, "Upgrading from 0.2")`,
        );
    }
    if (problems.length) throw new ConfigError(stack, problems);
    // Pulumi hands every scalar over as a string, and `config set --path` writes numbers as strings too.
    const secrets = decoded.secrets;
    if (secrets && typeof secrets === "object") {
        for (const s of Object.values(secrets as Record<string, Record<string, unknown>>)) {
            if (s && typeof s === "object" && typeof s.generation === "string" && /^-?\d+(\.\d+)?$/.test(s.generation)) s.generation = Number(s.generation);
        }
    }
    return decoded;
}

/**
 * Validates a stack's `rotation:` config: `raw` maps each key under the
 * namespace (without the prefix) to its value. When hosts or consumers came
 * from `rotation:inventoryFile` (lib/inventory.ts), errors about them name
 * that file. Throws ConfigError listing every problem.
 */
export function parseEnvironment(stack: string, raw: Record<string, unknown>, inventory?: InventoryFile): EnvironmentConfig {
    const decoded = decode(stack, raw);
    if (decoded.hosts === undefined) decoded.hosts = {};
    const result = environmentSchema.safeParse(decoded, { error: fallbackMessage });
    if (!result.success) {
        throw new ConfigError(
            stack,
            inventoryProblems(
                result.error.issues.flatMap((issue) =>
                    issue.code === "unrecognized_keys"
                        ? issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown key`)
                        : [`${formatPath(issue.path)}: ${issue.message}`],
                ),
                inventory,
            ),
        );
    }
    const crossProblems = crossFieldProblems(result.data);
    if (crossProblems.length) throw new ConfigError(stack, inventoryProblems(crossProblems, inventory));
    return result.data;
}

/** One secret of a validated environment, its hosts expanded: what the components work with. */
export function secretRotation(env: EnvironmentConfig, name: string): RotationConfig {
    const s = env.secrets[name];
    const hostOf = (ref: string): HostConnection => {
        const h = env.hosts[ref];
        return {
            host: h.address,
            port: h.port,
            user: h.user,
            privateKeyFile: h.privateKeyFile,
            ...(h.hostKey ? { hostKey: h.hostKey } : {}),
            ...(h.hostKeyFile ? { hostKeyFile: h.hostKeyFile } : {}),
        };
    };
    const kind = sourceOf(s.source.kind);
    const source = (kind.expand ? kind.expand(s.source, hostOf) : s.source) as SourceConfig;
    const consumers: ConsumerConfig[] = s.consumers.map((c) => (isHostConsumer(c) ? { ...c, ...hostOf(c.host), hostName: c.host } : c));
    return structuredClone({
        generation: s.generation,
        mode: s.mode,
        secret: {
            name,
            type: s.type,
            generator: s.generator,
            reason: s.reason,
            ...(s.note ? { note: s.note } : {}),
            ...(s.schedule ? { schedule: s.schedule } : {}),
            operator: s.operator,
        },
        store: s.store,
        source,
        consumers,
        auditLog: env.auditLog,
        after: s.after,
        rollout: s.rollout,
        ...(s.window ? { window: s.window } : {}),
        // Leave for exactly this generation; the approval's witnesses are added only once verified (lib/gates.ts).
        ...(typeof s.outsideWindow === "object" && s.outsideWindow.generation === s.generation ? { windowOverride: s.outsideWindow } : {}),
    });
}

/** The secrets in an order where each comes after every secret it waits for (`after`); otherwise as listed. */
export function secretOrder(env: EnvironmentConfig): string[] {
    const out: string[] = [];
    const visit = (n: string) => {
        if (out.includes(n)) return;
        for (const a of env.secrets[n].after) visit(a);
        out.push(n);
    };
    for (const n of Object.keys(env.secrets)) visit(n);
    return out;
}
