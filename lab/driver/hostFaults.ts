// Inside a lab host (its mount namespace, entered through its sshd): the
// disk-full faults.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { LabHost } from "./lab";
import { LAB_DIR } from "./paths";

export const sshdPid = (h: LabHost) => fs.readFileSync(path.join(LAB_DIR, "run", `${h.name}-sshd.pid`), "utf8").trim();

/** Runs bash in a lab host's mount namespace. */
export function inHost(h: LabHost, script: string, ...args: string[]): void {
    const r = spawnSync("nsenter", ["-t", sshdPid(h), "-m", "--", "bash", "-c", `set -euo pipefail\n${script}`, "bash", ...args], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`on ${h.name}: ${r.stderr}`);
}

/** Whether the disk-full row's tmpfs sits over the host's /etc/rotation-app (which is itself a bind mount). */
export function tmpfsOn(h: LabHost): boolean {
    // By its source name: inside lab/netns.sh a tmpfs of the namespace's own lies under the host's bind mount too.
    const r = spawnSync("nsenter", ["-t", sshdPid(h), "-m", "--", "findmnt", "-n", "-o", "SOURCE", "--mountpoint", "/etc/rotation-app"], { encoding: "utf8" });
    return r.stdout.split("\n").includes("rotation-fault");
}

/** The small tmpfs of the disk-full row: its files go back to the host's real directory, then it is unmounted. */
export function unmountTmpfs(h: LabHost): void {
    if (!tmpfsOn(h)) return;
    inHost(
        h,
        `rm -f /etc/rotation-app/.filler
cp -a /etc/rotation-app/. "$1"/
umount /etc/rotation-app`,
        h.etcDir,
    );
}

/** A full disk under the host's configs: a 1 MiB tmpfs over /etc/rotation-app holding a copy of its files, then a filler to the last byte. */
export function fillConfigDir(h: LabHost): void {
    inHost(
        h,
        `mount -t tmpfs -o size=1m,mode=755 rotation-fault /etc/rotation-app
cp -a "$1"/. /etc/rotation-app/
dd if=/dev/zero of=/etc/rotation-app/.filler bs=4k 2>/dev/null || true`,
        h.etcDir,
    );
}
