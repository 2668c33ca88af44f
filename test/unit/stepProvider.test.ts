// The step provider's contract with the engine, called directly with local
// steps (real bash, no engine): a new trigger runs the step again in place,
// any other change is only recorded, state keeps a digest instead of a copy
// of the inputs, secrets come back wrapped as secrets, and deleting a step
// runs its undo script with the stdin it was created with.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { ResultReader } from "../../provider/agent";
import { recordedDigest, stepProvider } from "../../provider/stepProvider";
import { STEP_TYPE, type StepField } from "../../provider/types";

const asSecret = (value: unknown) => ({ [specialSigKey]: specialSecretSig, value });
const URN = `urn:pulumi:unit::p::${STEP_TYPE}::s`;

function tmpDir(): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), "step-provider-"));
}

/** A step that appends one line per run to `log` and prints its stdin's first field. */
function counting(dir: string, patch: Partial<Record<StepField, unknown>> = {}): Record<string, unknown> {
    const log = path.join(dir, "runs");
    return {
        title: "unit: count runs",
        target: { kind: "local" },
        op: "script",
        script: `IFS= read -r -d '' V; echo run >> '${log}'; printf '%s' "$V"`,
        stdin: asSecret("Secret-Value-1\0"),
        triggers: [1],
        captureStdout: true,
        attempts: 1,
        retryDelaySeconds: 0,
        timeoutSeconds: 10,
        ...patch,
    };
}
const runs = (dir: string) => (fs.existsSync(path.join(dir, "runs")) ? fs.readFileSync(path.join(dir, "runs"), "utf8").split("\n").filter(Boolean).length : 0);

test("create runs the step and keeps only triggers, a digest and the captured stdout (as a secret)", async () => {
    const dir = tmpDir();
    const created = await stepProvider.create!(URN, counting(dir));
    assert.equal(runs(dir), 1);
    assert.deepEqual(Object.keys(created.outs).sort(), ["recorded", "stdout", "triggers"]);
    assert.deepEqual(created.outs.stdout, asSecret("Secret-Value-1"));
    assert.ok(!JSON.stringify(created.outs).includes("count runs"), "no copy of the inputs in state");
});

test("a new trigger is an in-place update that runs the step again; the same trigger never does", async () => {
    const dir = tmpDir();
    const { outs } = await stepProvider.create!(URN, counting(dir));
    const bumped = counting(dir, { triggers: [2], stdin: asSecret("Secret-Value-2\0") });
    const d = await stepProvider.diff!("id", URN, outs, bumped);
    assert.equal(d.changes, true);
    assert.equal(d.replaces, undefined, "never a replacement: nothing left to delete at the end");
    const updated = await stepProvider.update!("id", URN, outs, bumped);
    assert.equal(runs(dir), 2);
    assert.deepEqual(updated.outs.stdout, asSecret("Secret-Value-2"));

    assert.equal((await stepProvider.diff!("id", URN, updated.outs, bumped)).changes, false, "unchanged inputs: no change");
    const retitled = counting(dir, { triggers: [2], title: "unit: a new title" });
    assert.equal((await stepProvider.diff!("id", URN, updated.outs, retitled)).changes, true, "a recorded input changed");
    const recorded = await stepProvider.update!("id", URN, updated.outs, retitled);
    assert.equal(runs(dir), 2, "recording a new title runs nothing");
    assert.deepEqual(recorded.outs.stdout, asSecret("Secret-Value-2"), "the captured stdout is kept");
});

test("a failing step names itself, redacts its stdin from the error and writes a failed audit line", async () => {
    const dir = tmpDir();
    const audit = path.join(dir, "audit.log");
    const props = counting(dir, {
        script: `IFS= read -r -d '' V; echo "could not use $V" >&2; exit 7`,
        audit: { path: audit, record: { phase: "granted", secret: "s" } },
    });
    await assert.rejects(stepProvider.create!(URN, props), (e: Error) => {
        assert.equal(e.message, "unit: count runs: exited with code 7: could not use [secret]");
        return true;
    });
    const line = JSON.parse(fs.readFileSync(audit, "utf8"));
    assert.equal(line.outcome, "failed");
    assert.equal(line.phase, "granted");
    assert.ok(!fs.readFileSync(audit, "utf8").includes("Secret-Value-1"));
});

test("delete runs the undo script with the stdin the step was created with", async () => {
    const dir = tmpDir();
    const undone = path.join(dir, "undone");
    const props = counting(dir, { deleteScript: `IFS= read -r -d '' V; printf '%s' "$V" > '${undone}'`, captureStdout: false });
    const { outs } = await stepProvider.create!(URN, props);
    assert.deepEqual(outs.stdin, asSecret("Secret-Value-1\0"), "what the undo needs is kept, secret");
    await stepProvider.delete!("id", URN, outs);
    assert.equal(fs.readFileSync(undone, "utf8"), "Secret-Value-1");
});

/** A loopback port where nothing listens: bound, then closed again. */
async function closedPort(): Promise<number> {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((r) => server.close(r));
    return port;
}

