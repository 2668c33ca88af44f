// The audit log's hash chain: appended lines verify; an edited, a removed and
// two swapped lines are each reported at the first line that breaks, by the
// library and by `bin/rotate audit verify`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { appendChained, verifyChain } from "../../adapters/auditChain";

const ROOT = path.resolve(__dirname, "../..");

function logOf(n: number, legacy: string[] = []): { file: string; lines: () => string[]; write: (l: string[]) => void } {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "audit-")), "audit.log");
    if (legacy.length) fs.writeFileSync(file, `${legacy.join("\n")}\n`);
    for (let i = 1; i <= n; i++) appendChained(file, { time: `2026-11-26T00:00:0${i}Z`, secret: "s", generation: i, phase: "granted", outcome: "ok" });
    return {
        file,
        lines: () => fs.readFileSync(file, "utf8").trim().split("\n"),
        write: (l) => fs.writeFileSync(file, `${l.join("\n")}\n`),
    };
}

const cli = (file: string) => spawnSync(path.join(ROOT, "bin", "rotate"), ["audit", "verify", "--log", file], { encoding: "utf8" });

test("appended lines form an intact chain, and the command says so", () => {
    const log = logOf(5);
    assert.deepEqual(verifyChain(fs.readFileSync(log.file, "utf8")), { ok: true, lines: 5, legacy: 0 });
    assert.equal(fs.statSync(log.file).mode & 0o777, 0o600);
    const r = cli(log.file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /5 lines, chain intact/);
});

test("an edited, a removed and two swapped lines are each named", () => {
    const edited = logOf(5);
    const e = edited.lines();
    e[2] = e[2].replace('"outcome":"ok"', '"outcome":"failed"');
    edited.write(e);
    assert.deepEqual(verifyChain(fs.readFileSync(edited.file, "utf8")).firstBad, {
        line: 3,
        reason: "its content does not match its hash: the line was changed",
    });
    const r = cli(edited.file);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /line 3 its content does not match its hash/);

    const removed = logOf(5);
    removed.write(removed.lines().filter((_, i) => i !== 1));
    assert.deepEqual(verifyChain(fs.readFileSync(removed.file, "utf8")).firstBad, {
        line: 2,
        reason: "does not follow line 1: a line before it was changed, removed or moved",
    });

    const swapped = logOf(5);
    const s = swapped.lines();
    [s[3], s[4]] = [s[4], s[3]];
    swapped.write(s);
    assert.equal(verifyChain(fs.readFileSync(swapped.file, "utf8")).firstBad?.line, 4);
});

test("lines from before the chain are counted, not checked; the chain continues from them", () => {
    const log = logOf(2, ['{"time":"2026-01-01T00:00:00Z","phase":"completed"}', '{"time":"2026-01-02T00:00:00Z","phase":"completed"}']);
    assert.deepEqual(verifyChain(fs.readFileSync(log.file, "utf8")), { ok: true, lines: 2, legacy: 2 });
    const l = log.lines();
    l[1] = l[1].replace("01-02", "01-03");
    log.write(l);
    assert.equal(verifyChain(fs.readFileSync(log.file, "utf8")).firstBad?.line, 3, "the first chained line vouches for the last legacy one");
});
