// The program is the authority (lib/gates.ts): a plain `pulumi up`, the
// generation raised with `pulumi config set`, is held to the ceremony and
// the window as `bin/rotate start` is. Refused means nothing changed: the
// source's ACL, the store, every consumer's config and the audit log byte
// for byte. The audit lines name who ran each step, the witnesses only from
// verified signatures, and a failed run how many consumers it moved.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { assertRedisMoved, remember } from "./checks";
import { hosts, lab, labCtl, redisStack, storeValue, Workspace } from "../../lab/driver";
import { scanForLeaks } from "./leaks";
import { STEP_TYPE } from "../../provider/types";

const SECRET = "app-redis";
const ME = `${os.userInfo().username}@${os.hostname()}`;
let ws: Workspace;

/** Everything a rotation could change but the stack file: the source's ACL, the store, every consumer's config, the audit log. */
function snapshot(): string {
    const l = lab();
    const acl = spawnSync("redis-cli", ["--no-auth-warning", "-h", l.redis.host, "-p", String(l.redis.port), "--user", l.redis.adminUser, "ACL", "LIST"], {
        env: { ...process.env, REDISCLI_AUTH: fs.readFileSync(l.redis.adminPasswordFile, "utf8").trim() },
        encoding: "utf8",
    });
    assert.equal(acl.status, 0, acl.stderr);
    const configs = hosts().map((h) => fs.readFileSync(path.join(h.etcDir, "redis.yaml"), "utf8"));
    const store = fs
        .readdirSync(l.storeDir)
        .filter((f) => f.startsWith(SECRET))
        .sort()
        .map((f) => `${f}=${fs.readFileSync(path.join(l.storeDir, f), "utf8")}`);
    const audit = fs.existsSync(ws.auditLog) ? fs.readFileSync(ws.auditLog, "utf8") : "";
    return JSON.stringify({ acl: acl.stdout, configs, store, audit });
}

const KEYS = () => path.join(ws.dir, "keys");
const key = (who: string) => path.join(KEYS(), who);
const CEREMONY = { ceremony: { required: true, approvers: "keys/allowed_signers", validFor: "1h" } };

const set = async (pathKey: string, value: string) => {
    const r = await ws.pulumi(["config", "set", "--plaintext", "--path", `rotation:secrets.${SECRET}.${pathKey}`, value]);
    assert.equal(r.code, 0, r.stderr);
};
const rm = async (pathKey: string) => assert.equal((await ws.pulumi(["config", "rm", "--path", `rotation:secrets.${SECRET}.${pathKey}`])).code, 0);
const up = () => ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });

/** A plain `up` the program refuses: non-zero, the reason said, nothing changed anywhere. */
async function refusedUp(why: RegExp): Promise<void> {
    const before = snapshot();
    const r = await up();
    assert.notEqual(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, why);
    assert.match(r.stdout + r.stderr, /Nothing was registered/);
    assert.equal(r.events.filter((e) => e.resourcePreEvent?.metadata.type === STEP_TYPE).length, 0, "the engine ran no step");
    assert.equal(snapshot(), before, "ACL LIST, store, configs and audit log identical");
}

