/**
 * A large environment keeps its hosts and consumers in a YAML file that the
 * stack config names (`rotation:inventoryFile`), not in the stack config
 * itself: the language host hands the program its whole config in one
 * environment variable, which Linux caps at 128 KiB (a stack stopped at 185
 * inline consumers, issue 7). The file's digest is part of the stack's
 * outputs, so a changed inventory shows in `pulumi preview`.
 *
 * The file holds `hosts` (name -> host, as rotation:hosts) and `consumers`
 * (secret name -> list of consumers, as rotation:secrets.<name>.consumers).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import yaml from "js-yaml";
import { CONFIG_NAMESPACE, decodeConfigValue } from "./configSchema";
import { ConfigError } from "./errors";

export interface InventoryFile {
    /** As the stack config names it. */
    file: string;
    /** sha256 of the file's bytes. */
    sha256: string;
    /** Hosts and secrets whose consumers came from the file (errors about them name it). */
    hosts: string[];
    consumersOf: string[];
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Merges the file that `inventoryFile` names into the raw `rotation:` keys:
 * its hosts join `hosts`, its consumer lists become the named secrets'
 * `consumers`. Everything is validated afterwards like inline config.
 */
export function readInventory(stack: string, raw: Record<string, unknown>, baseDir: string): { raw: Record<string, unknown>; inventory?: InventoryFile } {
    const file = raw.inventoryFile;
    if (file === undefined) return { raw };
    const field = `${CONFIG_NAMESPACE}:inventoryFile`;
    const problem = (msgs: string | string[]) =>
        new ConfigError(
            stack,
            (Array.isArray(msgs) ? msgs : [msgs]).map((m) => `${field}: ${m}`),
        );
    if (typeof file !== "string" || !file.trim()) throw problem("must be the path of a YAML file with the environment's hosts and consumers");
    const abs = path.resolve(baseDir, file);
    let bytes: Buffer;
    try {
        bytes = fs.readFileSync(abs);
    } catch (e) {
        throw problem(`cannot read ${abs}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    let doc: unknown;
    try {
        doc = yaml.load(bytes.toString("utf8"), { filename: file, schema: yaml.JSON_SCHEMA });
    } catch (e) {
        throw problem(`${file} is not valid YAML: ${(e as Error).message.split("\n")[0]}`);
    }
    if (!isMap(doc) || Object.keys(doc).some((k) => k !== "hosts" && k !== "consumers")) {
        throw problem(`${file} must be a mapping with "hosts" (name -> host) and/or "consumers" (secret name -> list of consumers)`);
    }
    // An inline value that is not a mapping (or not JSON) stays as it is, for the validation to name.
    const inlineHosts = decodeConfigValue(raw.hosts).value;
    const inlineSecrets = decodeConfigValue(raw.secrets).value;
    const hostsOk = inlineHosts === undefined || isMap(inlineHosts);
    const secretsOk = inlineSecrets === undefined || isMap(inlineSecrets);
    const hosts = hostsOk ? { ...((inlineHosts ?? {}) as Record<string, unknown>) } : {};
    const secrets = secretsOk ? structuredClone((inlineSecrets ?? {}) as Record<string, Record<string, unknown>>) : {};
    const problems: string[] = [];
    const fileHosts = doc.hosts ?? {};
    const fileConsumers = doc.consumers ?? {};
    if (!isMap(fileHosts)) problems.push(`${file}: hosts must map host names to hosts`);
    if (!isMap(fileConsumers)) problems.push(`${file}: consumers must map secret names to lists of consumers`);
    if (problems.length) throw problem(problems);
    for (const [h, v] of Object.entries(fileHosts as Record<string, unknown>)) {
        if (h in hosts) problems.push(`${file}: hosts.${h}: also in ${CONFIG_NAMESPACE}:hosts; list each host once`);
        hosts[h] = v;
    }
    for (const [s, list] of Object.entries(secretsOk ? (fileConsumers as Record<string, unknown>) : {})) {
        if (!isMap(secrets[s])) problems.push(`${file}: consumers.${s}: no secret "${s}" in ${CONFIG_NAMESPACE}:secrets`);
        else if (secrets[s].consumers !== undefined)
            problems.push(`${file}: consumers.${s}: ${CONFIG_NAMESPACE}:secrets.${s}.consumers is set too; list them in one place`);
        else if (!Array.isArray(list)) problems.push(`${file}: consumers.${s}: must be a list of consumers`);
        else secrets[s].consumers = list;
    }
    if (problems.length) throw problem(problems);
    const { inventoryFile: _drop, ...rest } = raw;
    return {
        raw: { ...rest, hosts: hostsOk ? hosts : raw.hosts, secrets: secretsOk ? secrets : raw.secrets },
        inventory: {
            file,
            sha256: createHash("sha256").update(bytes).digest("hex"),
            hosts: Object.keys(fileHosts as object),
            consumersOf: Object.keys(fileConsumers as object),
        },
    };
}

/** Error lines about hosts or consumers that came from the inventory file name the file. */
export function inventoryProblems(problems: readonly string[], inventory: InventoryFile | undefined): string[] {
    if (!inventory) return [...problems];
    const at = `${CONFIG_NAMESPACE}:inventoryFile ${inventory.file}: `;
    return problems.map((p) => {
        for (const h of inventory.hosts) {
            const prefix = `${CONFIG_NAMESPACE}:hosts.${h}`;
            if (p.startsWith(prefix) && /^[.:[]/.test(p.slice(prefix.length))) return `${at}hosts.${h}${p.slice(prefix.length)}`;
        }
        for (const s of inventory.consumersOf) {
            const prefix = `${CONFIG_NAMESPACE}:secrets.${s}.consumers`;
            if (p.startsWith(prefix) && /^[.:[]/.test(p.slice(prefix.length))) return `${at}consumers.${s}${p.slice(prefix.length)}`;
        }
        return p;
    });
}
