// SSH key rotation: a new ed25519 key is appended to the target's
// authorized_keys, deployed to three consumers, and only then the old key's
// line is removed.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { before, test } from "node:test";
import { assertAudit, assertPreviewPlan, assertRevokeAfterEveryConsumer, assertSucceeded, remember } from "./checks";
import { consumerState, hosts, lab, labCtl, sha256, sshKeyStack, sshLoginOk, storeHas, storeValue, Workspace } from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const SECRET = "app-deploy-key";
let ws: Workspace;

before(() => {
    labCtl("up", "--reset");
    ws = new Workspace("sshkey");
});

test("ssh key: the new key works everywhere before the old one is removed from authorized_keys", async () => {
    const old = storeValue(SECRET);
    remember(old);
    assert.equal(sshLoginOk(old), true, "the old key logs in before the rotation");
    ws.setConfig(sshKeyStack(1));
    const consumers = hosts().map((h) => `ssh-${h.name}`);
    const preview = await ws.pulumi(["preview", "--json"]);
    assertSucceeded(preview, "preview");
    assertPreviewPlan(preview.stdout, SECRET, consumers, 1);

    const up = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assertSucceeded(up, "ssh key rotation");
    console.log(`# ssh key rotation g1 across ${consumers.length} consumers: ${up.seconds.toFixed(1)}s wall`);
    assertRevokeAfterEveryConsumer(up, SECRET, consumers);

    const fresh = storeValue(SECRET);
    remember(fresh);
    assert.match(fresh, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
    assert.notEqual(fresh, old);
    assert.equal(storeHas(SECRET, "staged"), false);
    assert.equal(sshLoginOk(fresh), true, "the new key logs in");
    assert.equal(sshLoginOk(old), false, "the old key is rejected");
    const keys = fs.readFileSync(lab().target.authorizedKeysFile, "utf8");
    assert.match(keys, /rotation:app-deploy-key:g1$/m);
    assert.doesNotMatch(keys, /rotation:app-deploy-key:g0$/m);
    for (const h of hosts()) {
        const s = await consumerState(h, "ssh");
        assert.equal(s.fingerprint, sha256(`${fresh}\n`), `${h.name} holds the new key`);
        assert.ok(s.healthy, `${h.name} logs in with it`);
    }
    assertAudit(ws, SECRET, 1, 3);
});

test("ssh key: no secret leaked", () => {
    scanForLeaks(ws);
});
