// Jobs for one host sent as one (provider/coalesce.ts): the combined script
// run by a real bash here gives each part its own stdin, exit code, stdout
// and stderr and its own timeout, and keeps a part's stdin out of every argv;
// the coalescer sends jobs of one turn and one kind together and a lone job
// as it is.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { test } from "node:test";
import type { Job, RunResult } from "../../provider/agent";
import { Coalescer, combinedScript, combinedStdin, scriptChunks, splitResults } from "../../provider/coalesce";

/** A combined job of these parts, as the coalescer sends it. */
const combined = (parts: Job[]): Job => ({ script: combinedScript(parts), stdin: combinedStdin(parts), timeoutSeconds: 30 });

/** Runs a job's script with bash here, as the agent would on a host. */
function runHere(job: Job): RunResult {
    const r = spawnSync("bash", ["-c", job.script], { input: job.stdin, encoding: "utf8", timeout: job.timeoutSeconds * 1000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, timedOut: r.error !== undefined };
}

test("a combined job: each part's exit code, stdout and stderr, multi-byte output cut right, its own stdin (NUL bytes too) or none", () => {
    const parts: Job[] = [
        { script: "echo one; echo err-one >&2", stdin: "", timeoutSeconds: 5 },
        { script: "printf 'héllo\\nwörld'; exit 3", stdin: "", timeoutSeconds: 5 },
        { script: "cat; echo after-stdin", stdin: "", timeoutSeconds: 5 },
        { script: "set -eu; x=$'it\\'s \"quoted\" $HOME'; printf '%s' \"$x\" >&2", stdin: "", timeoutSeconds: 5 },
        { script: "od -An -c | tr -s ' '", stdin: "new-Secret\0user\0", timeoutSeconds: 5 },
        { script: "cat", stdin: "line 1\nline 2 é\n", timeoutSeconds: 5 },
    ];
    const results = splitResults(parts.length, runHere(combined(parts)));
    assert.deepEqual(results[0], { code: 0, stdout: "one\n", stderr: "err-one\n", timedOut: false });
    assert.deepEqual(results[1], { code: 3, stdout: "héllo\nwörld", stderr: "", timedOut: false });
    assert.deepEqual(results[2], { code: 0, stdout: "after-stdin\n", stderr: "", timedOut: false });
    assert.equal(results[3].stderr, `it's "quoted" $HOME`, "the part's script reaches bash as written");
    assert.equal(results[4].stdout.trim(), "n e w - S e c r e t \\0 u s e r \\0", "a part's stdin byte for byte");
    assert.equal(results[5].stdout, "line 1\nline 2 é\n");
    assert.ok(
        !combinedScript(parts).includes("new-Secret") && !combinedScript(parts).includes(Buffer.from("new-Secret").toString("base64")),
        "no stdin in the script (an argv)",
    );
});

test("a combined job: a part past its timeout is timed out, alone; the others run at once", () => {
    const t0 = Date.now();
    const parts: Job[] = [
        { script: "sleep 10", stdin: "", timeoutSeconds: 1 },
        ...Array.from({ length: 4 }, () => ({ script: "sleep 0.5; echo done", stdin: "", timeoutSeconds: 5 })),
    ];
    const results = splitResults(parts.length, runHere(combined(parts)));
    const took = (Date.now() - t0) / 1000;
    assert.equal(results[0].timedOut, true);
    assert.equal(results[0].code, null);
    for (const r of results.slice(1)) assert.deepEqual(r, { code: 0, stdout: "done\n", stderr: "", timedOut: false });
    assert.ok(took < 4, `the slow part is cut at its 1 s, the others run beside it: ${took.toFixed(1)} s`);
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
    });
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

test("only jobs of one kind go together: a quick read does not wait on another consumer's reload", async () => {
    const sent: { job: Job; at: number }[] = [];
    const start = Date.now();
    // Run without blocking, so that one job can end while another runs.
    const c = new Coalescer(
        (job) =>
            new Promise<RunResult>((resolve) => {
                sent.push({ job, at: Date.now() - start });
                const child = spawn("bash", ["-c", job.script], { stdio: ["pipe", "pipe", "pipe"] });
                let stdout = "";
                child.stdout.on("data", (d) => (stdout += d));
                child.on("close", (code) => resolve({ code, stdout, stderr: "", timedOut: false }));
                child.stdin.end(job.stdin);
            }),
    );
    const done: Record<string, number> = {};
    const timed = (name: string, job: Job) => c.submit(job).then((r) => ((done[name] = Date.now() - start), r));
    const [readA, readB, reload] = await Promise.all([
        timed("readA", { script: "echo a", stdin: "", timeoutSeconds: 5 }),
        timed("readB", { script: "echo b", stdin: "", timeoutSeconds: 5 }),
        timed("reload", { script: "sleep 0.5; echo reloaded", stdin: "", timeoutSeconds: 5, kind: "reload" }),
    ]);
    assert.deepEqual([readA.stdout, readB.stdout, reload.stdout], ["a\n", "b\n", "reloaded\n"]);
    assert.equal(sent.length, 2, "the two reads as one job, the reload as another");
    assert.equal(sent.find((s) => s.job.script === "sleep 0.5; echo reloaded")?.job.kind, "reload", "the lone reload is sent as it is");
    assert.ok(done.readA < done.reload - 300 && done.readB < done.reload - 300, `the reads answered before the reload ended: ${JSON.stringify(done)}`);
});

test("a host's items are cut into scripts that each fit a job, in order, halved only as far as needed", () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const build = (part: number[]) => part.map((i) => `: ${"x".repeat(30 * 1024)} ${i}`).join("\n");
    const chunks = scriptChunks(items, build);
    assert.deepEqual(
        chunks.map((c) => c.part),
        [
            [0, 1, 2],
            [3, 4],
            [5, 6, 7],
            [8, 9],
        ],
        "10 items of 30 KiB: 5 and 5, then runs of 3 and 2 under 96 KiB",
    );
    assert.ok(chunks.every((c) => c.script === build(c.part) && c.script.length <= 96 * 1024));
    assert.deepEqual(
        scriptChunks([1, 2, 3], (p) => p.join(",")),
        [{ part: [1, 2, 3], script: "1,2,3" }],
        "a small script stays whole",
    );
});
