/** Invalid stack configuration: raised before any resource is registered. */
export class ConfigError extends Error {
    override readonly name = "ConfigError";
    constructor(
        readonly stackName: string,
        readonly problems: readonly string[],
    ) {
        super(`Invalid rotation config for stack "${stackName}":\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    }
}

/** A rotation request the current state cannot honour (e.g. rollback after revoke). */
/**
 * A store behind a server that cannot be asked, or answers no: its message
 * names the store and says what to do, never holding a secret or a
 * credential. A store's `ask` throws it; the config check reports it under
 * the store's field.
 */
export class StoreError extends Error {
    override readonly name: string = "StoreError";
}

export class RotationRefusedError extends Error {
    override readonly name = "RotationRefusedError";
}
