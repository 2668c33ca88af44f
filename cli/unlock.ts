/**
 * `bin/rotate unlock`: after a killed run, the backend's stale lock (file or
 * PostgreSQL) and, on the file backend, a checkpoint metadata file the kill tore.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { backend, removeLock, stackLocks } from "./backend";
import { filesUnder, UsageError } from "./stack";

/**
 * Step providers whose engine is gone: a killed run's. Each ends its process
 * group within a second of noticing (provider/main.ts); until then it may
 * still be running steps, and the lock must stay.
 */
function orphanedProviders(): number[] {
    const cmdline = (pid: string) => {
        try {
            return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
        } catch {
            return "";
        }
    };
    return fs
        .readdirSync("/proc")
        .filter((d) => /^\d+$/.test(d) && cmdline(d).includes("/provider/main.ts"))
        .flatMap((pid) => {
            let parent = "";
            try {
                const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
                parent = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
            } catch {
                return [];
            }
            return /(^|\/)pulumi( |$)/.test(cmdline(parent)) ? [] : [Number(pid)];
        });
}

function waitForOrphans(seconds: number): number[] {
    const until = Date.now() + seconds * 1000;
    let left = orphanedProviders();
    while (left.length && Date.now() < until) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
        left = orphanedProviders();
    }
    return left;
}

/**
 * The file backend stores each object with a `.attrs` sidecar (its metadata).
 * An engine killed while writing the stack's checkpoint can leave that
 * sidecar empty or torn while the checkpoint itself is whole; every later
 * command then fails with "failed to load checkpoint: EOF". The stack's
 * sidecars that do not parse, beside a checkpoint that does, are such tears.
 */
function tornSidecars(root: string, stack: string): string[] {
    const parses = (f: string) => {
        try {
            JSON.parse(fs.readFileSync(f, "utf8"));
            return true;
        } catch {
            return false;
        }
    };
    return filesUnder(path.join(root, ".pulumi", "stacks"), (p) => [`${stack}.json.attrs`, `${stack}.json.bak.attrs`].includes(path.basename(p))).filter(
        (p) => !parses(p) && parses(p.slice(0, -".attrs".length)),
    );
}

/**
 * After a killed run: removes the file backend's stale lock of the stack
 * (one JSON lock per running update) once no process of that run is left,
 * and repairs a checkpoint metadata file the kill left torn.
 */
export async function unlock(stack: string): Promise<number> {
    const b = backend();
    if (b.kind === "other") throw new UsageError(`unlock handles the file:// and postgres:// backends; for ${b.url} use that backend's own tooling`);
    const locks = await stackLocks(stack);
    const torn = b.kind === "file" ? tornSidecars(b.root, stack) : [];
    if (!locks.length && !torn.length) {
        console.log(`rotate: stack ${stack} holds no lock`);
        return 0;
    }
    const orphans = waitForOrphans(3);
    if (orphans.length) {
        console.error(
            `rotate: a step provider of a killed run still runs (pid ${orphans.join(", ")}): it may still be changing consumers; not removing the lock. Wait for it to end (or end it), then unlock again.`,
        );
        return 4;
    }
    for (const l of locks) {
        if (l.alive) {
            const where = l.hostname === os.hostname() ? "this host" : `another host (${l.hostname}): only that host can tell whether it still runs`;
            console.error(
                `rotate: stack ${stack} is locked by process ${l.pid}${l.username ? ` of ${l.username}` : ""} on ${where} since ${l.timestamp ?? "an unknown time"}; not removing`,
            );
            return 4;
        }
        await removeLock(l);
        console.log(
            `rotate: removed the stale lock of process ${l.pid} (${l.timestamp ?? "unknown time"})${b.kind === "postgres" ? ` from the PostgreSQL backend's table ${b.table}` : ""}`,
        );
    }
    for (const t of torn) {
        fs.rmSync(t);
        console.log(`rotate: removed ${t}: the killed engine left this metadata file torn while the checkpoint beside it is whole`);
    }
    return 0;
}
