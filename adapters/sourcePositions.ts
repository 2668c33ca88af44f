/**
 * The Node.js SDK (3.248.0, resource.js `Resource.stackTrace`) sends the whole
 * call stack of every resource registration, and the engine keeps it in the
 * state: ~1.4 KB per resource here (the program's frames, then ts-node's and
 * the SDK's own), more than a third of a consumer's state. Every checkpoint
 * write rewrites it, so it costs time on every step of a large rotation.
 * Only the first frame (the `sourcePosition`, the line that created the
 * resource) is kept. Imported by the program before any resource is made.
 */
import { Resource } from "@pulumi/pulumi/resource";

type StackTrace = (skip: number) => unknown[];

export function keepFirstFrameOnly(target: { stackTrace: StackTrace } = Resource as unknown as { stackTrace: StackTrace }): void {
    const original = target.stackTrace;
    if ((original as { rotationTrimmed?: boolean }).rotationTrimmed) return;
    const trimmed: StackTrace = (skip) => original.call(target, skip).slice(0, 1);
    (trimmed as { rotationTrimmed?: boolean }).rotationTrimmed = true;
    target.stackTrace = trimmed;
}

keepFirstFrameOnly();
