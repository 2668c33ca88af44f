// The lab's Redis password kept in a Kubernetes Secret (stores/kubernetesSecret.ts)
// on the lab's real kube-apiserver and etcd (lab/lib/kube.sh), rotated through
// the real Pulumi engine: a credential without the rights is refused by the
// pre-flight, naming the verb and the resource, before anything changes; the
// rotation leaves the new secret current and the old one previous, with
// generation numbers only in the Secret's annotations; a write from outside
// between stage and gate is refused by check-and-set, naming the Secret,
// nothing revoked, and `bin/rotate resume` completes it; no value reaches the
// audit log, the outputs, anything printed, or the API server's and etcd's logs.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { after, before, test } from "node:test";
import { assertAudit, assertAuditChain, assertRevokeAfterEveryConsumer, assertSucceeded, consumersHold, remember, secretsSeen } from "./checks";
import {
    captured,
    hosts,
    kubeAdmin,
    kubeSecret,
    kubeSecretPath,
    kubeSecretValue,
    kubeStore,
    lab,
    labCtl,
    redisAuthOk,
    redisStack,
    stepTimeline,
    Workspace,
} from "../../lab/driver";
import { scanForLeaks } from "./leaks";
import { SECRET_ANNOTATIONS } from "../../stores/kubernetesSecret";

const SECRET = "app-redis";
let ws: Workspace;
let label: string;

/** The Secret's annotations and labels: generation numbers and others' marks, never a value. */
async function assertNoValueInMetadata(): Promise<Record<string, string>> {
    const meta = (await kubeSecret()).metadata;
    const text = JSON.stringify({ annotations: meta.annotations ?? {}, labels: meta.labels ?? {} });
    for (const v of secretsSeen) assert.ok(!text.includes(v), "no secret value in the Secret's annotations or labels");
    for (const [k, v] of Object.entries(meta.annotations ?? {})) if (k.startsWith("secret-rotation/")) assert.match(String(v), /^[0-9]+$/, k);
    return meta.annotations ?? {};
}

before(async () => {
    labCtl("up", "--reset", "--with", "kube");
    const k = lab().kubernetes;
    label = `kubernetes Secret ${k.namespace}/${k.secrets.redis} at ${k.server}`;
    remember((await kubeSecretValue("current"))!, fs.readFileSync(k.adminTokenFile, "utf8").trim(), fs.readFileSync(k.rotationTokenFile, "utf8").trim());
    remember(fs.readFileSync(k.readerTokenFile, "utf8").trim());
    ws = new Workspace("k8s");
    ws.setConfig({ ...redisStack(0), store: kubeStore() });
});

after(() => {
    for (const h of hosts()) labCtl("fail-health", h.name, "off");
});

test("a credential without the right to patch the Secret is refused by the pre-flight, naming the verb and the resource; nothing changes", async () => {
    const k = lab().kubernetes;
    const before = await kubeSecret();
    ws.patchConfig({ store: kubeStore({ method: "kubeconfig", path: k.readerKubeconfig }) });
    const stack = JSON.stringify(ws.stackConfig());
    const r = ws.rotate(["start", "--secret", SECRET, "--yes"]);
    const out = r.stdout + r.stderr;
    assert.notEqual(r.code, 0, out);
    assert.ok(
        out.includes(
            `${label}: user "${k.reader}" cannot patch resource "secrets" named "${k.secrets.redis}" in namespace "${k.namespace}" (SelfSubjectAccessReview)`,
        ),
        out.slice(-2000),
    );
    assert.ok(!out.includes("cannot get"), "get, which the reader may do, is not named");
    const afterwards = await kubeSecret();
    assert.equal(afterwards.metadata.resourceVersion, before.metadata.resourceVersion, "the Secret was not written");
    assert.equal(JSON.stringify(ws.stackConfig()), stack, "the stack config is unchanged (the generation not raised)");
    assert.equal(redisAuthOk((await kubeSecretValue("current"))!), true);
    ws.patchConfig({ store: kubeStore() });
});