before(() => {
    labCtl("up", "--reset");
    ws = new Workspace("gates");
    fs.mkdirSync(KEYS(), { recursive: true });
    for (const who of ["alice", "bob"]) assert.equal(spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", who, "-f", key(who)]).status, 0);
    const pub = (who: string) =>
        fs
            .readFileSync(`${key(who)}.pub`, "utf8")
            .split(" ")
            .slice(0, 2)
            .join(" ");
    fs.writeFileSync(path.join(KEYS(), "allowed_signers"), `alice@team ${pub("alice")}\nbob@team ${pub("bob")}\n`);
    ws.setSecrets([redisStack(0)], CEREMONY);
    remember(storeValue(SECRET));
});

after(() => labCtl("fail-health", "host3", "off"));

test("plain up: a ceremony secret's generation raised by config set is refused, nothing changed", async () => {
    await set("generation", "1");
    await refusedUp(/stack e2e, secret app-redis generation 1: needs a second person's approval .* bin\/rotate start --stack e2e --secret app-redis --yes/s);
});

test("plain up: an approval typed into the stack file, naming two people, is refused the same way", async () => {
    await set("approval.request", "forged-0001");
    await set("approval.requester", "alice@team");
    await set("approval.approver", "bob@team");
    await refusedUp(/request forged-0001/);
    await rm("approval");
    await set("generation", "0");
});

test("plain up: a request approved with bin/rotate approve rotates; the audit lines' witnesses and operator are the verified principals", async () => {
    const note = ["--note", "e2e scheduled rotation"];
    const asked = ws.rotate(["start", "--secret", SECRET, ...note, "--key", key("alice"), "--yes", "--json"]);
    assert.equal(asked.code, 6, asked.stdout + asked.stderr);
    const id = JSON.parse(asked.stdout).request.id as string;
    assert.equal(ws.rotate(["approve", "--request", id, "--key", key("bob"), "--yes"]).code, 0);
    // The request names who; the config only which request. Text beside it is not believed.
    await set("generation", "1");
    await set("approval.request", id);
    await set("approval.requester", "mallory@elsewhere");
    const old = storeValue(SECRET);
    const r = await up();
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assertRedisMoved(SECRET, old);
    const lines = ws.auditLines().filter((l) => l.secret === SECRET && l.generation === 1);
    assert.ok(lines.length >= 10, `${lines.length} lines`);
    for (const l of lines) {
        assert.deepEqual(
            [l.ceremony, l.requestedBy, l.approvedBy, l.operator, l.runBy, l.team],
            [id, "alice@team", "bob@team", "alice@team", ME, "e2e-tests"],
            JSON.stringify(l),
        );
    }
    assert.equal(lines.find((l) => l.phase === "completed")?.consumers, 3, "the closing line counts the consumers this run moved");
});

test("plain up: outside the window refused; with leave for this generation it runs and every audit line records it", async () => {
    await rm("approval");
    ws.setSecrets([{ ...redisStack(1), window: closedWindow() }], {});
    await set("generation", "2");
    await refusedUp(/stack e2e, secret app-redis generation 2: outside its rotation window .*outsideWindow: \{generation: 2/s);
    // Leave for another generation is no leave.
    await set("outsideWindow.generation", "1");
    await set("outsideWindow.by", "carol");
    await set("outsideWindow.why", "INC-12 key in a paste");
    await refusedUp(/outside its rotation window/);
    await set("outsideWindow.generation", "2");
    const old = storeValue(SECRET);
    // Whom the person at the keyboard says they are reaches every line beside the OS user.
    ws.env.ROTATION_OPERATOR = "carol (on call)";
    const r = await up();
    delete ws.env.ROTATION_OPERATOR;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assertRedisMoved(SECRET, old);
    const lines = ws.auditLines().filter((l) => l.secret === SECRET && l.generation === 2);
    assert.ok(
        lines.length >= 10 &&
            lines.every(
                (l) =>
                    l.outsideWindow === "INC-12 key in a paste" &&
                    l.outsideWindowBy === "carol" &&
                    l.operator === ME &&
                    l.operatorClaimed === "carol (on call)",
            ),
        JSON.stringify(lines[0]),
    );
});

test("a run where one of three consumers fails: its audit line says 2 moved and names the third; operator is who ran it", () => {
    ws.setSecrets([redisStack(2)], {});
    labCtl("fail-health", "host3", "on");
    const r = ws.rotate(["start", "--secret", SECRET, "--yes"]);
    labCtl("fail-health", "host3", "off");
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const failed = ws.auditLines().filter((l) => l.secret === SECRET && l.generation === 3 && l.phase === "run-failed");
    assert.equal(failed.length, 1, JSON.stringify(failed));
    assert.deepEqual([failed[0].consumers, failed[0].notUpdated, failed[0].operator, failed[0].outcome], [2, "redis-host3", ME, "failed"]);
    assert.match(String(failed[0].detail), /consumer redis-host3/);
});

test("gates: no secret leaked", () => {
    scanForLeaks(ws);
});

/** A window that is closed now: one hour, starting two hours from now. */
function closedWindow() {
    const hhmm = (h: number) => `${String((new Date().getUTCHours() + h) % 24).padStart(2, "0")}:00`;
    return { days: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"], start: hhmm(2), end: hhmm(3), timeZone: "UTC" };
}
