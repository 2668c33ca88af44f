// Entry point: validate the stack's `rotation:` config (the environment's
// hosts and every secret), ask each Vault store's server, hold every moved
// generation to its ceremony and window (lib/gates.ts), then build one
// rotation per secret. Nothing is registered unless all of it is valid.
import "./adapters/debugLogFilter"; // first: keeps secrets out of the SDK's debug log
import "./adapters/sourcePositions"; // keeps one source frame per resource in the state, not the whole stack
import * as pulumi from "@pulumi/pulumi";
import { Rotation } from "./components/rotation";
import { parseEnvironment } from "./lib/config";
import { ConfigError, RotationRefusedError } from "./lib/errors";
import { enforceGates } from "./lib/gates";
import { readInventory } from "./lib/inventory";
import { checkEntered, checkStores, resolveEnvironment, rotationKeys } from "./adapters/resolve";

/**
 * A refused config or request ends the program with its message only:
 * pulumi.RunError skips the SDK's unhandled-error report, and a stack that
 * is never formatted skips source-mapping it through the SDK's frames (an
 * async program spent 17-30 s of CPU on that before the message appeared).
 */
async function validated(stack: string) {
    try {
        const { raw, inventory } = readInventory(stack, rotationKeys(pulumi.runtime.allConfig()), process.cwd());
        const env = parseEnvironment(stack, raw, inventory);
        const rotations = resolveEnvironment(stack, env, process.cwd(), inventory);
        await checkStores(stack, rotations);
        // A typed value (generator kind "manual") only bin/rotate can supply: a plain `up` without it is refused here.
        if (!pulumi.runtime.isDryRun()) await checkEntered(stack, rotations);
        // The ceremony and the window hold for a plain `pulumi up` too, not only for bin/rotate start.
        enforceGates({ stack, env, rotations, project: process.cwd() });
        return { inventory, rotations };
    } catch (e) {
        if (e instanceof ConfigError || e instanceof RotationRefusedError) {
            const refused = new pulumi.RunError(e.message);
            refused.stack = e.message; // never formatted: source-mapping this stack is the slow part
            throw refused;
        }
        throw e;
    }
}

export = async () => {
    const stack = pulumi.getStack();
    const { inventory, rotations } = await validated(stack);

    const summaries: Record<string, Record<string, unknown>> = {};
    const finished = new Map<string, pulumi.Resource>();
    for (const resolved of rotations) {
        const { config } = resolved;
        const name = config.secret.name;
        if (config.generation === 0) {
            // Generation 0 is the secret in place before the first managed rotation: nothing runs.
            summaries[name] = {
                generation: 0,
                mode: config.mode,
                consumers: config.consumers.map((c) => c.name),
                note: `set rotation:secrets.${name}.generation to 1 to rotate`,
            };
            continue;
        }
        // `after`: this rotation starts once those secrets' rotations (in this run) have completed.
        const after = config.after.flatMap((a) => finished.get(a) ?? []);
        const rotation = new Rotation(name, { context: { stack, ...resolved }, after });
        finished.set(name, rotation.finished);
        summaries[name] = { ...rotation.summary };
    }

    return {
        /** What each secret's rotation is: generation, mode, consumers, phase order. Never a secret. */
        secrets: summaries,
        /** The inventory file and its sha256 (a changed inventory changes this output, so preview shows it); empty without one. */
        inventoryFile: inventory ? { file: inventory.file, sha256: inventory.sha256 } : {},
    };
};
