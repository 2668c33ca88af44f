// The drift check's host script run for real with bash and openssl on local
// files in every write format, and the operator's verdict from its answer.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { rewriteConfig, type WriteSpec } from "../../writers";
import { freshNonce, hmacInput, hmacOf, holding } from "../../lib/drift";
import { driftCheckScript } from "../../lib/scripts/check";
import { checkDrift, gateRefusal, type OffConsumer } from "../../provider/drift";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "drift-"));
const CURRENT = `cur-"quoted" \\ back'slash #hash ü`;
const PREVIOUS = "prev-Secret-0123";

function check(content: string | undefined, write: WriteSpec, file = "app.conf") {
    const f = path.join(dir, file);
    fs.rmSync(f, { force: true });
    if (content !== undefined) fs.writeFileSync(f, content);
    const nonce = freshNonce();
    const r = spawnSync("bash", ["-c", driftCheckScript(f, write, nonce)], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return {
        ...holding(r.stdout, { current: hmacOf(nonce, hmacInput(write, CURRENT)), previous: hmacOf(nonce, hmacInput(write, PREVIOUS)) }),
        stdout: r.stdout,
        nonce,
    };
}

const formats: { write: WriteSpec; base: string }[] = [
    {
        write: { format: "yaml-key", key: "redis.password" },
        base: '# app\nredis:\n  host: x  # the host\n  password: "old"  # rotated\nother:\n  password: nope\n',
    },
    { write: { format: "env-line", key: "TOKEN" }, base: "A=1\nTOKEN=old\nB=2\n" },
    { write: { format: "template", template: "[auth]\nsecret = {{secret}}\n" }, base: "" },
];

for (const { write, base } of formats) {
    test(`${write.format}: a config written by the product holds current; the previous value is previous; another is unknown`, () => {
        assert.equal(check(rewriteConfig(write, base, CURRENT), write).holds, "current");
        assert.equal(check(rewriteConfig(write, base, PREVIOUS), write).holds, "previous");
        assert.equal(check(rewriteConfig(write, base, "something-else"), write).holds, "unknown");
        const r = check(rewriteConfig(write, base, CURRENT), write);
        assert.doesNotMatch(r.stdout, /cur-|prev-/, "no value in the answer");
        assert.match(r.stdout, /^CHECK hmac [0-9a-f]{64}\n$/);
    });
}

test("yaml-key: values written by hand (plain, single-quoted, with a comment) are read as YAML reads them", () => {
    const w: WriteSpec = { format: "yaml-key", key: "redis.password" };
    assert.equal(check(`redis:\n  password: ${PREVIOUS}   # reverted by hand\n`, w).holds, "previous");
    assert.equal(check(`redis:\n  password: '${PREVIOUS}'\n`, w).holds, "previous");
    assert.equal(check(`redis:\n  password: "${PREVIOUS}"\r\n`, w).holds, "previous", "CRLF");
    assert.equal(check(`password: ${PREVIOUS}\nredis:\n  host: x\n`, w).holds, "missing", "a password outside redis: is not the key");
    assert.equal(check(`redis:\n  password: |\n    ${PREVIOUS}\n`, w).holds, "missing");
    assert.equal(check(`redis:\n  password:\n`, w).holds, "missing");
});

test("env-line: every KEY= line counts (the worst wins); export prefix; a missing file or key is missing", () => {
    const w: WriteSpec = { format: "env-line", key: "TOKEN" };
    assert.equal(check(`export TOKEN=${CURRENT}\n`, w).holds, "current");
    const two = check(`TOKEN=${CURRENT}\nTOKEN=${PREVIOUS}\n`, w);
    assert.equal(two.holds, "previous");
    assert.match(two.detail!, /appears 2 times/);
    assert.deepEqual([check(undefined, w).holds, check(undefined, w).detail?.startsWith("no file")], ["missing", true]);
    assert.equal(check("OTHER=1\n", w).holds, "missing");
});

test("the nonce differs per check, and so does the answer for the same value", () => {
    const w: WriteSpec = { format: "env-line", key: "TOKEN" };
    const a = check(`TOKEN=${CURRENT}\n`, w);
    const b = check(`TOKEN=${CURRENT}\n`, w);
    assert.notEqual(a.nonce, b.nonce);
    assert.notEqual(a.stdout, b.stdout, "no stable hash of the secret leaves the host");
    assert.throws(() => driftCheckScript("/x", w, "short"), /32 random bytes/);
});

test("the gate's refusal names the stack and the secret, and the way forward per reason: deploy again, or ask again once reachable", () => {
    const title = "app-redis: gate, all 3 consumers verified on g2";
    const where = { stack: "dev", secret: "app-redis" };
    const reverted: OffConsumer = { consumer: "redis-host1", label: "app-redis → consumer redis-host1", holds: "previous" };
    const gone: OffConsumer = { consumer: "redis-host2", label: "app-redis → consumer redis-host2", holds: "unreachable", detail: "no answer within 10s" };
    const head = `${title}: `;
    assert.equal(
        gateRefusal(title, where, 3, [reverted]),
        `${head}1 of 3 consumers are not on the new secret, so nothing is revoked: app-redis → consumer redis-host1 holds the previous secret. ` +
            "Deploy the new secret to redis-host1 again and let the gate ask again: bin/rotate resume --stack dev --secret app-redis --redeploy redis-host1 --yes",
    );
    assert.equal(
        gateRefusal(title, where, 3, [gone]),
        `${head}1 of 3 consumers are not on the new secret, so nothing is revoked: app-redis → consumer redis-host2 is unreachable (no answer within 10s). ` +
            "Once redis-host2 is reachable again, let the gate ask again: bin/rotate resume --stack dev --secret app-redis --yes",
    );
    const missing: OffConsumer = { consumer: "redis-host3", label: "app-redis → consumer redis-host3", holds: "missing", detail: "no file /etc/redis.yaml" };
    assert.equal(
        gateRefusal(title, where, 3, [reverted, gone, missing]),
        `${head}3 of 3 consumers are not on the new secret, so nothing is revoked: ` +
            "app-redis → consumer redis-host1 holds the previous secret; app-redis → consumer redis-host2 is unreachable (no answer within 10s); app-redis → consumer redis-host3 holds no secret (no file /etc/redis.yaml). " +
            "Deploy the new secret to redis-host1, redis-host3 again; once redis-host2 is reachable again, let the gate ask again: bin/rotate resume --stack dev --secret app-redis --redeploy redis-host1 --redeploy redis-host3 --yes",
    );
});

test("the gate takes the stack and the secret for its command from the step's audit record", async () => {
    const f = path.join(dir, "gate.env");
    fs.writeFileSync(f, `TOKEN=${PREVIOUS}\n`);
    const drift = [
        {
            host: "h",
            consumer: "web-1",
            label: "app-redis → consumer web-1",
            configPath: f,
            write: { format: "env-line", key: "TOKEN" } as WriteSpec,
            timeoutSeconds: 10,
        },
    ];
    // A local host: the check script runs here with bash, as it would over SSH.
    const props = {
        title: "app-redis: gate",
        drift,
        hosts: { h: { kind: "local" } as never },
        audit: { path: "/dev/null", record: { stack: "staging", secret: "app-redis" } },
    };
    await assert.rejects(checkDrift(props, [CURRENT, PREVIOUS]), {
        message:
            "app-redis: gate: 1 of 1 consumers are not on the new secret, so nothing is revoked: app-redis → consumer web-1 holds the previous secret. " +
            "Deploy the new secret to web-1 again and let the gate ask again: bin/rotate resume --stack staging --secret app-redis --redeploy web-1 --yes",
    });
    fs.writeFileSync(f, `TOKEN=${CURRENT}\n`);
    assert.deepEqual(await checkDrift(props, [CURRENT, PREVIOUS]), new Map(), "no log: no anchor");
    // With a log, the same job notes its anchor (its size now): the count after the revocation starts there.
    const log = path.join(dir, "gate.log");
    fs.writeFileSync(log, "twelve bytes");
    const anchors = await checkDrift({ ...props, drift: [{ ...drift[0], logPath: log }] }, [CURRENT, PREVIOUS]);
    assert.deepEqual(anchors, new Map([["web-1", 12]]));
});
