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
export class RotationRefusedError extends Error {
    override readonly name = "RotationRefusedError";
}
