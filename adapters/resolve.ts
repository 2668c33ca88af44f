import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { CONFIG_NAMESPACE, secretOrder, secretRotation, type EnvironmentConfig, type RotationConfig, type SshTarget } from "../lib/config";
import { spawnSync } from "node:child_process";
import { ConfigError, RotationRefusedError, StoreError } from "../lib/errors";
import { inventoryProblems, type InventoryFile } from "../lib/inventory";
import { VaultError } from "../adapters/vault";
import { readAuditLog } from "./auditLog";
import { ENTRY_SOCKET_ENV, askGenerator, isEntered, noValueAdvice, resolveGenerator } from "../generators";
import { sourceOf } from "../sources";
import { storeOf } from "../stores";
import { apiConsumerOf, isHostConsumer } from "../consumers";
import type { HostConsumerConfig } from "../lib/configSchema";

export interface ResolvedRotation {
    config: RotationConfig;
    /** The generation whose revocation started, as the store says (a local store here, one behind a server in checkStores). */
    committed?: number;
    sourceHostKey?: string;
    consumerHostKeys: Record<string, string>;
}

/** The SSH connection to a consumer's host, its key pinned. */
export function consumerTarget(r: Pick<ResolvedRotation, "consumerHostKeys">, c: HostConsumerConfig): SshTarget {
    return { kind: "ssh", host: c.host, port: c.port, user: c.user, hostKey: r.consumerHostKeys[c.name], privateKeyFile: c.privateKeyFile };
}

/**
 * The consumers' hosts, each once (a fleet has far fewer hosts than
 * consumers), keyed for a step's `hosts`, and each consumer's key.
 */
export function consumerHosts(r: Pick<ResolvedRotation, "config" | "consumerHostKeys">): {
    hosts: Record<string, SshTarget>;
    hostOf: (c: HostConsumerConfig) => string;
} {
    const hosts: Record<string, SshTarget> = {};
    const keyOf = new Map<string, string>();
    for (const c of r.config.consumers.filter(isHostConsumer)) {
        const t = consumerTarget(r, c);
        const id = JSON.stringify(t);
        if (!keyOf.has(id)) {
            keyOf.set(id, `h${keyOf.size}`);
            hosts[keyOf.get(id)!] = t;
        }
    }
    return { hosts, hostOf: (c) => keyOf.get(JSON.stringify(consumerTarget(r, c)))! };
}

const HOST_KEY = /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+$/;

/**
 * Makes the operator-side paths of a validated environment absolute
 * (relative to `baseDir`, the project directory), reads each host's pinned
 * key once and checks that every local file the rotations need exists.
 * Returns every secret's rotation, each after the secrets it waits for.
 * Every problem is reported at once, naming its field, before any resource
 * is registered.
 */
