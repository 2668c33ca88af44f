/**
 * A large consumer inventory lives in a YAML file that the stack config names
 * (`rotation:consumersFile`), not in the stack config itself: the language
 * host hands the program its whole config in one environment variable, which
 * Linux caps at 128 KiB (a stack stopped at 185 inline consumers, issue 7).
 * The file's digest is part of the stack's outputs, so a changed inventory
 * shows in `pulumi preview`.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import yaml from "js-yaml";
import { CONFIG_NAMESPACE } from "./configSchema";
import { ConfigError } from "./errors";

export interface InventoryFile {
    /** As the stack config names it. */
    file: string;
    /** sha256 of the file's bytes. */
    sha256: string;
}

/**
 * Replaces `consumersFile` in the raw `rotation:` keys by the `consumers`
 * list the file holds (a YAML list, or a mapping with a `consumers` list).
 * Everything else, including the consumers' fields, is validated afterwards
 * like inline config.
 */
export function readInventory(stack: string, raw: Record<string, unknown>, baseDir: string): { raw: Record<string, unknown>; inventory?: InventoryFile } {
    const file = raw.consumersFile;
    if (file === undefined) return { raw };
    const field = `${CONFIG_NAMESPACE}:consumersFile`;
    const problem = (msg: string) => new ConfigError(stack, [`${field}: ${msg}`]);
    if (typeof file !== "string" || !file.trim()) throw problem("must be the path of a YAML file listing the consumers");
    if (raw.consumers !== undefined) throw problem(`set only one of ${CONFIG_NAMESPACE}:consumers or ${CONFIG_NAMESPACE}:consumersFile`);
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
    const consumers = Array.isArray(doc) ? doc : (doc as { consumers?: unknown } | null)?.consumers;
    if (!Array.isArray(consumers)) throw problem(`${file} must hold a list of consumers (or a mapping with a "consumers" list)`);
    const { consumersFile: _drop, ...rest } = raw;
    return {
        raw: { ...rest, consumers },
        inventory: { file, sha256: createHash("sha256").update(bytes).digest("hex") },
    };
}

/** Error lines about `rotation:consumers[...]` name the file the consumers came from. */
export function inventoryProblems(problems: readonly string[], inventory: InventoryFile | undefined): string[] {
    if (!inventory) return [...problems];
    const prefix = `${CONFIG_NAMESPACE}:consumers`;
    return problems.map((p) => (p.startsWith(prefix) ? `${CONFIG_NAMESPACE}:consumersFile ${inventory.file}: consumers${p.slice(prefix.length)}` : p));
}
