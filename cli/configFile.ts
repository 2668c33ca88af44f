/**
 * The stack's `rotation:` config read from its stack file, as
 * `pulumi config --json --show-secrets` would give it (each key's value a
 * string, a map or list as JSON), without a CLI process that decrypts the
 * stack with the passphrase first (issue 29: 0.3-0.5 s of every command).
 *
 * Only where the file says it plainly: undefined, and the console asks the
 * CLI, when a `rotation:` value is encrypted (`secure:`), when its YAML
 * leaves room for Pulumi's YAML library to read it otherwise (a timestamp, a
 * merge key, a tag, a number with a leading zero), when a top-level value is
 * not a string (Pulumi formats those its own way), or when values may come
 * from elsewhere (the project file's `config:`, an ESC `environment:`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { isDeepStrictEqual } from "node:util";
import yaml from "js-yaml";
import { CONFIG_NAMESPACE } from "../lib/fields";

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Whether a value holds an encrypted one anywhere (`{secure: ...}`). */
const holdsSecure = (v: unknown): boolean => (Array.isArray(v) ? v.some(holdsSecure) : isMap(v) ? "secure" in v || Object.values(v).some(holdsSecure) : false);

/** The YAML of a file, or undefined when it cannot be read or parsed. */
function load(file: string, schema: yaml.Schema): unknown {
    try {
        return yaml.load(fs.readFileSync(file, "utf8"), { schema, filename: file });
    } catch {
        return undefined;
    }
}

/**
 * The `rotation:` keys of `stackFile` with their values as Pulumi hands them
 * over, or undefined where only the CLI can tell (see above).
 */
export function plainConfigOf(projectDir: string, stackFile: string): Record<string, string> | undefined {
    const project = load(path.join(projectDir, "Pulumi.yaml"), yaml.JSON_SCHEMA);
    if (!isMap(project) || "config" in project) return undefined;
    if (!fs.existsSync(stackFile)) return undefined;
    const doc = load(stackFile, yaml.JSON_SCHEMA);
    // The default schema also knows timestamps, merge keys, binary and sets: where it reads the file otherwise, so might Pulumi's.
    if (!isMap(doc) || !isDeepStrictEqual(doc, load(stackFile, yaml.DEFAULT_SCHEMA)) || "environment" in doc) return undefined;
    const config = doc.config ?? {};
    if (!isMap(config)) return undefined;
    // A number written with a leading zero (010): octal to Pulumi's YAML library, decimal to js-yaml.
    if (
        /(^|[\s:[{,-])[-+]?0[0-9_]/m.test(
            fs
                .readFileSync(stackFile, "utf8")
                .replace(/#.*$/gm, "")
                .replace(/"[^"\n]*"|'[^'\n]*'/g, '""'),
        )
    )
        return undefined;
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(config)) {
        if (!key.startsWith(`${CONFIG_NAMESPACE}:`)) continue;
        if (holdsSecure(value)) return undefined;
        if (typeof value === "string") out[key] = value;
        else if (isMap(value) || Array.isArray(value)) out[key] = JSON.stringify(sortedKeys(value));
        else return undefined;
    }
    return out;
}

/**
 * A value with every map's keys in order, as the CLI hands it over (its maps
 * are Go maps, marshalled sorted): what iterates the secrets, the console's
 * runs and their output, then goes in the order it would through the CLI.
 */
function sortedKeys(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(sortedKeys);
    if (isMap(v))
        return Object.fromEntries(
            Object.keys(v)
                .sort()
                .map((k) => [k, sortedKeys(v[k])]),
        );
    return v;
}