export function resolveEnvironment(stack: string, env: EnvironmentConfig, baseDir: string, inventory?: InventoryFile): ResolvedRotation[] {
    const problems: string[] = [];
    const abs = (p: string) => path.resolve(baseDir, p);
    const mustExist = (field: string, p: string) => {
        if (!fs.existsSync(p)) problems.push(`${CONFIG_NAMESPACE}:${field}: file not found: ${p}`);
        return p;
    };
    const hostKeys: Record<string, string> = {};
    const hosts = structuredClone(env.hosts);
    for (const [h, host] of Object.entries(hosts)) {
        host.privateKeyFile = mustExist(`hosts.${h}.privateKeyFile`, abs(host.privateKeyFile));
        if (host.hostKey) {
            hostKeys[h] = host.hostKey;
            continue;
        }
        const file = abs(host.hostKeyFile!);
        try {
            const key = fs.readFileSync(file, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
            if (!HOST_KEY.test(key)) problems.push(`${CONFIG_NAMESPACE}:hosts.${h}.hostKeyFile: ${file} does not hold an OpenSSH public host key`);
            hostKeys[h] = key;
        } catch (e) {
            problems.push(`${CONFIG_NAMESPACE}:hosts.${h}.hostKeyFile: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
        }
    }
    const resolvedEnv: EnvironmentConfig = { ...env, hosts, auditLog: abs(env.auditLog) };

    const out: ResolvedRotation[] = [];
    const logChecked: { field: string; consumers: RotationConfig["consumers"] }[] = [];
    for (const name of secretOrder(resolvedEnv)) {
        const config = secretRotation(resolvedEnv, name);
        const entry = env.secrets[name];
        const field = `secrets.${name}`;
        let committed: number | undefined;
        const store = storeOf(config.store.kind);
        problems.push(...store.resolve(config.store, baseDir, `${field}.store`));
        problems.push(...resolveGenerator(config.secret.generator, baseDir, `${CONFIG_NAMESPACE}:${field}.generator`));
        if (store.localCommitted) {
            try {
                committed = store.localCommitted(config.store, name);
                checkCommittedGeneration(stack, config, committed);
            } catch (e) {
                if (e instanceof ConfigError) problems.push(...e.problems);
                else throw e;
            }
        }
        // Local files of the source made absolute and checked; the host key of where its scripts run.
        const resolved = sourceOf(config.source.kind).resolve?.(config.source, entry.source, {
            file: (f, p) => mustExist(`${field}.source.${f}`, abs(p)),
            hostKey: (h) => hostKeys[h],
        });
        const sourceHostKey = resolved ? resolved.hostKey : undefined;
        const consumerHostKeys: Record<string, string> = {};
        entry.consumers.forEach((c) => {
            if (isHostConsumer(c)) consumerHostKeys[c.name] = hostKeys[c.host];
        });
        // A consumer behind an API: its token file (and CA) on this machine, made absolute and checked.
        config.consumers.forEach((c, i) => {
            if (!isHostConsumer(c)) apiConsumerOf(c.kind).resolve(c, { file: (f, p) => mustExist(`${field}.consumers[${i}].${f}`, abs(p)) });
        });
        logChecked.push({ field: `${field}.consumers`, consumers: config.consumers });
        out.push({ config, sourceHostKey, consumerHostKeys, ...(committed !== undefined ? { committed } : {}) });
    }
    problems.push(...logPatternProblems(logChecked));
    if (problems.length) throw new ConfigError(stack, inventoryProblems(problems, inventory));
    return out;
}

/**
 * Asks each store behind a server (Vault), before anything is registered: it
 * answers, the token works, it holds the secret, and the generation is
 * allowed by the committed one (forward only; no rollback after revocation
 * started), exactly as for a store on this machine. Every problem at once,
 * each naming its store.
 */
export async function checkStores(stack: string, rotations: ResolvedRotation[]): Promise<void> {
    const problems: string[] = [];
    await Promise.all(
        rotations.map(async (r) => {
            const { config } = r;
            // A generator behind a server (a password policy): asked only where this run may draw from it.
            if (config.generation > 0 && config.mode === "rotate")
                problems.push(...(await askGenerator(config.secret.generator, config.secret, `${CONFIG_NAMESPACE}:secrets.${config.secret.name}.generator`)));
            const store = storeOf(config.store.kind);
            if (!store.ask || config.generation === 0) return;
            const at = `${CONFIG_NAMESPACE}:secrets.${config.secret.name}.store`;
            try {
                const { committed, exists } = await store.ask(config.store, config.secret.name);
                r.committed = committed;
                if (!exists)
                    problems.push(
                        `${at}: ${store.label(config.store, config.secret.name)}: no secret at this path: put the secret in use as field "current" first`,
                    );
                checkCommittedGeneration(stack, config, committed);
            } catch (e) {
                if (e instanceof ConfigError) problems.push(...e.problems);
                else if (e instanceof VaultError || e instanceof StoreError) problems.push(`${at}: ${e.message}`);
                else throw e;
            }
        }),
    );
    if (problems.length) throw new ConfigError(stack, problems.sort());
}

/** Whether generation `generation` of the secret was already made (its value is in state): the audit log has its "generated" line. */
export function alreadyGenerated(auditLog: string, stack: string, secret: string, generation: number): boolean {
    return readAuditLog(auditLog, { mentioning: secret }).some(
        (l) => l.stack === stack && l.secret === secret && l.generation === generation && l.phase === "generated" && l.outcome === "ok",
    );
}

/** Whether bin/rotate's socket (generators/manual.ts) offers a value for this generation of the secret. */
export function entryOffered(socket: string, secret: string, generation: number): Promise<boolean> {
    return new Promise((resolve) => {
        const c = net.connect(socket);
        const chunks: Buffer[] = [];
        c.setTimeout(5000, () => c.destroy());
        c.on("connect", () => c.end(`${JSON.stringify({ secret, generation, probe: true })}\n`));
        c.on("data", (d: Buffer) => chunks.push(d));
        c.on("error", () => resolve(false));
        c.on("close", () => resolve(Buffer.concat(chunks).toString("utf8").startsWith("ok\0")));
    });
}

/**
 * A rotation whose value a person types (generator kind "manual") and that
 * still needs it (no "generated" line for its generation yet) runs only
 * when bin/rotate offers that value: a plain `pulumi up` is refused here,
 * before anything is registered, naming each secret.
 */
export async function checkEntered(stack: string, rotations: ResolvedRotation[]): Promise<void> {
    const socket = process.env[ENTRY_SOCKET_ENV];
    const missing: string[] = [];
    for (const { config } of rotations) {
        const { name, generator } = config.secret;
        if (config.generation === 0 || config.mode !== "rotate" || !isEntered(generator)) continue;
        if (alreadyGenerated(config.auditLog, stack, name, config.generation)) continue;
        if (socket && fs.existsSync(socket) && (await entryOffered(socket, name, config.generation))) continue;
        missing.push(noValueAdvice(name, config.generation, stack));
    }
    if (missing.length) throw new RotationRefusedError(`stack "${stack}": refused: ${missing.join("; ")}. Nothing was changed.`);
}

/** grep -E's verdict on patterns: exit 1 (no match on empty input) means all valid, 2 an error. */
function grepRejects(patterns: string[]): string | undefined {
    const r = spawnSync("grep", ["-E", ...patterns.flatMap((p) => ["-e", p])], { input: "", encoding: "utf8", env: { ...process.env, LC_ALL: "C.UTF-8" } });
    return r.status === 2 || r.error ? (r.stderr || String(r.error)).trim().replace(/^grep: /, "") : undefined;
}

/**
 * Every log check's pattern as grep -E on the hosts will read it: a pattern
 * grep cannot parse would make the check fail at the end of every rollout
 * (0.1 even read it as "no auth failure"). One grep for every pattern of the
 * stack, one per pattern only to name the bad ones. `groups` are consumer
 * lists with the config field they sit at (`secrets.<name>.consumers`).
 */
export function logPatternProblems(groups: { field: string; consumers: RotationConfig["consumers"] }[]): string[] {
    const checked = groups.flatMap(({ field, consumers }) =>
        consumers.flatMap((c, i) => (isHostConsumer(c) && c.logCheck?.pattern !== undefined ? [{ at: `${field}[${i}]`, pattern: c.logCheck.pattern }] : [])),
    );
    if (!checked.length || !grepRejects([...new Set(checked.map((x) => x.pattern))])) return [];
    return checked.flatMap(({ at, pattern }) => {
        const why = grepRejects([pattern]);
        return why
            ? [`${CONFIG_NAMESPACE}:${at}.logCheck.pattern: ${JSON.stringify(pattern)} is not an extended regular expression grep -E accepts (${why})`]
            : [];
    });
}

/** The `rotation:` keys of a Pulumi config map (as `pulumi.runtime.allConfig()` returns it), prefix removed. */
export function rotationKeys(all: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(all)) {
        if (k.startsWith(`${CONFIG_NAMESPACE}:`)) out[k.slice(CONFIG_NAMESPACE.length + 1)] = v;
    }
    return out;
}

/**
 * Generations only move forward, and a rollback is possible only until the
 * revocation of the previous secret starts. Checked before anything is
 * registered, so a refused request changes nothing.
 */
export function checkCommittedGeneration(stack: string, config: RotationConfig, committed: number): void {
    const name = config.secret.name;
    if (config.mode === "rollback" && committed >= config.generation && config.generation > 0) {
        throw new RotationRefusedError(
            `stack "${stack}": rollback of ${name} generation ${config.generation} refused: the revocation of the previous secret has already started, so the old secret may no longer work. ` +
                `Roll forward instead: fix the cause and run the rotation again (bin/rotate resume), or start a new generation (bin/rotate start).`,
        );
    }
    if (config.generation < committed) {
        throw new ConfigError(stack, [
            `${CONFIG_NAMESPACE}:secrets.${name}.generation: ${config.generation} is lower than generation ${committed} of ${name}, which was already committed (revocation started); generations only move forward: use ${committed} or higher`,
        ]);
    }
}
