// The README's first command on a fresh clone: the dev stack's rotation
// against the lab, then `git status`. The dev stack's generations move with
// every rotation; once they lived in a tracked file, so the newcomer's second
// command (the tests) found a modified checkout and two tests failed
// (issue 23, defect 6). Here a clone of the committed tree rotates every dev
// secret twice, and nothing tracked may change.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, test } from "node:test";
import { captured, labCtl, ROOT } from "../../lab/driver";

const CLONE = path.join(ROOT, ".test-work", "quickstart-clone");
/** What the clone borrows from this checkout instead of installing again (all git-ignored here). */
const BORROWED = ["node_modules", ".tools", ".lab"];

function git(...args: string[]): string {
    const r = spawnSync("git", args, { cwd: CLONE, encoding: "utf8" });
    assert.equal(r.status, 0, `git ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
}

before(() => {
    labCtl("up", "--reset");
    fs.rmSync(CLONE, { recursive: true, force: true });
    const r = spawnSync("git", ["clone", "-q", ROOT, CLONE], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    for (const f of BORROWED) fs.symlinkSync(path.join(ROOT, f), path.join(CLONE, f));
    // The links are this test's, not the product's: .gitignore's `dir/` patterns do not match a symlink.
    fs.appendFileSync(path.join(CLONE, ".git", "info", "exclude"), BORROWED.map((f) => `/${f}\n`).join(""));
});

test("a fresh clone's dev rotation (the README's first command) leaves git status clean, twice", () => {
    assert.equal(git("status", "--porcelain"), "", "the clone starts clean");
    for (const generation of [1, 2]) {
        const env = {
            ...process.env,
            ROTATION_PROJECT_DIR: undefined,
            PULUMI_BACKEND_URL: undefined,
            PULUMI_CONFIG_PASSPHRASE: undefined,
            PULUMI_CONFIG_PASSPHRASE_FILE: undefined,
        };
        const r = spawnSync(path.join(CLONE, "bin", "rotate"), ["start", "--stack", "dev", "--all", "--yes", "--plain"], { cwd: CLONE, env, encoding: "utf8" });
        captured.push({ label: `quickstart clone: bin/rotate start #${generation}`, text: r.stdout + r.stderr });
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.match(
            r.stdout,
            new RegExp(`rotation of app-api-key ${generation - 1} -> ${generation}, .*app-token ${generation - 1} -> ${generation}: succeeded`),
        );
        assert.equal(
            git("status", "--porcelain", "--untracked-files=all"),
            "",
            `nothing tracked changed and nothing new is unignored after rotation ${generation}`,
        );
    }
    assert.ok(fs.existsSync(path.join(CLONE, "stacks", "Pulumi.dev.yaml")), "the dev stack's file was made from its template");
    assert.match(git("check-ignore", "-v", "stacks/Pulumi.dev.yaml"), /\.gitignore/);
    assert.equal(
        fs.readFileSync(path.join(ROOT, "stacks", "templates", "Pulumi.dev.yaml"), "utf8"),
        fs.readFileSync(path.join(CLONE, "stacks", "templates", "Pulumi.dev.yaml"), "utf8"),
        "the template is untouched",
    );
});
