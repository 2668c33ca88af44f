/**
 * Entry point of the `pulumi-resource-rotation` plugin (launched by the
 * script that bin/setup-toolchain writes beside the Pulumi CLI).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { main } from "@pulumi/pulumi/provider";
import { pool } from "./exec";
import { stepProvider } from "./stepProvider";

/** Socket directories of providers that were killed (the engine ends plugins with SIGKILL). */
function removeStaleSocketDirs(): void {
    for (const name of fs.readdirSync(os.tmpdir())) {
        const m = /^rotation-ssh-(\d+)-/.exec(name);
        if (!m) continue;
        try {
            process.kill(Number(m[1]), 0);
        } catch {
            fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
        }
    }
}

/**
 * The engine starts each plugin in a process group of its own, so a kill -9
 * of the engine's group leaves the provider alive, still running the steps in
 * flight (seen with 0.1's dynamic provider minutes later). When the engine is
 * gone the provider ends its whole group: itself, its scripts and its SSH
 * masters. Writes are atomic, so a step cut short leaves no half-written file.
 */
/** Whether this process leads its process group (/proc/self/stat: pid (comm) state ppid pgrp ...). */
function ownGroup(): boolean {
    const stat = fs.readFileSync("/proc/self/stat", "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]) === process.pid;
}

function endWithTheEngine(): void {
    const engine = process.ppid;
    setInterval(() => {
        if (process.ppid === engine) return;
        pool.close();
        try {
            if (ownGroup()) process.kill(-process.pid, "SIGKILL");
        } finally {
            process.exit(1);
        }
    }, 250).unref();
}

removeStaleSocketDirs();
endWithTheEngine();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
        pool.close();
        process.exit(1);
    });
}
main(stepProvider, process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exit(1);
});
