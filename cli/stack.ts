/**
 * The stack as the console sees it: this project, run by bin/pulumi (so the
 * console and a plain `bin/pulumi up` share one set of defaults: backend, dev
 * passphrase, parallelism, continue-on-error; cli/pulumiCli.ts). The config
 * is read once per command, from the stack file where it says it plainly
 * (cli/configFile.ts), and validated by the program's own schema
 * (lib/config.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import yaml from "js-yaml";
import { parseEnvironment, type EnvironmentConfig } from "../lib/config";
import { readInventory, type InventoryFile } from "../lib/inventory";
import { rotationKeys } from "../adapters/resolve";
import { type FileCopy, copyOf, restoreFile, stackFileOf } from "./stackFile";
import { type Cli, type ConfigMap, Stack, run } from "./pulumiCli";
import { plainConfigOf } from "./configFile";

export const ROOT = path.resolve(__dirname, "..");
/** The Pulumi project the commands act on: this checkout, or a copy of it (ROTATION_PROJECT_DIR, used by the tests). */
export const PROJECT = process.env.ROTATION_PROJECT_DIR ? path.resolve(process.env.ROTATION_PROJECT_DIR) : ROOT;

/** A problem with what the operator asked (exit code 2). */
export class UsageError extends Error {
    override readonly name = "UsageError";
}

/** The stack is locked by another update (exit code 4). */
export class LockedError extends Error {
    override readonly name = "LockedError";
}

export interface StackConfig {
    env: EnvironmentConfig;
    inventory?: InventoryFile;
    /** The raw `rotation:` keys as the program receives them. */
    raw: Record<string, unknown>;
}

/** The project's CLI: ROOT/bin/pulumi, run in the project. */
function cli(env: Record<string, string> = {}): Cli {
    if (!fs.existsSync(path.join(ROOT, ".tools", "bin", "pulumi"))) throw new UsageError("the Pulumi toolchain is not installed; run: npm run setup");
    return { command: path.join(ROOT, "bin", "pulumi"), project: PROJECT, env: { ROTATION_PROJECT_DIR: PROJECT, ...env } };
}

/** The project's name (Pulumi.yaml), which the backend files its stacks under. */
export function projectName(): string {
    const doc = yaml.load(fs.readFileSync(path.join(PROJECT, "Pulumi.yaml"), "utf8"), { schema: yaml.JSON_SCHEMA }) as { name?: unknown } | null;
    if (typeof doc?.name !== "string") throw new UsageError(`${path.join(PROJECT, "Pulumi.yaml")} names no project`);
    return doc.name;
}

/**
 * A stack whose file is made from a template (stacks/templates/Pulumi.<name>.yaml:
 * the local dev stack, whose generations move with every rotation, so git
 * ignores the file itself and a rotation leaves the checkout clean) gets its
 * file on first use. bin/pulumi does the same for a plain `pulumi` command.
 */
export function stackFileFromTemplate(name: string): void {
    const short = name.split("/").pop()!;
    const file = path.join(PROJECT, "stacks", `Pulumi.${short}.yaml`);
    const template = path.join(PROJECT, "stacks", "templates", `Pulumi.${short}.yaml`);
    if (fs.existsSync(file) || !fs.existsSync(template)) return;
    fs.copyFileSync(template, file, fs.constants.COPYFILE_EXCL);
    process.stderr.write(`rotate: made stacks/Pulumi.${short}.yaml from stacks/templates/Pulumi.${short}.yaml\n`);
}

/**
 * The stack, which must exist. Only a mutating command that was confirmed
 * (`mayCreate`) creates it, and only from its stack file: a mistyped name on
 * a command that reads creates nothing. `stored`: the backend's own objects
 * hold it (cli/backend.ts); otherwise the CLI is asked (`stack ls`: a
 * process and a login), which also lists the stacks there are.
 */
export async function openStack(name: string, mayCreate: boolean, stored?: boolean): Promise<Stack> {
    stackFileFromTemplate(name);
    const stack = new Stack(name, cli(), projectName);
    if (stored) return stack;
    const stacks = JSON.parse((await run(cli(), ["stack", "ls", "--json"])).stdout) as { name: string }[];
    if (stacks.some((s) => s.name === name || s.name.endsWith(`/${name}`))) return stack;
    const file = stackFileOf(PROJECT, name);
    if (mayCreate && fs.existsSync(file)) {
        // `stack init` ignores the stack file's secretsprovider (it would ask for a passphrase); name it.
        const provider = (yaml.load(fs.readFileSync(file, "utf8")) as { secretsprovider?: string } | null)?.secretsprovider;
        const named = provider && provider !== "passphrase" && provider !== "default" ? ["--secrets-provider", provider] : [];
        await run(cli(), ["stack", "init", name, ...named]);
        return stack;
    }
    const have = stacks.map((s) => s.name).join(", ") || "none";
    throw new UsageError(
        `no stack "${name}"${fs.existsSync(file) ? " in the state backend yet (bin/rotate start --yes creates it)" : ` (no stacks/Pulumi.${name}.yaml either; stacks: ${have})`}`,
    );
}

/** The stack's `rotation:` config, read once and validated by the program's schema (throws ConfigError naming every field). */
export async function readConfig(stack: Stack): Promise<StackConfig> {
    let flat = plainConfigOf(PROJECT, stackFileOf(PROJECT, stack.name));
    if (!flat) {
        const all = JSON.parse((await run(stack.cli, ["config", "--show-secrets", "--json", "--stack", stack.name])).stdout) as ConfigMap;
        flat = Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.value]));
    }
    const { raw, inventory } = readInventory(stack.name, rotationKeys(flat), PROJECT);
    if (raw.secret !== undefined || raw.generation !== undefined) {
        throw new UsageError(
            `stack ${stack.name} still has the one-secret layout of 0.2 (rotation:secret): move it under rotation:secrets (docs/operating.md, "Upgrading from 0.2")`,
        );
    }
    return { env: parseEnvironment(stack.name, raw, inventory), inventory, raw };
}

/**
 * Sets keys of secrets' config in the stack file (a value of undefined
 * removes the key), in one write each. Returns the file as it was before, for
 * the update to put back if the engine runs nothing (cli/stackFile.ts); a
 * write that fails half-way puts it back at once.
 */
export async function setSecretKeys(stack: Stack, values: { secret: string; key: string; value: string | undefined }[]): Promise<FileCopy> {
    const before = copyOf(stackFileOf(PROJECT, stack.name));
    const map: ConfigMap = {};
    for (const v of values) if (v.value !== undefined) map[`rotation:secrets.${v.secret}.${v.key}`] = { value: v.value };
    const gone = values.filter((v) => v.value === undefined).map((v) => `rotation:secrets.${v.secret}.${v.key}`);
    try {
        // Removals first: a key removed and then written below (a whole `approval` or `outsideWindow`) starts afresh.
        if (gone.length) await stack.removeAllConfig(gone, true);
        if (Object.keys(map).length) await stack.setAllConfig(map, true);
    } catch (e) {
        try {
            restoreFile(before);
        } catch (r) {
            (e as Error).message +=
                `; ${path.relative(PROJECT, before.file)} could not be put back as it was (${(r as Error).message}): see git diff ${path.relative(PROJECT, before.file)}`;
        }
        throw e;
    }
    return before;
}

/** Every file below `dir` (none if it does not exist) that `keep` accepts. */
export function filesUnder(dir: string, keep: (file: string) => boolean): string[] {
    if (!fs.existsSync(dir)) return [];
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = path.join(dir, e.name);
        return e.isDirectory() ? filesUnder(p, keep) : keep(p) ? [p] : [];
    });
}
