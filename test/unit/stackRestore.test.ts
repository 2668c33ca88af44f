// The stack file of a refused update (issue 23): start and rollback write
// the generation and mode before the engine runs; when the engine refuses
// before running a step (another run's lock, the program refusing the
// config), the file is put back byte for byte, mode included, by a rename.
// On real files in a temporary project; the engine is a stand-in Stack.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import type { Stack } from "../../cli/pulumiCli";
import { copyOf, restoreFile, stackFileOf } from "../../cli/stackFile";
import { STEP_TYPE } from "../../provider/types";

// cli/stack.ts fixes its project when loaded: these tests' project is a temporary one, set before.
const project = fs.mkdtempSync(path.join(os.tmpdir(), "stack-restore-"));
process.env.ROTATION_PROJECT_DIR = project;
process.env.PULUMI_BACKEND_URL = `file://${path.join(project, ".state")}`;
const STACK = "lab";
const file = path.join(project, "stacks", `Pulumi.${STACK}.yaml`);
// Comments, odd spacing, no newline at the end and a byte that is not UTF-8: what a rewrite would not keep.
const ORIGINAL = Buffer.concat([
    Buffer.from("# the lab\nconfig:\n  rotation:secrets:\n    app-redis:\n      generation: 4   # bumped by start\n"),
    Buffer.from([0xff, 0x0a]),
    Buffer.from("encryptionsalt: v1:x"),
]);

function stackFile(mode = 0o640): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, ORIGINAL);
    fs.chmodSync(file, mode);
}

/** What `pulumi config set` does to the file: rewritten, the generation bumped, another mode. */
const bump = () => {
    fs.writeFileSync(file, 'config:\n  rotation:secrets.app-redis.generation: "5"\n');
    fs.chmodSync(file, 0o644);
};

const mode = (f: string) => fs.statSync(f).mode & 0o7777;
const leftovers = () => fs.readdirSync(path.dirname(file)).filter((n) => n !== path.basename(file));

test("restoreFile puts the exact bytes and the mode back, by renaming a new file over it", () => {
    stackFile(0o640);
    const before = copyOf(file);
    bump();
    // A reader that opened the bumped file keeps reading it whole: the restore replaced the file, it did not rewrite it in place.
    const reader = fs.openSync(file, "r");
    try {
        assert.equal(restoreFile(before), true);
        assert.deepEqual(fs.readFileSync(file), ORIGINAL);
        assert.equal(mode(file), 0o640);
        assert.match(fs.readFileSync(reader, "utf8"), /generation: "5"/);
    } finally {
        fs.closeSync(reader);
    }
    assert.deepEqual(leftovers(), [], "no temporary file left beside it");
    const inode = fs.statSync(file).ino;
    assert.equal(restoreFile(before), false, "a file already as it was is left alone");
    assert.equal(fs.statSync(file).ino, inode);
});

test("restoreFile removes a file that did not exist before", () => {
    const gone = path.join(project, "stacks", "Pulumi.new.yaml");
    const before = copyOf(gone);
    fs.writeFileSync(gone, "config: {}\n");
    assert.equal(restoreFile(before), true);
    assert.equal(fs.existsSync(gone), false);
});

test("stackFileOf: stacks/Pulumi.<stack>.yaml, after the last part of a qualified name", () => {
    assert.equal(stackFileOf("/p", "dev"), "/p/stacks/Pulumi.dev.yaml");
    assert.equal(stackFileOf("/p", "acme/secret-rotation/dev"), "/p/stacks/Pulumi.dev.yaml");
});

const LOCKED =
    "code: 255\n stderr: error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.";

/** A stack whose config writes change the file as Pulumi does and whose `up` emits these events, then fails. */
function fakeStack(events: Partial<EngineEvent>[], error: string, failWrite = false): Stack {
    return {
        name: STACK,
        setAllConfig: async () => {
            bump();
            if (failWrite) throw new Error("pulumi config set-all: exit 1");
        },
        removeAllConfig: async () => undefined,
        up: async (opts: { onEvent?: (e: EngineEvent) => void }) => {
            for (const [i, e] of events.entries()) opts.onEvent?.({ sequence: i, timestamp: 0, ...e } as EngineEvent);
            throw new Error(error);
        },
    } as unknown as Stack;
}

