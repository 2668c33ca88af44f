// The SDK's per-resource stack trace is cut to its first frame (the line that
// made the resource) before it reaches the state.
import assert from "node:assert/strict";
import { test } from "node:test";
import { keepFirstFrameOnly } from "../../adapters/sourcePositions";

test("only the first frame of a registration's stack trace is kept, once however often installed", () => {
    const frames = [
        { uri: "file:///p/index.ts", line: 3, column: 1 },
        { uri: "file:///p/node_modules/x.js", line: 9, column: 2 },
    ];
    let skipped: number | undefined;
    const target = { stackTrace: (skip: number) => ((skipped = skip), frames) };
    keepFirstFrameOnly(target);
    keepFirstFrameOnly(target);
    assert.deepEqual(target.stackTrace(4), [frames[0]]);
    assert.equal(skipped, 4);
});

test("the program's import trims the SDK's own Resource.stackTrace", async () => {
    const { Resource } = await import("@pulumi/pulumi/resource");
    const frames = (Resource as unknown as { stackTrace: (skip: number) => unknown[] }).stackTrace(0);
    assert.equal(frames.length, 1, "one frame");
});
