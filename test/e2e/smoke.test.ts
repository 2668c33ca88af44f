// The foundation: the pinned engine from .tools/bin runs a TypeScript program
// through preview, up and destroy, and its one step really runs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { ROOT, WORK } from "../../lab/driver";
import { STEP_TYPE } from "../../provider/types";

const FIXTURE = path.join(ROOT, "test/e2e/fixtures/smoke");

function pulumi(args: string[], env: NodeJS.ProcessEnv) {
    return spawnSync(path.join(ROOT, "bin", "pulumi"), [...args, "--cwd", FIXTURE, "--non-interactive"], { env, encoding: "utf8" });
}

test("bin/pulumi is the pinned engine", () => {
    const r = spawnSync(path.join(ROOT, "bin", "pulumi"), ["version"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "v3.248.0");
});

test("preview, up and destroy a one-step program with the real engine", () => {
    const dir = path.join(WORK, "smoke");
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const marker = path.join(dir, "marker");
    const env = {
        ...process.env,
        PULUMI_BACKEND_URL: `file://${dir}`,
        PULUMI_CONFIG_PASSPHRASE: "smoke-test-only",
        PULUMI_HOME: path.join(WORK, ".pulumi-home"),
    };
    const stack = `smoke-${process.pid}`;
    const stackFile = path.join(FIXTURE, `Pulumi.${stack}.yaml`);
    try {
        assert.equal(pulumi(["stack", "init", stack], env).status, 0);
        for (const [k, v] of [
            ["smoke:file", marker],
            ["smoke:generation", "1"],
        ])
            assert.equal(pulumi(["config", "set", k, v, "--stack", stack], env).status, 0);
        assert.equal(pulumi(["config", "set", "--secret", "smoke:value", "smoke-Secret-Value-42", "--stack", stack], env).status, 0);

        const preview = pulumi(["preview", "--stack", stack], env);
        assert.equal(preview.status, 0, preview.stdout + preview.stderr);
        assert.match(preview.stdout, new RegExp(`\\+ .*${STEP_TYPE} +write-marker +create`));
        assert.equal(fs.existsSync(marker), false, "preview runs nothing");

        const up = pulumi(["up", "--yes", "--stack", stack], env);
        assert.equal(up.status, 0, up.stdout + up.stderr);
        assert.equal(fs.readFileSync(marker, "utf8"), "smoke-Secret-Value-42", "the step wrote its stdin to the file");
        assert.ok(!up.stdout.includes("smoke-Secret-Value-42"), "the secret is not printed");

        const again = pulumi(["up", "--yes", "--stack", stack], env);
        assert.equal(again.status, 0);
        assert.match(again.stdout, /2 unchanged/);

        const destroy = pulumi(["destroy", "--yes", "--stack", stack], env);
        assert.equal(destroy.status, 0, destroy.stdout + destroy.stderr);
        assert.equal(fs.existsSync(marker), false, "the delete script removed the file");

        const bad = pulumi(["up", "--yes", "--stack", "no-such-stack"], env);
        assert.notEqual(bad.status, 0, "an unknown stack fails");
    } finally {
        pulumi(["stack", "rm", "--yes", "--force", "--stack", stack], env);
        fs.rmSync(stackFile, { force: true });
    }
});
