// bin/pulumi opens a file:// backend with metadata=skip: the storage library
// (gocloud.dev's fileblob) then writes no `<object>.attrs` file beside each
// object. That file is truncated and then written, not replaced as the
// checkpoint is, so an engine killed in between left it empty, and every later
// command failed with "failed to load checkpoint: EOF" (the fault matrix's
// kill row, once in CI). Held to the real CLI, with and without bin/pulumi.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { backend } from "../../cli/backend";

const ROOT = path.resolve(__dirname, "../..");

/** A project with one stack made by `stack init`, through `cli` (bin/pulumi or the bare CLI); the state's files. */
function stateAfterInit(cli: string, url: (state: string) => string): string[] {
    const project = fs.mkdtempSync(path.join(os.tmpdir(), "state-metadata-"));
    fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(project, "Pulumi.yaml"));
    fs.mkdirSync(path.join(project, "stacks"));
    const state = path.join(project, ".state");
    fs.mkdirSync(state);
    const env: NodeJS.ProcessEnv = {
        ...process.env,
        ROTATION_PROJECT_DIR: project,
        PULUMI_BACKEND_URL: url(state),
        PULUMI_CONFIG_PASSPHRASE: "state-metadata-test",
        PULUMI_HOME: path.join(project, ".pulumi-home"),
        PULUMI_SKIP_UPDATE_CHECK: "true",
    };
    delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
    try {
        const r = spawnSync(cli, ["stack", "init", "t", "--non-interactive"], { cwd: project, env, encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        return fs.readdirSync(state, { recursive: true }) as string[];
    } finally {
        fs.rmSync(project, { recursive: true, force: true });
    }
}

test("through bin/pulumi, a file:// state holds its stack and no metadata file", () => {
    const files = stateAfterInit(path.join(ROOT, "bin", "pulumi"), (state) => `file://${state}`);
    assert.ok(
        files.some((f) => f.endsWith(path.join("stacks", "secret-rotation", "t.json"))),
        `the stack's checkpoint was written: ${files.join(", ")}`,
    );
    assert.deepEqual(
        files.filter((f) => f.endsWith(".attrs")),
        [],
    );
});

test("a URL with a query of its own gets metadata=skip beside it", () => {
    const files = stateAfterInit(path.join(ROOT, "bin", "pulumi"), (state) => `file://${state}?no_tmp_dir=true`);
    assert.deepEqual(
        files.filter((f) => f.endsWith(".attrs")),
        [],
    );
});

test("the bare CLI on the same URL writes them (what the option turns off)", () => {
    const files = stateAfterInit(path.join(ROOT, ".tools", "bin", "pulumi"), (state) => `file://${state}`);
    assert.ok(
        files.some((f) => f.endsWith("t.json.attrs")),
        `a metadata file beside the checkpoint: ${files.join(", ")}`,
    );
});

test("a state written before, with metadata files, is read and written on through bin/pulumi (the old files go stale, unread)", () => {
    const project = fs.mkdtempSync(path.join(os.tmpdir(), "state-metadata-"));
    try {
        fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(project, "Pulumi.yaml"));
        fs.mkdirSync(path.join(project, "stacks"));
        const state = path.join(project, ".state");
        fs.mkdirSync(state);
        const env: NodeJS.ProcessEnv = {
            ...process.env,
            ROTATION_PROJECT_DIR: project,
            PULUMI_BACKEND_URL: `file://${state}`,
            PULUMI_CONFIG_PASSPHRASE: "state-metadata-test",
            PULUMI_HOME: path.join(project, ".pulumi-home"),
            PULUMI_SKIP_UPDATE_CHECK: "true",
        };
        delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
        const run = (cli: string, ...args: string[]) => {
            const r = spawnSync(cli, [...args, "--stack", "t", "--non-interactive"], { cwd: project, env, encoding: "utf8" });
            assert.equal(r.status, 0, `${args.join(" ")}: ${r.stderr}`);
            return r.stdout;
        };
        const bare = path.join(ROOT, ".tools", "bin", "pulumi");
        const ours = path.join(ROOT, "bin", "pulumi");
        run(bare, "stack", "init");
        const checkpoint = path.join(state, ".pulumi", "stacks", "secret-rotation", "t.json");
        assert.ok(fs.existsSync(`${checkpoint}.attrs`), "the bare CLI wrote a metadata file");
        const sidecar = fs.readFileSync(`${checkpoint}.attrs`, "utf8");
        const exported = JSON.parse(run(ours, "stack", "export"));
        exported.deployment.manifest.time = "2026-01-01T00:00:00Z";
        const file = path.join(project, "export.json");
        fs.writeFileSync(file, JSON.stringify(exported));
        run(ours, "stack", "import", "--file", file, "--force");
        assert.match(fs.readFileSync(checkpoint, "utf8"), /2026-01-01T00:00:00Z/, "the checkpoint was rewritten");
        assert.equal(fs.readFileSync(`${checkpoint}.attrs`, "utf8"), sidecar, "its old metadata file was left as it was");
        for (const cli of [ours, bare]) assert.match(run(cli, "stack", "export"), /2026-01-01T00:00:00Z/, `${cli} reads the new checkpoint`);
    } finally {
        fs.rmSync(project, { recursive: true, force: true });
    }
});

test("the console's backend is the directory, the URL's query aside", () => {
    const saved = process.env.PULUMI_BACKEND_URL;
    try {
        process.env.PULUMI_BACKEND_URL = "file:///var/lib/rotation/state?metadata=skip&no_tmp_dir=true";
        assert.deepEqual(backend(), { kind: "file", root: "/var/lib/rotation/state" });
    } finally {
        if (saved === undefined) delete process.env.PULUMI_BACKEND_URL;
        else process.env.PULUMI_BACKEND_URL = saved;
    }
});
