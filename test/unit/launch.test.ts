// launch/: the program, the step provider and the console run as the
// JavaScript launch/register.cjs keeps under .build/, never a stale one; and
// launch/preload.cjs leaves the Pulumi SDK's closure serializer working.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

const ROOT = path.resolve(__dirname, "../..");
const REGISTER = path.join(ROOT, "launch", "register.cjs");

/** Requires `file` through launch/register.cjs in a fresh node and returns what it printed. */
function run(file: string): string {
    const r = spawnSync("node", ["--require", REGISTER, "-e", `console.log(JSON.stringify(require(${JSON.stringify(file)})))`], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
}

test("an edited TypeScript file runs as edited, its kept JavaScript made again; an unchanged one from the kept JavaScript", () => {
    const dir = path.join(ROOT, ".test-work", "launch-unit");
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const main = path.join(dir, "main.ts");
    fs.writeFileSync(path.join(dir, "dep.ts"), "export const n: number = 1;\n");
    fs.writeFileSync(main, 'import { n } from "./dep";\nexport const value = { n, v: "a" };\n');
    assert.equal(run(main), '{"value":{"n":1,"v":"a"}}');
    const kept = fs.readdirSync(path.join(ROOT, ".build")).map((d) => path.join(ROOT, ".build", d, ".test-work", "launch-unit", "main.js"));
    const keptMain = kept.find((f) => fs.existsSync(f));
    assert.ok(keptMain, "the JavaScript of main.ts is kept under .build/");

    // Same size, another mtime: only the stamp tells the kept JavaScript is stale.
    fs.writeFileSync(main, 'import { n } from "./dep";\nexport const value = { n, v: "b" };\n');
    assert.equal(run(main), '{"value":{"n":1,"v":"b"}}');
    fs.writeFileSync(path.join(dir, "dep.ts"), "export const n: number = 22;\n");
    assert.equal(run(main), '{"value":{"n":22,"v":"b"}}');

    // A kept file is used as it is while its source is unchanged (a marker put into it shows).
    const js = fs.readFileSync(keptMain, "utf8");
    fs.writeFileSync(keptMain, js.replace('v: "b"', 'v: "kept"'));
    assert.equal(run(main), '{"value":{"n":22,"v":"kept"}}');
    fs.rmSync(dir, { recursive: true, force: true });
});

test("with launch/preload.cjs the SDK loads without Arborist and TypeScript, and still serializes a function", () => {
    const script = [
        'const pulumi = require("@pulumi/pulumi");',
        "const loaded = (m) => Object.keys(require.cache).some((k) => k.includes(`/node_modules/${m}/`));",
        'const before = ["@npmcli/arborist", "typescript"].filter(loaded);',
        "const x = 42;",
        "pulumi.runtime.serializeFunction(() => x + 1).then((s) => console.log(JSON.stringify({ before, ok: s.text.includes('42'), after: loaded('typescript') })));",
    ].join("\n");
    const r = spawnSync("node", ["--require", path.join(ROOT, "launch", "preload.cjs"), "-e", script], { cwd: ROOT, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { before: [], ok: true, after: true });
});

test("the program's run of a project whose Pulumi.yaml says `typescript: false` starts without ts-node; with `true` as before", () => {
    const dir = path.join(ROOT, ".test-work", "launch-preload");
    fs.rmSync(dir, { recursive: true, force: true });
    // Stands in for the SDK's cmd/run/index.js: prints what the SDK would read.
    const run = path.join(dir, "cmd", "run", "index.js");
    fs.mkdirSync(path.dirname(run), { recursive: true });
    fs.writeFileSync(run, "console.log(process.env.PULUMI_NODEJS_TYPESCRIPT);\n");
    const seen = (option: string) => {
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: p\nruntime:\n  name: nodejs\n  options:\n    typescript: ${option}\n`);
        const r = spawnSync("node", ["--require", path.join(ROOT, "launch", "preload.cjs"), run, "--pwd", dir, "."], {
            env: { ...process.env, PULUMI_NODEJS_TYPESCRIPT: "true" },
            encoding: "utf8",
        });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.trim();
    };
    assert.equal(seen("false"), "false");
    assert.equal(seen("true"), "true");
    const project = fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8");
    assert.match(project, /^ {4}typescript: false$/m, "this project's Pulumi.yaml turns ts-node off");
    fs.rmSync(dir, { recursive: true, force: true });
});
