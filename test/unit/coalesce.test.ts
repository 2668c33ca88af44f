// Jobs for one host sent as one (provider/coalesce.ts): the combined script
// run by a real bash here gives each part its own exit code, stdout and
// stderr, its own timeout, and no more than the limit at once; the coalescer
// sends jobs of one turn together and a lone job as it is.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import type { Job, RunResult } from "../../provider/agent";
import { Coalescer, combinedScript, splitResults } from "../../provider/coalesce";

/** Runs a job's script with bash here, as the agent would on a host. */
function runHere(job: Job): RunResult {
    const r = spawnSync("bash", ["-c", job.script], { input: job.stdin, encoding: "utf8", timeout: job.timeoutSeconds * 1000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, timedOut: r.error !== undefined };
}

test("a combined job: each part's exit code, stdout and stderr, multi-byte output cut right, stdin empty", () => {
    const parts: Job[] = [
        { script: "echo one; echo err-one >&2", stdin: "", timeoutSeconds: 5 },
        { script: "printf 'héllo\\nwörld'; exit 3", stdin: "", timeoutSeconds: 5 },
        { script: "cat; echo after-stdin", stdin: "", timeoutSeconds: 5 },
        { script: "set -eu; x=$'it\\'s \"quoted\" $HOME'; printf '%s' \"$x\" >&2", stdin: "", timeoutSeconds: 5 },
    ];
    const results = splitResults(parts.length, runHere({ script: combinedScript(parts, 2), stdin: "", timeoutSeconds: 20 }));
    assert.deepEqual(results[0], { code: 0, stdout: "one\n", stderr: "err-one\n", timedOut: false });
    assert.deepEqual(results[1], { code: 3, stdout: "héllo\nwörld", stderr: "", timedOut: false });
    assert.deepEqual(results[2], { code: 0, stdout: "after-stdin\n", stderr: "", timedOut: false });
    assert.equal(results[3].stderr, `it's "quoted" $HOME`, "the part's script reaches bash as written");
});

test("a combined job: a part past its timeout is timed out, alone; at most `limit` parts run at once", () => {
    const t0 = Date.now();
    const parts: Job[] = [
        { script: "sleep 10", stdin: "", timeoutSeconds: 1 },
        ...Array.from({ length: 4 }, () => ({ script: "sleep 0.5; echo done", stdin: "", timeoutSeconds: 5 })),
    ];
    const results = splitResults(parts.length, runHere({ script: combinedScript(parts, 2), stdin: "", timeoutSeconds: 30 }));
    const took = (Date.now() - t0) / 1000;
    assert.equal(results[0].timedOut, true);
    assert.equal(results[0].code, null);
    for (const r of results.slice(1)) assert.deepEqual(r, { code: 0, stdout: "done\n", stderr: "", timedOut: false });
    // Two at once: the slow part holds a slot for 1 s, the four half-second parts follow in the other and then both: 1.5 s (all at once: 1 s).
    assert.ok(took >= 1.4 && took < 6, `two at a time: ${took.toFixed(1)} s`);
});

test("a combined answer cut short, or a failed session, fails every part with what is known", () => {
    const lost = splitResults(2, { code: 255, stdout: "", stderr: "connection closed", timedOut: false });
    assert.deepEqual(
        lost.map((r) => [r.code, r.stderr]),
        [
            [255, "connection closed"],
            [255, "connection closed"],
        ],
    );
    const cut = splitResults(2, { code: 0, stdout: "PART 0 0\n", stderr: "", timedOut: false });
    assert.ok(cut.every((r) => r.code === 255 && /cut short/.test(r.stderr)));
});

test("the coalescer sends one turn's jobs as one, a lone job as it is, and scripts over the argument cap in several", async () => {
    const sent: Job[] = [];
    const c = new Coalescer(async (job) => {
        sent.push(job);
        return runHere(job);
    }, 8);
    const results = await Promise.all([1, 2, 3].map((i) => c.submit({ script: `echo part-${i}`, stdin: "", timeoutSeconds: 5 })));
    assert.deepEqual(
        results.map((r) => r.stdout),
        ["part-1\n", "part-2\n", "part-3\n"],
    );
    assert.equal(sent.length, 1, "three jobs, one combined job");
    const alone = await c.submit({ script: "echo alone", stdin: "", timeoutSeconds: 5 });
    assert.equal(alone.stdout, "alone\n");
    assert.equal(sent.at(-1)!.script, "echo alone", "a lone job is sent as it is");
    const big = `: ${"x".repeat(60 * 1024)}; echo big`;
    sent.length = 0;
    const two = await Promise.all([big, big].map((script) => c.submit({ script, stdin: "", timeoutSeconds: 5 })));
    assert.deepEqual(
        two.map((r) => r.stdout),
        ["big\n", "big\n"],
    );
    assert.equal(sent.length, 2, "two 60 KiB scripts do not fit one argument: two jobs");
});