test("the Redis password rotates in the Secret: new current, old previous, generations in annotations only, Redis and every consumer moved", async () => {
    const old = (await kubeSecretValue("current"))!;
    ws.patchConfig({ generation: 1 });
    const up = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assertSucceeded(up, "up");
    assertRevokeAfterEveryConsumer(
        up,
        SECRET,
        hosts().map((h) => `redis-${h.name}`),
    );
    const fresh = (await kubeSecretValue("current"))!;
    remember(fresh);
    assert.notEqual(fresh, old);
    assert.equal(await kubeSecretValue("previous"), old, "the replaced secret is kept as key previous");
    assert.equal(await kubeSecretValue("new"), undefined, "no staged key is left");
    const annotations = await assertNoValueInMetadata();
    assert.equal(annotations[SECRET_ANNOTATIONS.committed], "1");
    assert.equal(annotations[SECRET_ANNOTATIONS.current], "1");
    assert.equal(annotations[SECRET_ANNOTATIONS.previous], "0");
    assert.equal(redisAuthOk(fresh), true, "the new password is accepted by Redis");
    assert.equal(redisAuthOk(old), false, "the old password is rejected");
    await consumersHold(fresh);
    assertAudit(ws, SECRET, 1, hosts().length);

    const check = ws.rotate(["check"]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /every consumer holds the current secret/);
    assert.match(check.stdout, /previous rejected, current accepted/);
});

test("a write from outside between stage and gate is refused by check-and-set naming the Secret; nothing is revoked; bin/rotate resume completes", async () => {
    const old = (await kubeSecretValue("current"))!;
    ws.patchConfig({ generation: 2 });
    let outside: Promise<{ status: number }> | undefined;
    const failed = await ws.pulumi(["up", "--yes", "--skip-preview"], {
        sampleProcesses: true,
        onEvent: (e) => {
            // Someone labels the Secret while the consumers are being deployed: the staged copy and the secret in use stay as they were.
            if (!outside && stepTimeline([e], `${SECRET}-stage`).end !== undefined) {
                outside = kubeAdmin("PATCH", kubeSecretPath(), { metadata: { labels: { "touched-by": "someone-else" } } }, "application/merge-patch+json");
            }
        },
    });
    assert.ok(outside, "the outside write was made after staging");
    assert.equal((await outside).status, 200);
    assert.notEqual(failed.code, 0, "the gate refuses");
    const out = failed.stdout + failed.stderr;
    assert.ok(out.includes(`${label}: changed behind this rotation's back: resourceVersion`), out.slice(-3000));
    assert.match(
        out,
        /is the one this rotation's stage left it at, but another writer has written the Secret since \(now resourceVersion \d+; check-and-set refused: HTTP 422/,
    );
    assert.ok(out.includes("bin/rotate resume --stack e2e --yes") && out.includes("Nothing was revoked"), out.slice(-2000));
    assert.notEqual(stepTimeline(failed.events, `${SECRET}-gate`).failed, undefined, "the gate ran and refused");
    assert.equal(stepTimeline(failed.events, `${SECRET}-revoke`).start, undefined, "no revocation started");
    assert.equal(redisAuthOk(old), true, "the old password still works");
    const staged = (await kubeSecretValue("new"))!;
    remember(staged);
    assert.ok(staged && staged !== old, "the new secret is staged");
    assert.equal((await assertNoValueInMetadata())[SECRET_ANNOTATIONS.committed], "1", "the revocation of generation 1's secret was not marked as started");

    const resumed = await ws.rotateSampled(["resume", "--yes"]);
    assertSucceeded(resumed, "bin/rotate resume");
    assert.equal(await kubeSecretValue("current"), staged);
    assert.equal(await kubeSecretValue("previous"), old);
    const s = await kubeSecret();
    assert.equal(s.metadata.labels?.["touched-by"], "someone-else", "the other writer's label is left alone");
    assert.equal((await assertNoValueInMetadata())[SECRET_ANNOTATIONS.committed], "2");
    assert.equal(redisAuthOk(old), false);
    assert.equal(redisAuthOk(staged), true);
    await consumersHold(staged);
    assertAudit(ws, SECRET, 2, hosts().length);
});

test("no secret value or token in the audit log, the outputs, the state, anything printed, or the API server's and etcd's logs; the Secret is never printed", () => {
    const k = lab().kubernetes;
    for (const log of [k.apiserver.log, k.etcd.log]) {
        assert.ok(fs.existsSync(log), `${log} is a file of the lab`);
        captured.push({ label: log, text: fs.readFileSync(log, "utf8") });
    }
    for (const c of captured) assert.ok(!/"kind":\s*"Secret"|^kind: Secret$/m.test(c.text), `the Secret's YAML or JSON is not in ${c.label}`);
    assertAuditChain(ws);
    scanForLeaks(ws);
});
