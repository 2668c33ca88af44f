// The console reads the stack's `rotation:` config from the stack file
// (cli/configFile.ts) instead of `pulumi config --json --show-secrets`
// (issue 29). Held to the real CLI: on the files the project writes, both
// give the same values; where Pulumi's YAML library could read the file
// otherwise, or a value is encrypted, the reader gives up and the console
// asks the CLI.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { plainConfigOf } from "../../cli/configFile";

const ROOT = path.resolve(__dirname, "../..");
const project = fs.mkdtempSync(path.join(os.tmpdir(), "config-file-"));
fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(project, "Pulumi.yaml"));
fs.mkdirSync(path.join(project, "stacks"));
const env: NodeJS.ProcessEnv = {
    ...process.env,
    PULUMI_BACKEND_URL: `file://${path.join(project, ".state")}`,
    PULUMI_CONFIG_PASSPHRASE: "config-file-test",
    PULUMI_HOME: path.join(project, ".pulumi-home"),
    PULUMI_SKIP_UPDATE_CHECK: "true",
};
delete env.PULUMI_CONFIG_PASSPHRASE_FILE;
fs.mkdirSync(path.join(project, ".state"));
const pulumi = (...args: string[]) => {
    const r = spawnSync(path.join(ROOT, ".tools", "bin", "pulumi"), [...args, "--stack", "t", "--non-interactive"], { cwd: project, env, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
};
pulumi("stack", "init");
const file = path.join(project, "stacks", "Pulumi.t.yaml");
const salt = fs.readFileSync(file, "utf8");

/** What `pulumi config --json --show-secrets` gives for the `rotation:` keys, each value decoded as the program decodes it. */
function cliConfig(): Record<string, unknown> {
    const all = JSON.parse(pulumi("config", "--json", "--show-secrets")) as Record<string, { value: string }>;
    return Object.fromEntries(Object.entries(all).flatMap(([k, v]) => (k.startsWith("rotation:") ? [[k, decode(v.value)]] : [])));
}
const decode = (v: string) => (/^\s*[[{]/.test(v) ? JSON.parse(v) : v);
const read = () => {
    const r = plainConfigOf(project, file);
    return r && Object.fromEntries(Object.entries(r).map(([k, v]) => [k, decode(v)]));
};
const stackFile = (yaml: string) => fs.writeFileSync(file, `${salt}${yaml}`);

test("the lab's dev stack, comments and all, reads as the CLI reads it", () => {
    const dev = fs.readFileSync(path.join(ROOT, "stacks", "templates", "Pulumi.dev.yaml"), "utf8");
    stackFile(dev.replace(/^encryptionsalt:.*$/m, ""));
    const r = read();
    assert.ok(r, "read from the file");
    assert.deepEqual(r, cliConfig());
    // Key order too: the console runs and lists the secrets in the order the CLI gives them (sorted).
    const raw = JSON.parse(pulumi("config", "--json", "--show-secrets")) as Record<string, { value: string }>;
    assert.equal(plainConfigOf(project, file)!["rotation:secrets"], JSON.stringify(JSON.parse(raw["rotation:secrets"].value)));
});

test("what `config set --path` writes (a generation as a number, a note with quotes and a colon) reads as the CLI reads it", () => {
    stackFile('config:\n  rotation:auditLog: .state/audit.log\n  rotation:secrets:\n    app:\n      generation: 4\n      reason: "007"\n');
    pulumi(
        "config",
        "set-all",
        "--path",
        "--plaintext",
        "rotation:secrets.app.generation=5",
        "--plaintext",
        'rotation:secrets.app.note=ticket "4711": key, leaked',
    );
    pulumi("config", "rm-all", "--path", "rotation:secrets.app.reason");
    const r = read();
    assert.deepEqual(r, {
        "rotation:auditLog": ".state/audit.log",
        "rotation:secrets": { app: { generation: 5, note: 'ticket "4711": key, leaked' } },
    });
    assert.deepEqual(r, cliConfig());
});

test("the CLI is asked where the file does not say it plainly: encrypted, a timestamp, a leading zero, a top-level number, an ESC environment", () => {
    const cases: [string, string][] = [
        ["an encrypted value", "config:\n  rotation:secrets:\n    app:\n      note:\n        secure: v1:abc\n"],
        ["a timestamp", "config:\n  rotation:secrets:\n    app:\n      note: 2026-01-01\n"],
        ["a leading zero", "config:\n  rotation:secrets:\n    app:\n      generation: 010\n"],
        ["a top-level number", "config:\n  rotation:generation: 4\n"],
        ["a merge key", "config:\n  rotation:secrets:\n    a: &x {generation: 1}\n    b:\n      <<: *x\n"],
        ["an ESC environment", "environment:\n  - shared\nconfig:\n  rotation:auditLog: a.log\n"],
        ["a duplicate key", "config:\n  rotation:auditLog: a.log\n  rotation:auditLog: b.log\n"],
    ];
    for (const [what, yaml] of cases) {
        stackFile(yaml);
        assert.equal(plainConfigOf(project, file), undefined, what);
    }
    // The CLI reads the leading zero otherwise than js-yaml does: the reason to give up.
    stackFile("config:\n  rotation:secrets:\n    app:\n      generation: 010\n");
    assert.deepEqual(cliConfig(), { "rotation:secrets": { app: { generation: 8 } } });
});

test("a `config:` in the project file (values for every stack) sends the console to the CLI", () => {
    stackFile("config:\n  rotation:auditLog: a.log\n");
    assert.ok(plainConfigOf(project, file));
    const other = fs.mkdtempSync(path.join(os.tmpdir(), "config-file-project-"));
    fs.writeFileSync(path.join(other, "Pulumi.yaml"), "name: p\nruntime: nodejs\nconfig:\n  rotation:auditLog: shared.log\n");
    assert.equal(plainConfigOf(other, file), undefined);
    assert.equal(plainConfigOf(project, path.join(project, "stacks", "Pulumi.none.yaml")), undefined, "no stack file: the CLI says what the stack holds");
});
