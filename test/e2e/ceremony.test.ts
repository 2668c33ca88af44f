// The ceremony on the lab. Pre-flight: the first step of `bin/rotate start`'s
// update checks every consumer, the source and the store before anything of
// the rotation runs; a stopped host, a config without its key or a full disk
// stops it there, named, and the stack file is put back: nothing changed
// anywhere. Two-person approval: a start records a signed
// request, a second person approves it with their own SSH key, and every way
// of getting around that is refused without changing anything. Reasons and
// witnesses reach the audit line and the report.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { assertRedisMoved, remember } from "./checks";
import { fillConfigDir, hosts, labCtl, redisStack, redisWorld, storeValue, unmountTmpfs, Workspace } from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const SECRET = "app-redis";
let ws: Workspace;

/** Everything a rotation could change: the source's ACL, the store, every consumer's config, the stack file. */
const snapshot = () => JSON.stringify({ world: redisWorld(SECRET), stack: ws.stackConfig() });

before(() => {
    labCtl("up", "--reset");
    ws = new Workspace("preflight");
    ws.setConfig(redisStack(0));
    remember(storeValue(SECRET));
});

after(() => {
    labCtl("start-host", "host3");
    unmountTmpfs(hosts()[0]);
});

test("a stopped consumer host stops start at pre-flight, named; nothing changed at the source, the store, any config or the stack", () => {
    const before = snapshot();
    labCtl("stop-host", "host3");
    const r = ws.rotate(["start", "--secret", SECRET, "--yes"]);
    labCtl("start-host", "host3");
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /pre-flight found 1 problem\(s\); nothing was changed/);
    assert.match(r.stderr, /app-redis consumer redis-host3: cannot run the checks on root@127\.0\.1\.13:22: .*(refused|route|timed out)/i);
    assert.equal(snapshot(), before, "ACL LIST, store, configs and stack file identical");
});

test("a config without its key is named the same way; preflight on its own says so with exit 1", () => {
    const file = path.join(hosts()[1].etcDir, "redis.yaml");
    const kept = fs.readFileSync(file, "utf8");
    fs.writeFileSync(file, kept.replace(/^(\s*)password:.*$/m, "$1# password removed by hand"));
    const before = snapshot();
    try {
        const r = ws.rotate(["start", "--secret", SECRET, "--yes"]);
        assert.equal(r.code, 3, r.stdout + r.stderr);
        assert.match(r.stderr, /app-redis consumer redis-host2: no key redis\.password in \/etc\/rotation-app\/redis\.yaml/);
        const alone = ws.rotate(["preflight", "--json"]);
        assert.equal(alone.code, 1);
        assert.deepEqual(JSON.parse(alone.stdout).problems, [
            { secret: SECRET, at: "consumer redis-host2", problem: "no key redis.password in /etc/rotation-app/redis.yaml" },
        ]);
        assert.equal(snapshot(), before, "nothing changed");
    } finally {
        fs.writeFileSync(file, kept);
    }
});

test("a full disk under a consumer's config is named the same way, before anything is written", () => {
    const before = snapshot();
    fillConfigDir(hosts()[0]);
    try {
        const r = ws.rotate(["start", "--secret", SECRET, "--yes", "--json"]);
        assert.equal(r.code, 3, r.stdout + r.stderr);
        assert.match(
            r.stderr,
            /app-redis consumer redis-host1: only \d+ bytes free in \/etc\/rotation-app; the new \/etc\/rotation-app\/redis\.yaml and its \.bak need \d+/,
        );
        assert.doesNotMatch(r.stderr, /redis-host[23]/, "only the full host is named");
        const doc = JSON.parse(r.stdout);
        assert.equal(doc.outcome, "refused");
        assert.deepEqual(
            doc.preflight.problems.map((p: { at: string }) => p.at),
            ["consumer redis-host1"],
        );
    } finally {
        unmountTmpfs(hosts()[0]);
    }
    assert.equal(snapshot(), before, "nothing changed");
});

