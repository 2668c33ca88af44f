// Pre-flight on the lab: `bin/rotate start` checks every consumer, the source
// and the store before it writes anything; a stopped host or a config without
// its key stops it there, named, with nothing changed anywhere.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { remember } from "./checks";
import { hosts, lab, labCtl, redisAuthOk, redisStack, storeValue } from "./lab";
import { scanForLeaks } from "./leaks";
import { Workspace } from "./workspace";

const SECRET = "app-redis";
let ws: Workspace;

/** Everything a rotation could change: the source's ACL, the store, every consumer's config, the stack file. */
function snapshot(): string {
    const l = lab();
    const acl = spawnSync("redis-cli", ["--no-auth-warning", "-h", l.redis.host, "-p", String(l.redis.port), "--user", l.redis.adminUser, "ACL", "LIST"], {
        env: { ...process.env, REDISCLI_AUTH: fs.readFileSync(l.redis.adminPasswordFile, "utf8").trim() },
        encoding: "utf8",
    });
    assert.equal(acl.status, 0, acl.stderr);
    const configs = hosts().map((h) => fs.readFileSync(path.join(h.etcDir, "redis.yaml"), "utf8"));
    const store = fs.readdirSync(l.storeDir).filter((f) => f.startsWith(SECRET)).sort().map((f) => `${f}=${fs.readFileSync(path.join(l.storeDir, f), "utf8")}`);
    return JSON.stringify({ acl: acl.stdout, configs, store, stack: ws.stackConfig() });
}

before(() => {
    labCtl("up", "--reset");
    ws = new Workspace("preflight");
    ws.setConfig(redisStack(0));
    remember(storeValue(SECRET));
});

after(() => labCtl("start-host", "host3"));

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
        assert.deepEqual(JSON.parse(alone.stdout).problems, [{ secret: SECRET, at: "consumer redis-host2", problem: "no key redis.password in /etc/rotation-app/redis.yaml" }]);
        assert.equal(snapshot(), before, "nothing changed");
    } finally {
        fs.writeFileSync(file, kept);
    }
});

test("a clean pre-flight, then the rotation runs", async () => {
    const alone = ws.rotate(["preflight"]);
    assert.equal(alone.code, 0, alone.stdout + alone.stderr);
    assert.match(alone.stdout, /pre-flight of app-redis \(3 consumers\): all clear/);
    const old = storeValue(SECRET);
    const r = await ws.rotateSampled(["start", "--secret", SECRET, "--yes"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const fresh = storeValue(SECRET);
    remember(fresh);
    assert.equal(redisAuthOk(fresh), true);
    assert.equal(redisAuthOk(old), false);
});

test("preflight: no secret leaked", () => {
    scanForLeaks(ws);
});
