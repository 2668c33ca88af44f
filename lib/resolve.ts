import * as fs from "fs";
import * as path from "path";
import { CONFIG_NAMESPACE, type RotationConfig } from "./config";
import { spawnSync } from "child_process";
import { ConfigError, RotationRefusedError } from "./errors";
import { inventoryProblems, type InventoryFile } from "./inventory";

export interface ResolvedRotation {
    config: RotationConfig;
    sourceHostKey?: string;
    consumerHostKeys: Record<string, string>;
}

const HOST_KEY = /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+$/;

/**
 * Makes the operator-side paths of a validated config absolute (relative to
 * `baseDir`, the project directory), reads pinned host keys from their files
 * and checks that every local file the rotation needs exists. Every problem is
 * reported at once, naming its field, before any resource is registered.
 */
export function resolveRotation(stack: string, cfg: RotationConfig, baseDir: string, inventory?: InventoryFile): ResolvedRotation {
    const problems: string[] = [];
    const abs = (p: string) => path.resolve(baseDir, p);
    const mustExist = (field: string, p: string) => {
        if (!fs.existsSync(p)) problems.push(`${CONFIG_NAMESPACE}:${field}: file not found: ${p}`);
        return p;
    };
    const hostKeyOf = (field: string, t: { hostKey?: string; hostKeyFile?: string }): string => {
        if (t.hostKey) return t.hostKey;
        const file = abs(t.hostKeyFile!);
        try {
            const key = fs.readFileSync(file, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
            if (!HOST_KEY.test(key)) problems.push(`${CONFIG_NAMESPACE}:${field}.hostKeyFile: ${file} does not hold an OpenSSH public host key`);
            return key;
        } catch (e) {
            problems.push(`${CONFIG_NAMESPACE}:${field}.hostKeyFile: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
            return "";
        }
    };

    const config: RotationConfig = structuredClone(cfg);
    config.auditLog = abs(config.auditLog);
    if (config.store.kind === "file") {
        config.store.dir = abs(config.store.dir);
        checkCommittedGeneration(stack, config, committedGeneration(config.store.dir, config.secret.name));
    }
    const src = config.source;
    let sourceHostKey: string | undefined;
    switch (src.kind) {
        case "redis-acl":
        case "postgres-role":
            src.adminPasswordFile = mustExist("source.adminPasswordFile", abs(src.adminPasswordFile));
            break;
        case "http-token":
            src.adminTokenFile = mustExist("source.adminTokenFile", abs(src.adminTokenFile));
            break;
        case "ssh-authorized-key":
            src.privateKeyFile = mustExist("source.privateKeyFile", abs(src.privateKeyFile));
            sourceHostKey = hostKeyOf("source", src);
            break;
        case "command":
            break;
    }
    const consumerHostKeys: Record<string, string> = {};
    config.consumers.forEach((c, i) => {
        c.privateKeyFile = mustExist(`consumers[${i}].privateKeyFile`, abs(c.privateKeyFile));
        consumerHostKeys[c.name] = hostKeyOf(`consumers[${i}]`, c);
    });
    problems.push(...logPatternProblems(config.consumers));
    if (problems.length) throw new ConfigError(stack, inventoryProblems(problems, inventory));
    return { config, sourceHostKey, consumerHostKeys };
}

/** grep -E's verdict on patterns: exit 1 (no match on empty input) means all valid, 2 an error. */
function grepRejects(patterns: string[]): string | undefined {
    const r = spawnSync("grep", ["-E", ...patterns.flatMap((p) => ["-e", p])], { input: "", encoding: "utf8", env: { ...process.env, LC_ALL: "C.UTF-8" } });
    return r.status === 2 || r.error ? (r.stderr || String(r.error)).trim().replace(/^grep: /, "") : undefined;
}

/**
 * Every log check's pattern as grep -E on the hosts will read it: a pattern
 * grep cannot parse would make the check fail at the end of every rollout
 * (0.1 even read it as "no auth failure"). One grep for all patterns, one per
 * pattern only to name the bad ones.
 */
export function logPatternProblems(consumers: RotationConfig["consumers"]): string[] {
    const checked = consumers.map((c, i) => ({ i, pattern: c.logCheck?.pattern })).filter((x): x is { i: number; pattern: string } => x.pattern !== undefined);
    if (!checked.length || !grepRejects([...new Set(checked.map((x) => x.pattern))])) return [];
    return checked.flatMap(({ i, pattern }) => {
        const why = grepRejects([pattern]);
        return why ? [`${CONFIG_NAMESPACE}:consumers[${i}].logCheck.pattern: ${JSON.stringify(pattern)} is not an extended regular expression grep -E accepts (${why})`] : [];
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

/** The generation whose revocation was started, from a file store's marker (0 when none). */
export function committedGeneration(storeDir: string, secretName: string): number {
    const marker = path.join(storeDir, `${secretName}.committed`);
    if (!fs.existsSync(marker)) return 0;
    const n = Number(fs.readFileSync(marker, "utf8").trim());
    return Number.isInteger(n) && n >= 0 ? n : 0;
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
            `${CONFIG_NAMESPACE}:generation: ${config.generation} is lower than generation ${committed} of ${name}, which was already committed (revocation started); generations only move forward: use ${committed} or higher`,
        ]);
    }
}
