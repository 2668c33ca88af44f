// Entry point: validate the stack's `rotation:` config, then build the rotation.
// Nothing is registered unless the whole config is valid.
import "./lib/debugLogFilter"; // first: keeps secrets out of the SDK's debug log
import "./lib/sourcePositions"; // keeps one source frame per resource in the state, not the whole stack
import * as pulumi from "@pulumi/pulumi";
import { Rotation } from "./components/rotation";
import { parseRotationConfig } from "./lib/config";
import { readInventory } from "./lib/inventory";
import { resolveRotation, rotationKeys } from "./lib/resolve";

const stack = pulumi.getStack();
const { raw, inventory } = readInventory(stack, rotationKeys(pulumi.runtime.allConfig()), process.cwd());
const config = parseRotationConfig(stack, raw, inventory);
const resolved = resolveRotation(stack, config, process.cwd(), inventory);

let summary: Record<string, unknown>;
if (config.generation === 0) {
    // Generation 0 is the secret in place before the first managed rotation.
    summary = { secret: config.secret.name, generation: 0, mode: config.mode, consumers: config.consumers.map((c) => c.name), note: "set rotation:generation to 1 to rotate" };
} else {
    const rotation = new Rotation(config.secret.name, { context: { stack, ...resolved } });
    summary = { ...rotation.summary };
}
// A changed inventory file changes this output, so preview shows it.
if (inventory) summary.inventory = inventory;

/** What this stack's rotation is: generation, mode, consumers, phase order. Never the secret. */
export const rotation = summary;
