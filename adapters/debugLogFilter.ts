/**
 * The Node.js SDK logs every RegisterResource response at debug level,
 * secret outputs included in plaintext (inside Pulumi's secret wrapper).
 * The engine writes debug messages to its event log (`--event-log`, the
 * Automation API's events) and shows them with `--debug`, so a rotated secret
 * would leak there. Seen with @pulumi/pulumi 3.248.0 (runtime/resource.js,
 * "RegisterResource RPC finished"). This drops any debug message that carries
 * a secret; imported first by the program so it is in place before any
 * resource is registered.
 */
import * as log from "@pulumi/pulumi/log";
import { specialSecretSig } from "@pulumi/pulumi/runtime/rpc";

/** The marker Pulumi puts on every serialized secret value (the SDK's own constant). */
export const SECRET_SIGNATURE = specialSecretSig;

type Debug = typeof log.debug;

export function installDebugLogFilter(target: { debug: Debug } = log as { debug: Debug }): void {
    const original = target.debug;
    if ((original as { rotationFiltered?: boolean }).rotationFiltered) return;
    const filtered: Debug = (msg, ...rest) => (msg.includes(SECRET_SIGNATURE) ? Promise.resolve() : original(msg, ...rest));
    (filtered as { rotationFiltered?: boolean }).rotationFiltered = true;
    target.debug = filtered;
}

installDebugLogFilter();