/** Another run's lock in the file backend, held by this (live) process. */
function lockHeld(): void {
    const dir = path.join(project, ".state", ".pulumi", "locks", "organization", "secret-rotation", STACK);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "other.json"), JSON.stringify({ pid: process.pid, hostname: os.hostname(), timestamp: "2026-12-05T10:00:00Z" }));
}

async function started(stack: Stack) {
    const { setSecretKeys } = await import("../../cli/stack");
    const { runUpdate } = await import("../../cli/run");
    const written = await setSecretKeys(stack, [{ secret: "app-redis", key: "generation", value: "5" }]);
    assert.match(fs.readFileSync(file, "utf8"), /generation: "5"/, "the start wrote the stack file");
    const out = { write: () => true } as unknown as NodeJS.WriteStream;
    const secrets = [{ name: "app-redis", generation: 5, mode: "rotate" as const, consumers: ["web-1"], after: [] }];
    return runUpdate({
        stack,
        command: "start",
        secrets,
        what: "rotation of app-redis 4 -> 5",
        auditLog: path.join(project, "audit.log"),
        view: "plain",
        out,
        committed: async () => undefined,
        written,
    });
}

test("a start the engine refuses for another run's lock leaves the stack file as it was and says so (exit 4)", async () => {
    stackFile(0o640);
    lockHeld();
    const { LockedError } = await import("../../cli/stack");
    await assert.rejects(started(fakeStack([], LOCKED)), (e: Error) => {
        assert.ok(e instanceof LockedError);
        assert.equal(
            e.message,
            `stack ${STACK} is locked by process ${process.pid} on ${os.hostname()} since 2026-12-05T10:00:00Z; ` +
                `nothing was changed (stacks/Pulumi.${STACK}.yaml is as it was before this start). Wait for it to finish, then run bin/rotate start again`,
        );
        return true;
    });
    assert.deepEqual(fs.readFileSync(file), ORIGINAL, "byte for byte");
    assert.equal(mode(file), 0o640);
    assert.deepEqual(leftovers(), []);
    fs.rmSync(path.join(project, ".state", ".pulumi", "locks"), { recursive: true });
});

test("a start the program refuses before any step leaves the stack file as it was; the way on is to start again, not resume", async () => {
    stackFile();
    const { record } = await started(
        fakeStack(
            [
                {
                    diagnosticEvent: {
                        message: "error: Invalid rotation config of stack lab: secrets.app-redis.generation: ...",
                        severity: "error",
                        color: "never",
                    } as never,
                },
            ],
            "code: 255",
        ),
    );
    assert.equal(record.exitCode, 2);
    assert.deepEqual(record.next, [
        `nothing was changed (stacks/Pulumi.${STACK}.yaml is as it was before this start): fix the cause above, then run bin/rotate start again`,
    ]);
    assert.deepEqual(fs.readFileSync(file), ORIGINAL);
});

test("once the engine ran a step the stack file keeps what the start wrote: resume goes on from it", async () => {
    stackFile();
    const urn = `urn:pulumi:${STACK}::secret-rotation::rotation:index:Rotation$${STEP_TYPE}::app-redis-rollout-web-1`;
    const { record } = await started(
        fakeStack(
            [
                { resourcePreEvent: { metadata: { op: "create", urn, type: STEP_TYPE } } as never },
                {
                    diagnosticEvent: {
                        urn,
                        message: "error: app-redis → consumer web-1: health check: answered 503",
                        severity: "error",
                        color: "never",
                    } as never,
                },
            ],
            "code: 255",
        ),
    );
    assert.equal(record.exitCode, 1);
    assert.match(record.next[0], /then bin\/rotate resume --stack lab --yes/);
    assert.match(fs.readFileSync(file, "utf8"), /generation: "5"/);
});

test("a config write that fails half-way puts the stack file back before the error goes on", async () => {
    stackFile();
    const { setSecretKeys } = await import("../../cli/stack");
    await assert.rejects(setSecretKeys(fakeStack([], "", true), [{ secret: "app-redis", key: "generation", value: "5" }]), /config set-all: exit 1/);
    assert.deepEqual(fs.readFileSync(file), ORIGINAL);
});
