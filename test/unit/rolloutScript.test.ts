// The remote job of a consumer's rollout (provider/rollout.ts), run for real
// with bash on temporary files: the write keeps a .bak, the reload's failure
// is reported, the health command is retried, and the log check counts only
// what was logged since the reload and fails on a pattern grep cannot read.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { logCheckScript, writeAndReloadScript } from "../../provider/rollout";
import type { RolloutSpec } from "../../provider/types";

function setup(patch: Partial<RolloutSpec> = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollout-job-"));
    const config = path.join(dir, "app.env");
    const log = path.join(dir, "app.log");
    fs.writeFileSync(config, "KEY=old\n");
    fs.writeFileSync(log, "AUTH_FAILED before the reload\n");
    const spec: RolloutSpec = {
        label: "s → consumer c",
        target: { kind: "ssh", host: "h", port: 22, user: "root", hostKey: "k", privateKeyFile: "/k" },
        health: { command: "true" },
        retries: 2,
        retryDelaySeconds: 0,
        timeoutSeconds: 5,
        generation: 2,
        configPath: config,
        write: { format: "env-line", key: "KEY" },
        reload: "true",
        logCheck: { path: log, pattern: "AUTH_FAILED", windowSeconds: 1 },
        ...patch,
    };
    const run = (content = "KEY=new\n") => {
        const r = spawnSync("bash", ["-c", writeAndReloadScript(spec, true)], { input: content, encoding: "utf8" });
        const markers = Object.fromEntries(
            r.stdout
                .trim()
                .split("\n")
                .map((l) => [l.split(" ")[0], l.split(" ").slice(1).join(" ")]),
        );
        return { ...r, markers };
    };
    return { dir, config, log, spec, run };
}

test("a passing rollout writes with a .bak and reports reload, health and log check", () => {
    const { config, run } = setup();
    const t0 = Date.now();
    const r = run();
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.markers, { LOGSIZE: "30", RELOAD: "0", HEALTH: "ok", LOGCHECK: "1" });
    assert.ok(Date.now() - t0 >= 1000, "the log check waits out its window after the reload");
    assert.equal(fs.readFileSync(config, "utf8"), "KEY=new\n");
    assert.equal(fs.readFileSync(`${config}.bak`, "utf8"), "KEY=old\n");
    assert.equal(fs.statSync(config).mode & 0o777, 0o600);
});

test("the health command is retried; after the last try its output and exit code are reported", () => {
    const flaky = setup();
    const counter = path.join(flaky.dir, "tries");
    flaky.spec.health = { command: `echo x >> '${counter}'; [ "$(wc -l < '${counter}')" -ge 3 ]` };
    assert.equal(flaky.run().markers.HEALTH, "ok", "passes on the third try");

    const broken = setup({ health: { command: "echo 'redis: WRONGPASS' >&2; exit 7" }, logCheck: undefined });
    const r = broken.run();
    assert.equal(r.markers.HEALTH, "fail 3 7");
    assert.match(r.stderr, /redis: WRONGPASS/);
    assert.equal(r.markers.LOGCHECK, undefined, "no log check after a failed health check");
});

test("a failing reload is reported and nothing after it runs", () => {
    const r = setup({ reload: "echo 'no such pid' >&2; exit 4" }).run();
    assert.equal(r.markers.RELOAD, "4");
    assert.equal(r.markers.HEALTH, undefined);
    assert.match(r.stderr, /no such pid/);
});

test("the log check counts auth failures logged after the reload only, and fails on a bad pattern", () => {
    const after = setup();
    after.spec.reload = `echo 'AUTH_FAILED after the reload' >> '${after.log}'`;
    assert.equal(after.run().markers.LOGCHECK, "0");
    const bad = setup({ logCheck: undefined });
    bad.spec.logCheck = { path: bad.log, pattern: "AUTH_FAILED(", windowSeconds: 1 };
    const r = bad.run();
    assert.equal(r.markers.LOGCHECK, "2", "grep's error is not read as 'no match'");
    assert.match(r.stderr, /could not search/);
});

test("a config that is a symbolic link is written through: the link stays, its target gets the secret and the .bak", () => {
    const job = setup();
    const release = path.join(job.dir, "release-42");
    fs.mkdirSync(release);
    const target = path.join(release, "app.env");
    fs.renameSync(job.config, target);
    fs.symlinkSync(target, job.config);
    const r = job.run();
    assert.equal(r.markers.RELOAD, "0", r.stderr);
    assert.ok(fs.lstatSync(job.config).isSymbolicLink(), "the link is kept");
    assert.equal(fs.readlinkSync(job.config), target);
    assert.equal(fs.readFileSync(target, "utf8"), "KEY=new\n");
    assert.equal(fs.readFileSync(`${target}.bak`, "utf8"), "KEY=old\n");
    assert.equal(fs.statSync(target).mode & 0o777, 0o600);

    const dangling = setup();
    fs.rmSync(dangling.config);
    fs.symlinkSync(path.join(dangling.dir, "gone.env"), dangling.config);
    const d = dangling.run();
    assert.equal(d.markers.RELOAD, undefined, "nothing reloaded");
    assert.match(d.stderr, /is a symbolic link to nothing/);
});

test("a write that fails half-way (no space left for the backup copy) leaves the config, its .bak and no temporary file", () => {
    const job = setup();
    fs.writeFileSync(`${job.config}.bak`, "KEY=older\n");
    // cp as on a full disk: the copy is created and partly written, then ENOSPC.
    const bin = path.join(job.dir, "bin");
    fs.mkdirSync(bin);
    fs.writeFileSync(
        path.join(bin, "cp"),
        `#!/bin/bash
printf 'KEY=o' > "\${@: -1}"
echo "cp: error copying '\${@: -2:1}' to '\${@: -1}': No space left on device" >&2
exit 1
`,
        { mode: 0o755 },
    );
    const r = spawnSync("bash", ["-c", writeAndReloadScript(job.spec, true)], {
        input: "KEY=new\n",
        encoding: "utf8",
        env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /app\.env\.bak\.rotation-tmp': No space left on device/);
    assert.equal(r.stdout, "", "nothing reloaded");
    assert.equal(fs.readFileSync(job.config, "utf8"), "KEY=old\n");
    assert.equal(fs.readFileSync(`${job.config}.bak`, "utf8"), "KEY=older\n");
    assert.deepEqual(fs.readdirSync(job.dir).sort(), ["app.env", "app.env.bak", "app.log", "bin"], "no partial copy or temporary file is left");
});

test("the log check on its own (after a health URL) counts from its offset and reports grep's verdict", () => {
    const { log } = setup();
    const run = (pattern: string, offset: number) =>
        spawnSync("bash", ["-c", logCheckScript({ path: log, pattern, windowSeconds: 1 }, offset)], { encoding: "utf8" });
    assert.equal(run("AUTH_FAILED", 0).stdout.trim(), "LOGCHECK 0", "a match from the start of the log");
    assert.equal(run("AUTH_FAILED", fs.statSync(log).size).stdout.trim(), "LOGCHECK 1", "nothing since the offset");
    const bad = run("AUTH_FAILED(", 0);
    assert.equal(bad.stdout.trim(), "LOGCHECK 2");
    assert.match(bad.stderr, /could not search/);
    assert.equal(
        spawnSync("bash", ["-c", logCheckScript({ path: `${log}.missing`, pattern: "x", windowSeconds: 1 }, 0)], { encoding: "utf8" }).stdout.trim(),
        "LOGCHECK 1",
        "no log yet: nothing logged",
    );
});
