/**
 * The stack file (stacks/Pulumi.<stack>.yaml) around an update. `start` and
 * `rollback` write the new generation and mode there before the engine runs;
 * when the engine then refuses the update before running any step (another
 * run holds the lock, the program refuses the config), the file is put back
 * byte for byte, so "nothing was changed" holds for the checkout too: a
 * refused start leaves no bumped generation to commit, or to undo by hand
 * (issue 23). Plain files only, so a test can hold it to a real file.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** A file's exact bytes and permission bits at one moment; without bytes, it did not exist. */
export interface FileCopy {
    readonly file: string;
    readonly bytes?: Buffer;
    readonly mode?: number;
}

/** The stack's config file in a project (Pulumi.yaml: `stackConfigDir: stacks`); of `org/project/dev`, Pulumi names it after `dev`. */
export const stackFileOf = (project: string, stack: string): string => path.join(project, "stacks", `Pulumi.${stack.split("/").pop()}.yaml`);

/** The file as it is now: bytes and mode read through one descriptor, so both are of the same file. */
export function copyOf(file: string): FileCopy {
    let fd: number;
    try {
        fd = fs.openSync(file, "r");
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return { file };
        throw e;
    }
    try {
        return { file, mode: fs.fstatSync(fd).mode & 0o7777, bytes: fs.readFileSync(fd) };
    } finally {
        fs.closeSync(fd);
    }
}

const same = (a: FileCopy, b: FileCopy) => (a.bytes && b.bytes ? a.bytes.equals(b.bytes) && a.mode === b.mode : !a.bytes && !b.bytes);

/**
 * Puts the file back as `copy` holds it, and says whether that changed
 * anything. The bytes go to a new file beside it, with the old mode and
 * synced, which is then renamed over it: a reader (the engine, git, another
 * command) sees the whole old file or the whole new one, and a crash leaves
 * one of them, never half. A file that did not exist is removed again.
 */
export function restoreFile(copy: FileCopy): boolean {
    if (same(copyOf(copy.file), copy)) return false;
    if (!copy.bytes) {
        fs.rmSync(copy.file, { force: true });
        return true;
    }
    const dir = path.dirname(copy.file);
    // A dot file with another suffix: Pulumi looks for Pulumi.<stack>.yaml only, git shows it as untracked if a crash leaves it.
    const temp = path.join(dir, `.${path.basename(copy.file)}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
    try {
        const fd = fs.openSync(temp, "wx", 0o600);
        try {
            fs.writeFileSync(fd, copy.bytes);
            // Set after the write: the mode given to open is cut by the umask.
            fs.fchmodSync(fd, copy.mode ?? 0o644);
            fs.fsyncSync(fd);
        } finally {
            fs.closeSync(fd);
        }
        fs.renameSync(temp, copy.file);
    } catch (e) {
        fs.rmSync(temp, { force: true });
        throw e;
    }
    syncDir(dir);
    return true;
}

/** Makes a rename in `dir` durable; a file system that cannot sync a directory is left to its own guarantees. */
function syncDir(dir: string): void {
    let fd: number | undefined;
    try {
        fd = fs.openSync(dir, "r");
        fs.fsyncSync(fd);
    } catch {
        // EISDIR/EINVAL on some file systems: the rename itself is still atomic.
    } finally {
        if (fd !== undefined) fs.closeSync(fd);
    }
}
