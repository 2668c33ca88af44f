// The two-person ceremony (lib/ceremony.ts, lib/sshsig.ts) with real
// ssh-keygen signatures: the plan digest, a request's life (made, approved,
// run), and every way an approval must be refused.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { envAfter } from "../../cli/approve";
import { approveRequest, canonical, checkApproved, createRequest, planDigest, readRequest, type RequestedSecret } from "../../lib/ceremony";
import { parseEnvironment, type HostConsumerEntry } from "../../lib/config";
import { RotationRefusedError } from "../../lib/errors";
import { rawEnvironment } from "./harness";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ceremony-"));
const keyOf = (who: string) => {
    const k = path.join(dir, who);
    assert.equal(spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", who, "-f", k]).status, 0);
    return k;
};
const [alice, bob, mallory] = ["alice", "bob", "mallory"].map(keyOf);
const allowed = path.join(dir, "allowed_signers");
const pub = (k: string) => fs.readFileSync(`${k}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
fs.writeFileSync(allowed, `alice@team ${pub(alice)}\nbob@team ${pub(bob)}\n`);

const env = parseEnvironment("prod", rawEnvironment());
const NAME = "app-redis";
const next = envAfter(env, { [NAME]: { generation: 3, mode: "rotate", reason: "incident", note: "INC-7" } });
const DIGEST = planDigest("prod", next, [NAME]);
const SECRETS: RequestedSecret[] = [{ name: NAME, generation: 3, consumers: ["web-1", "web-2", "web-3"], reason: "incident", note: "INC-7" }];
let n = 0;
const newRequest = (key = alice, validFor = "1h") =>
    createRequest({ dir: path.join(dir, `requests-${n++}`), stack: "prod", digest: DIGEST, secrets: SECRETS, validFor, approvers: [allowed], key });
const expected = { stack: "prod", digest: DIGEST, approvers: [allowed] };
const refused = (f: () => unknown, why: RegExp) =>
    assert.throws(f, (e: Error) => e instanceof RotationRefusedError && why.test(e.message) && /Nothing was changed|not approved/.test(e.message));

test("canonical JSON is the same whatever the key order; undefined keys are left out", () => {
    assert.equal(canonical({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: undefined } }), canonical({ a: { d: [2, { e: 0, f: 1 }] }, b: 1 }));
    assert.equal(canonical({ b: 1, a: 2 }), '{"a":2,"b":1}');
});

test("the plan digest changes with what will run, and not with when or who", () => {
    const digest = (e: typeof env) => planDigest("prod", e, [NAME]);
    const edit = (f: (e: typeof env) => void) => {
        const e = structuredClone(next);
        f(e);
        return digest(e);
    };
    assert.match(DIGEST, /^[0-9a-f]{64}$/);
    assert.equal(digest(structuredClone(next)), DIGEST, "same config, same digest");
    assert.notEqual(planDigest("staging", next, [NAME]), DIGEST, "another stack");
    assert.notEqual(
        edit((e) => (e.secrets[NAME].generation = 4)),
        DIGEST,
        "another generation",
    );
    assert.notEqual(
        edit((e) => e.secrets[NAME].consumers.pop()),
        DIGEST,
        "a consumer less",
    );
    assert.notEqual(
        edit((e) => ((e.secrets[NAME].consumers[0] as HostConsumerEntry).reload = "true")),
        DIGEST,
        "another reload command",
    );
    assert.notEqual(
        edit((e) => (e.hosts[(e.secrets[NAME].consumers[0] as HostConsumerEntry).host].address = "127.0.1.99")),
        DIGEST,
        "a host moved",
    );
    assert.notEqual(
        edit((e) => (e.secrets[NAME].reason = "scheduled")),
        DIGEST,
        "another reason",
    );
    assert.notEqual(
        edit((e) => delete e.secrets[NAME].note),
        DIGEST,
        "no note",
    );
    assert.notEqual(
        edit((e) => (e.ceremony = { required: true, approvers: "other", validFor: "1h", dir: "x" })),
        DIGEST,
        "another approvers file",
    );
    assert.equal(
        edit((e) => (e.secrets[NAME].outsideWindow = true)),
        DIGEST,
        "the window verdict is about when",
    );
    assert.equal(
        edit((e) => (e.secrets[NAME].approval = { request: "r", requester: "a", approver: "b" })),
        DIGEST,
        "the approval is about who",
    );
});

test("a request signed by alice and approved by bob checks out, naming both", () => {
    const { request, file, requester } = newRequest();
    assert.equal(requester.principal, "alice@team");
    assert.match(requester.key, /^SHA256:/);
    assert.deepEqual(request.secrets, SECRETS);
    assert.ok(Date.parse(request.expiresAt) - Date.parse(request.requestedAt) === 3600_000);
    refused(
        () => checkApproved(readRequest(path.dirname(file), request.id), expected),
        /not approved yet: a second person runs bin\/rotate approve --stack prod --request /,
    );
    const approved = approveRequest(readRequest(path.dirname(file), request.id), { ...expected, key: bob });
    assert.deepEqual([approved.requester.principal, approved.approver.principal], ["alice@team", "bob@team"]);
    const ok = checkApproved(readRequest(path.dirname(file), request.id), expected);
    assert.deepEqual([ok.requester.principal, ok.approver.principal], ["alice@team", "bob@team"]);
    refused(() => approveRequest(readRequest(path.dirname(file), request.id), { ...expected, key: bob }), /already approved/);
    // The files hold names, numbers and digests: nothing but the request's own fields.
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(file, "utf8"))).sort(), [
        "expiresAt",
        "id",
        "kind",
        "planDigest",
        "requestedAt",
        "secrets",
        "stack",
        "version",
    ]);
});

test("the requester cannot approve their own request, nor under a second name listed for the same key", () => {
    const { request, file } = newRequest();
    refused(
        () => approveRequest(readRequest(path.dirname(file), request.id), { ...expected, key: alice }),
        /made by alice@team; its approval must come from another person/,
    );
    assert.equal(fs.existsSync(path.join(path.dirname(file), `${request.id}.approval.sig`)), false);
    const alias = path.join(dir, "allowed_alias");
    fs.writeFileSync(alias, `alice@team ${pub(alice)}\nbob@team ${pub(bob)}\nnot-alice@team ${pub(alice)}\n`);
    refused(
        () => approveRequest(readRequest(path.dirname(file), request.id), { ...expected, approvers: [alias], key: alice }),
        /made by alice@team; its approval must come from another person/,
    );
});

test("an unknown key can neither request nor approve", () => {
    const before = fs.readdirSync(dir).length;
    refused(() => newRequest(mallory), /requester's signature is refused: the signing key is not in the allowed signers/);
    assert.equal(fs.readdirSync(dir).length, before + 0, "no request directory with files was left");
    const { request, file } = newRequest();
    refused(
        () => approveRequest(readRequest(path.dirname(file), request.id), { ...expected, key: mallory }),
        /approver's signature is refused: the signing key is not in the allowed signers/,
    );
});

test("a tampered request, a forged approval file and a signature for another purpose are refused", () => {
    const { request, file } = newRequest();
    const d = path.dirname(file);
    approveRequest(readRequest(d, request.id), { ...expected, key: bob });
    const good = fs.readFileSync(file, "utf8");
    fs.writeFileSync(file, good.replace('"web-3"', '"web-9"'));
    refused(
        () => checkApproved(readRequest(d, request.id), expected),
        /requester's signature is refused: the signature does not match the request as it is now \(Signature verification failed: incorrect signature\)/,
    );
    fs.writeFileSync(file, good);
    // An approval copied from the requester's own signature, and one made for git's namespace.
    const sig = path.join(d, `${request.id}.approval.sig`);
    fs.copyFileSync(path.join(d, `${request.id}.json.sig`), sig);
    refused(() => checkApproved(readRequest(d, request.id), expected), /made by alice@team; its approval must come from another person/);
    const git = spawnSync("ssh-keygen", ["-Y", "sign", "-f", bob, "-n", "git"], { input: good });
    fs.writeFileSync(sig, git.stdout);
    refused(() => checkApproved(readRequest(d, request.id), expected), /approver's signature is refused: .*namespace/);
    fs.writeFileSync(file, "{}");
    refused(() => readRequest(d, request.id), /is not a rotation request/);
});

test("an approval for another plan, another stack or after its expiry is refused", () => {
    const { request, file } = newRequest(alice, "2s");
    const d = path.dirname(file);
    approveRequest(readRequest(d, request.id), { ...expected, key: bob });
    refused(
        () => checkApproved(readRequest(d, request.id), { ...expected, digest: "0".repeat(64) }),
        /is for another plan \(digest [0-9a-f]{12}…, the plan now is 000000000000…\)/,
    );
    refused(() => checkApproved(readRequest(d, request.id), { ...expected, stack: "staging" }), /is for stack prod, not staging/);
    refused(
        () => checkApproved(readRequest(d, request.id), { ...expected, now: new Date(Date.parse(request.expiresAt) + 1) }),
        new RegExp(`expired at ${request.expiresAt.replace(/[.]/g, "\\.")}; make a new one`),
    );
    refused(() => readRequest(d, "../etc/passwd"), /is not a request id/);
    refused(() => readRequest(d, "prod-nope"), /no request prod-nope in /);
});