test("health checks of many consumers: the error names each consumer that failed", async () => {
    const port = await closedPort();
    const check = (label: string, url: string) => ({
        label,
        host: "h0",
        health: { url, expectStatus: 200 },
        retries: 0,
        retryDelaySeconds: 0,
        timeoutSeconds: 2,
    });
    const props = {
        title: "s: all 2 consumers healthy after revocation",
        op: "health",
        triggers: [1],
        attempts: 1,
        retryDelaySeconds: 0,
        timeoutSeconds: 10,
        hosts: { h0: { kind: "ssh", host: "127.0.0.1", port: 22, user: "root", hostKey: "ssh-ed25519 AAAA", privateKeyFile: "/nonexistent" } },
        checks: [check("s → consumer a", `http://127.0.0.1:${port}/healthz`), check("s → consumer b", `http://127.0.0.1:${port}/b`)],
    };
    await assert.rejects(stepProvider.create!(URN, props), (e: Error) => {
        assert.equal(
            e.message,
            `s: all 2 consumers healthy after revocation: 2 of 2 consumers failed: ` +
                `s → consumer a: healthy after revocation: http://127.0.0.1:${port}/healthz answered no answer (ECONNREFUSED), expected 200; ` +
                `s → consumer b: healthy after revocation: http://127.0.0.1:${port}/b answered no answer (ECONNREFUSED), expected 200`,
        );
        return true;
    });
});

test("check refuses a step its op cannot run, naming what is missing", async () => {
    const base = { title: "t", triggers: [1], attempts: 1, retryDelaySeconds: 0, timeoutSeconds: 1 };
    const failures = async (props: Record<string, unknown>) => (await stepProvider.check!(URN, {}, props)).failures ?? [];
    const ops = "script, rollout, rollout-batch, api-rollout, health, random, vault, kubernetes, preflight";
    assert.deepEqual(await failures({ ...base, script: "true" }), [{ property: "op", reason: `a step needs op, one of ${ops}` }]);
    assert.deepEqual(await failures({ ...base, op: "scirpt" }), [{ property: "op", reason: `a step needs op, one of ${ops} (not "scirpt")` }]);
    assert.deepEqual(await failures({ ...base, op: "script", script: "true" }), [{ property: "target", reason: "a script step needs target" }]);
    assert.deepEqual(await failures({ ...base, op: "script", target: { kind: "local" } }), [{ property: "script", reason: "a script step needs script" }]);
    assert.deepEqual(await failures({ ...base, op: "rollout" }), [{ property: "rollout", reason: "a rollout step needs rollout" }]);
    assert.deepEqual(await failures({ ...base, op: "health", hosts: {}, checks: [{ host: "h9" }] }), [
        { property: "checks", reason: "a health step needs checks with their hosts" },
    ]);
    assert.deepEqual(await failures({ ...base, op: "preflight", preflight: { consumers: [{ host: "h1" }] } }), [
        { property: "preflight", reason: "a preflight step needs preflight with its hosts" },
    ]);
    assert.deepEqual(await failures({ ...base, op: "random" }), [{ property: "random", reason: "a random step needs random" }]);
    assert.deepEqual(await failures({ ...base, op: "vault" }), [{ property: "vault", reason: "a vault step needs vault" }]);
    assert.deepEqual(await failures({ ...base, op: "kubernetes" }), [{ property: "kubernetes", reason: "a kubernetes step needs kubernetes" }]);
    const gate = { ...base, op: "script", script: "true", target: { kind: "local" }, drift: [{ host: "h1" }] };
    assert.deepEqual(await failures(gate), [{ property: "hosts", reason: "a script step needs hosts for its drift checks" }]);
    assert.deepEqual(await failures({ ...gate, hosts: { h1: { kind: "local" } } }), []);
    assert.deepEqual(await failures({ ...base, op: "script", script: "true", target: { kind: "local" } }), []);
});

test("the recorded digest of the same inputs is the one earlier versions kept in state", () => {
    // Pinned: a change here would make every existing stack's steps show as changed.
    const base = { title: "app-redis: grant g2", triggers: [2], attempts: 1, retryDelaySeconds: 0, timeoutSeconds: 60 };
    const target = { kind: "ssh", host: "127.0.1.11", port: 22, user: "root", hostKey: "ssh-ed25519 AAAA", privateKeyFile: "/k" } as const;
    const write = { format: "env-line", key: "K" } as const;
    const rollout = {
        label: "l",
        health: { command: "true" },
        retries: 1,
        retryDelaySeconds: 0,
        timeoutSeconds: 5,
        target,
        generation: 2,
        configPath: "/c",
        write,
        reload: "true",
    };
    const store = { kind: "vault", address: "https://v:8200", mount: "kv", path: "a/b", auth: { method: "token", tokenFile: "/t" } } as const;
    assert.equal(recordedDigest({ ...base, op: "script", target: { kind: "local" }, script: "true", deleteScript: "false" }), "8e7e53d376c429cc");
    assert.equal(recordedDigest({ ...base, op: "rollout", rollout }), "95a15392141d3dbf");
    assert.equal(recordedDigest({ ...base, op: "vault", vault: { action: "stage", store, generation: 2 } }), "3095329910e5ac9c");
    // A Kubernetes store's settings are recorded too (a later op: the earlier digests above are unchanged by it).
    const k8s = { kind: "kubernetes-secret", server: "https://k:6443", namespace: "a", name: "b", auth: { method: "token", tokenFile: "/t" } } as const;
    const kube = (namespace: string) =>
        recordedDigest({ ...base, op: "kubernetes", kubernetes: { action: "stage", store: { ...k8s, namespace }, generation: 2 } });
    assert.notEqual(kube("a"), kube("other"));
});

test("the agent's reader skips what a login script printed, even without a newline, and frames results by length", () => {
    const got: [number, { code: number | null; stdout: string; stderr: string; timedOut: boolean }][] = [];
    const reader = new ResultReader((id, r) => got.push([id, r]));
    const out = "a\nb";
    reader.push(Buffer.from(`Welcome to host1\nmotd without newline\nRESULT 7 0 ${out.length} 3\n${out}e\nrRESULT 8 124 0 0\n`));
    assert.deepEqual(got, [
        [7, { code: 0, stdout: "a\nb", stderr: "e\nr", timedOut: false }],
        [8, { code: null, stdout: "", stderr: "", timedOut: true }],
    ]);
});
