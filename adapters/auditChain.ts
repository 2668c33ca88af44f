/**
 * The audit log as a hash chain: each JSON line carries `prev`, the hash of
 * the line before it, and `hash`, the hash of its own content with `prev`. A
 * line edited, removed or moved breaks the chain at that point, and
 * `bin/rotate audit verify` names the first line where it breaks. (Whoever
 * can write the file can also rewrite every hash after an edit; the chain
 * makes tampering evident to a check, it does not prevent it. Ship the log to
 * write-once storage for that.)
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

export const GENESIS = "0".repeat(64);
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** The line for `record` after a line whose hash is `prev`. */
export function chainedLine(record: Record<string, unknown>, prev: string): string {
    const { prev: _p, hash: _h, ...rest } = record;
    const body = JSON.stringify({ ...rest, prev });
    return JSON.stringify({ ...rest, prev, hash: sha256(body) });
}

/** The hash the next line must carry as `prev`. */
function lastHash(file: string): string {
    if (!fs.existsSync(file)) return GENESIS;
    const fd = fs.openSync(file, "r");
    try {
        const size = fs.fstatSync(fd).size;
        const len = Math.min(size, 65536);
        const buf = Buffer.alloc(len);
        fs.readSync(fd, buf, 0, len, size - len);
        const lines = buf
            .toString("utf8")
            .split("\n")
            .filter((l) => l.trim());
        if (!lines.length) return GENESIS;
        const last = JSON.parse(lines[lines.length - 1]) as { hash?: string };
        // A log from before the chain (0.1) starts a chain at its end.
        return typeof last.hash === "string" ? last.hash : sha256(lines[lines.length - 1]);
    } finally {
        fs.closeSync(fd);
    }
}

const pause = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Appends one chained line; a lock file keeps writers of the same log (several stacks) in line. */
export function appendChained(file: string, record: Record<string, unknown>): void {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const lock = `${file}.lock`;
    for (let tries = 0; ; tries++) {
        try {
            fs.closeSync(fs.openSync(lock, "wx", 0o600));
            break;
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
            // A writer holds a line for milliseconds; a lock older than 10 s was left by a killed one.
            const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
            if (age > 10_000 || tries > 500) fs.rmSync(lock, { force: true });
            else pause(10);
        }
    }
    try {
        fs.appendFileSync(file, `${chainedLine(record, lastHash(file))}\n`, { mode: 0o600 });
    } finally {
        fs.rmSync(lock, { force: true });
    }
}

export interface ChainReport {
    ok: boolean;
    /** Chained lines checked. */
    lines: number;
    /** Lines before the chain started (written by 0.1), not checked. */
    legacy: number;
    /** 1-based number and reason of the first line that breaks the chain. */
    firstBad?: { line: number; reason: string };
}

export function verifyChain(text: string): ChainReport {
    const lines = text.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    let prev: string | undefined;
    let legacy = 0;
    let checked = 0;
    for (let i = 0; i < lines.length; i++) {
        const bad = (reason: string): ChainReport => ({ ok: false, lines: checked, legacy, firstBad: { line: i + 1, reason } });
        let rec: Record<string, unknown>;
        try {
            rec = JSON.parse(lines[i]);
        } catch {
            return bad("not a JSON line");
        }
        if (typeof rec.hash !== "string" || typeof rec.prev !== "string") {
            if (prev === undefined) {
                legacy++;
                continue;
            }
            return bad("has no hash: a line was inserted");
        }
        const expectedPrev = prev ?? (i === 0 ? GENESIS : sha256(lines[i - 1]));
        if (rec.prev !== expectedPrev) return bad(`does not follow line ${i}: a line before it was changed, removed or moved`);
        const { hash, ...rest } = rec;
        if (sha256(JSON.stringify(rest)) !== hash) return bad("its content does not match its hash: the line was changed");
        prev = hash as string;
        checked++;
    }
    return { ok: true, lines: checked, legacy };
}
