// Pre-flight's host script run for real with bash on local files: each
// problem it reports, and silence when the consumer is ready.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { WriteSpec } from "../../writers";
import { consumerPreflightScript } from "../../lib/scripts/preflight";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "preflight-"));
const YAML: WriteSpec = { format: "yaml-key", key: "redis.password" };

function problems(file: string, write: WriteSpec = YAML, reload = 'kill -HUP "$(cat /run/app.pid)"'): string[] {
    const r = spawnSync("bash", ["-c", consumerPreflightScript(file, write, reload)], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => l.replace(/^PREFLIGHT /, ""));
}

test("a ready consumer: no problem", () => {
    const f = path.join(dir, "ok.yaml");
    fs.writeFileSync(f, 'redis:\n  password: "old"\n');
    assert.deepEqual(problems(f), []);
    fs.symlinkSync(f, path.join(dir, "link.yaml"));
    assert.deepEqual(problems(path.join(dir, "link.yaml")), [], "a link to a file is written through");
});

test("each problem is named: no file, a dangling link, a directory, no key, an empty key, a missing reload program", () => {
    assert.deepEqual(problems(path.join(dir, "nope.yaml")), [`no config file ${dir}/nope.yaml`]);
    fs.symlinkSync(path.join(dir, "gone"), path.join(dir, "dangling.yaml"));
    assert.deepEqual(problems(path.join(dir, "dangling.yaml")), [`${dir}/dangling.yaml is a symbolic link to nothing`]);
    fs.mkdirSync(path.join(dir, "adir"));
    assert.deepEqual(problems(path.join(dir, "adir")), [`${dir}/adir is not a regular file`]);
    const f = path.join(dir, "nokey.yaml");
    fs.writeFileSync(f, "redis:\n  host: x\n");
    assert.deepEqual(problems(f), [`no key redis.password in ${f}`]);
    const env = path.join(dir, "app.env");
    fs.writeFileSync(env, "OTHER=1\n");
    assert.deepEqual(problems(env, { format: "env-line", key: "TOKEN" }, "/usr/local/bin/no-such-reloader --now"), [
        "the reload command's program /usr/local/bin/no-such-reloader is not found on this host",
        `no TOKEN= line in ${env}`,
    ]);
});

test("the pre-flight step: every check at once, then ONE error naming each problem with its secret and where; the console reads them back", async () => {
    const { preflightStep, problemsOfStepError } = await import("../../provider/preflight");
    const { pool } = await import("../../provider/exec");
    const ready = path.join(dir, "ready.yaml");
    fs.writeFileSync(ready, 'redis:\n  password: "old"\n');
    const spec = {
        secret: "app-redis",
        consumers: [
            { name: "web-1", host: "h0", configPath: ready, write: YAML, reload: "true", timeoutSeconds: 10 },
            { name: "web-2", host: "h1", configPath: ready, write: YAML, reload: "true", timeoutSeconds: 10 },
        ],
        source: { target: { kind: "local" as const }, script: "printf 'PREFLIGHT %s\\n' 'redis 127.0.1.30:6379 does not accept the admin credential'" },
        store: "true",
    };
    // Neither consumer's host answers (nothing listens on ports 1 and 2): each is a problem of its own.
    const hosts = {
        h0: {
            kind: "ssh" as const,
            host: "127.0.0.1",
            port: 1,
            user: "root",
            hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            privateKeyFile: "/dev/null",
        },
        h1: {
            kind: "ssh" as const,
            host: "127.0.0.1",
            port: 2,
            user: "root",
            hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            privateKeyFile: "/dev/null",
        },
    };
    const title = "app-redis: pre-flight of g3 (2 consumers, the source, the store)";
    try {
        const t0 = Date.now();
        const error = await preflightStep(spec, hosts, title).then(
            () => assert.fail("no problem found"),
            (e: Error) => e,
        );
        assert.equal(error.name, "StepError");
        const lines = error.message.split("\n");
        assert.equal(lines[0], `${title}: 3 problem(s); nothing of the rotation ran:`);
        assert.match(lines[1], /^app-redis consumer web-1: cannot run the checks on root@127\.0\.0\.1:1: .*Connection refused/);
        assert.match(lines[2], /^app-redis consumer web-2: cannot run the checks on root@127\.0\.0\.1:2: .*Connection refused/);
        assert.equal(lines[3], "app-redis source: redis 127.0.1.30:6379 does not accept the admin credential");
        assert.ok(Date.now() - t0 < 8000, "in parallel, not one after another");
        assert.deepEqual(
            problemsOfStepError("app-redis", error.message).map((p) => p.at),
            ["consumer web-1", "consumer web-2", "source"],
        );
        await preflightStep({ ...spec, consumers: [], source: undefined }, {}, title);
    } finally {
        pool.close();
    }
});
