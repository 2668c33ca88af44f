import assert from "node:assert/strict";
import { ConfigError } from "../../lib/errors";

/** The problems of the ConfigError `fn` throws (fails when it throws anything else, or nothing). */
export function problemsOf(fn: () => unknown): string[] {
    let error: unknown;
    try {
        fn();
    } catch (e) {
        error = e;
    }
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return [...error.problems];
}
