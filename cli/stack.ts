/**
 * The stack as the console sees it, through the Pulumi Automation API: a
 * LocalWorkspace over this project, run by bin/pulumi (so the console and a
 * plain `bin/pulumi up` share one set of defaults: backend, dev passphrase,
 * parallelism, continue-on-error). The config is read once per command and
 * validated by the program's own schema (lib/config.ts).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import yaml from "js-yaml";
import { LocalWorkspace, PulumiCommand, Stack, type ConfigMap } from "@pulumi/pulumi/automation";
import { parseEnvironment, type EnvironmentConfig } from "../lib/config";
import { readInventory, type InventoryFile } from "../lib/inventory";
import { rotationKeys } from "../adapters/resolve";
import { type FileCopy, copyOf, restoreFile, stackFileOf } from "./stackFile";

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

let workspace: Promise<LocalWorkspace> | undefined;

/** The project's workspace; bin/pulumi is the CLI it runs (ROOT/bin/pulumi). */
export function openWorkspace(): Promise<LocalWorkspace> {
    workspace ??= (async () => {
        if (!fs.existsSync(path.join(ROOT, ".tools", "bin", "pulumi"))) throw new UsageError("the Pulumi toolchain is not installed; run: npm run setup");
        const pulumiCommand = await PulumiCommand.get({ root: ROOT, skipVersionCheck: true });
        return LocalWorkspace.create({ workDir: PROJECT, pulumiCommand, envVars: { ROTATION_PROJECT_DIR: PROJECT } });
    })();
    return workspace;
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
 * a command that reads creates nothing.
 */
export async function openStack(name: string, mayCreate: boolean): Promise<Stack> {
    stackFileFromTemplate(name);
    const ws = await openWorkspace();
    const stacks = await ws.listStacks();
    if (stacks.some((s) => s.name === name || s.name.endsWith(`/${name}`))) return Stack.select(name, ws);
    const file = stackFileOf(PROJECT, name);
    if (mayCreate && fs.existsSync(file)) {
        // `stack init` ignores the stack file's secretsprovider (it would ask for a passphrase); name it.
        const provider = (yaml.load(fs.readFileSync(file, "utf8")) as { secretsprovider?: string } | null)?.secretsprovider;
        if (!provider || provider === "passphrase" || provider === "default") return Stack.create(name, ws);
        return Stack.create(
            name,
            await LocalWorkspace.create({ workDir: PROJECT, pulumiCommand: ws.pulumiCommand, envVars: ws.envVars, secretsProvider: provider }),
        );
    }
    const have = stacks.map((s) => s.name).join(", ") || "none";
    throw new UsageError(
        `no stack "${name}"${fs.existsSync(file) ? " in the state backend yet (bin/rotate start --yes creates it)" : ` (no stacks/Pulumi.${name}.yaml either; stacks: ${have})`}`,
    );
}

/** The stack's `rotation:` config, read once and validated by the program's schema (throws ConfigError naming every field). */
export async function readConfig(stack: Stack): Promise<StackConfig> {
    const all: ConfigMap = await stack.getAllConfig();
    const flat: Record<string, string> = {};
    for (const [k, v] of Object.entries(all)) flat[k] = v.value;
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