test("a clean pre-flight, then the rotation runs", async () => {
    const alone = ws.rotate(["preflight"]);
    assert.equal(alone.code, 0, alone.stdout + alone.stderr);
    assert.match(alone.stdout, /pre-flight of app-redis \(3 consumers\): all clear/);
    const old = storeValue(SECRET);
    const r = await ws.rotateSampled(["start", "--secret", SECRET, "--yes"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assertRedisMoved(SECRET, old);
});

// ---- Two-person approval (ceremony: {required, approvers}) on the secret rotated above (generation 1).

const KEYS = () => path.join(ws.dir, "keys");
const key = (who: string) => path.join(KEYS(), who);

/** alice and bob are the team (the allowed signers); mallory has a key and is not. */
function team(validFor: string): void {
    fs.mkdirSync(KEYS(), { recursive: true });
    for (const who of ["alice", "bob", "mallory"]) {
        if (!fs.existsSync(key(who))) assert.equal(spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", who, "-f", key(who)]).status, 0);
    }
    const pub = (who: string) =>
        fs
            .readFileSync(`${key(who)}.pub`, "utf8")
            .split(" ")
            .slice(0, 2)
            .join(" ");
    fs.writeFileSync(path.join(KEYS(), "allowed_signers"), `alice@team ${pub("alice")}\nbob@team ${pub("bob")}\n`);
    ws.setSecrets([redisStack(1)], { ceremony: { required: true, approvers: "keys/allowed_signers", validFor } });
}

const INCIDENT = ["--reason", "incident", "--note", "INC-4711 password seen in a CI log"];

/** `start` as alice without an approval: a request recorded, exit 6, its id. */
function requestAsAlice(): string {
    const r = ws.rotate(["start", "--secret", SECRET, ...INCIDENT, "--key", key("alice"), "--yes", "--json"]);
    assert.equal(r.code, 6, r.stdout + r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.outcome, "awaiting-approval");
    assert.equal(doc.request.requester, "alice@team");
    assert.deepEqual(doc.request.secrets, [
        {
            name: SECRET,
            generation: 2,
            consumers: ["redis-host1", "redis-host2", "redis-host3"],
            reason: "incident",
            note: "INC-4711 password seen in a CI log",
        },
    ]);
    assert.match(r.stderr, new RegExp(`bin/rotate approve --stack e2e --request ${doc.request.id} --yes`));
    return doc.request.id;
}

const approveAs = (who: string, id: string, ...more: string[]) => ws.rotate(["approve", "--request", id, "--key", key(who), ...more]);
/** A refusal: exit 3, the reason said, nothing changed anywhere. */
function refusedWith(r: { code: number; stdout: string; stderr: string }, why: RegExp, before: string): void {
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, why);
    assert.match(r.stderr, /Nothing was changed/);
    assert.equal(snapshot(), before, "ACL LIST, store, configs and stack file identical");
}

test("ceremony: an approval used after its expiry is refused", async () => {
    team("6s");
    const before = snapshot();
    const id = requestAsAlice();
    assert.equal(approveAs("bob", id, "--yes").code, 0);
    const expires = Date.parse(JSON.parse(fs.readFileSync(path.join(ws.stateDir, "ceremony", `${id}.json`), "utf8")).expiresAt);
    await new Promise((r) => setTimeout(r, Math.max(0, expires - Date.now()) + 500));
    refusedWith(ws.rotate(["start", "--secret", SECRET, ...INCIDENT, "--request", id, "--yes"]), new RegExp(`request ${id} expired at `), before);
});

test("ceremony: without approval nothing runs; self-approval, an unknown key, a tampered request and another plan are refused", () => {
    team("1h");
    const before = snapshot();
    const id = requestAsAlice();
    assert.equal(snapshot(), before, "recording a request changed nothing");
    refusedWith(
        ws.rotate(["start", "--secret", SECRET, ...INCIDENT, "--request", id, "--yes"]),
        /is not approved yet: a second person runs bin\/rotate approve/,
        before,
    );
    refusedWith(approveAs("alice", id, "--yes"), /made by alice@team; its approval must come from another person/, before);
    refusedWith(approveAs("mallory", id, "--yes"), /approver's signature is refused: the signing key is not in the allowed signers/, before);
    // bob looks first (nothing signed), then approves.
    const look = approveAs("bob", id);
    assert.equal(look.code, 0, look.stderr);
    assert.match(
        look.stdout,
        /by alice@team .* app-redis 1 -> 2 on 3 consumer\(s\) \(redis-host1, redis-host2, redis-host3\), reason incident, note "INC-4711 password seen in a CI log"/s,
    );
    assert.equal(fs.existsSync(path.join(ws.stateDir, "ceremony", `${id}.approval.sig`)), false);
    const ok = approveAs("bob", id, "--yes");
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /approved by bob@team/);
    // The same request started for another reason is another plan.
    refusedWith(
        ws.rotate(["start", "--secret", SECRET, "--reason", "scheduled", "--request", id, "--yes"]),
        /is for another plan \(digest [0-9a-f]{12}…, the plan now is [0-9a-f]{12}…\)/,
        before,
    );
    // A consumer edited out of the request after both signed it.
    const file = path.join(ws.stateDir, "ceremony", `${id}.json`);
    const signed = fs.readFileSync(file, "utf8");
    fs.writeFileSync(file, signed.replace(/,\s*"redis-host3"/, ""));
    refusedWith(
        ws.rotate(["start", "--secret", SECRET, ...INCIDENT, "--request", id, "--yes"]),
        /requester's signature is refused: the signature does not match the request as it is now/,
        before,
    );
    fs.writeFileSync(file, signed);
    approvedId = id;
});

let approvedId = "";

test("ceremony: with bob's approval alice's rotation runs; both, the reason and the note are in the audit line and the report", () => {
    assert.ok(approvedId, "the test before left an approved request");
    const old = storeValue(SECRET);
    const r = ws.rotate(["start", "--secret", SECRET, ...INCIDENT, "--request", approvedId, "--yes"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`request ${approvedId}: requested by alice@team, approved by bob@team`));
    assertRedisMoved(SECRET, old);
    const lines = fs
        .readFileSync(ws.auditLog, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
    const completed = lines.find((l) => l.secret === SECRET && l.generation === 2 && l.phase === "completed");
    assert.ok(completed, "a completed line for generation 2");
    assert.deepEqual(
        {
            reason: completed.reason,
            note: completed.note,
            ceremony: completed.ceremony,
            requestedBy: completed.requestedBy,
            approvedBy: completed.approvedBy,
            consumers: completed.consumers,
        },
        {
            reason: "incident",
            note: "INC-4711 password seen in a CI log",
            ceremony: approvedId,
            requestedBy: "alice@team",
            approvedBy: "bob@team",
            consumers: 3,
        },
    );
    const report = fs.readFileSync(r.stdout.match(/report: (\S+\.html)/)![1], "utf8");
    assert.match(
        report,
        new RegExp(`incident · &quot;INC-4711 password seen in a CI log&quot; · requested by alice@team, approved by bob@team \\(request ${approvedId}\\)`),
    );
    assert.match(report, /<h2>Pre-flight<\/h2><p>3 consumer\(s\) .*all clear/);
    // The next generation needs a new request: an approval is for one plan.
    const again = ws.rotate(["start", "--secret", SECRET, ...INCIDENT, "--request", approvedId, "--yes"]);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /is for another plan/);
});

test("ceremony: no secret leaked (requests and approvals included)", () => {
    scanForLeaks(ws);
});
