// Pre-flight's host script run for real with bash on local files: each
// problem it reports, and silence when the consumer is ready.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { WriteSpec } from "../../lib/configFormats";
import { consumerPreflightScript } from "../../lib/scripts/preflight";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "preflight-"));
const YAML: WriteSpec = { format: "yaml-key", key: "redis.password" };

function problems(file: string, write: WriteSpec = YAML, reload = 'kill -HUP "$(cat /run/app.pid)"'): string[] {
    const r = spawnSync("bash", ["-c", consumerPreflightScript(file, write, reload)], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter(Boolean).map((l) => l.replace(/^PREFLIGHT /, ""));
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
