// rotation:consumersFile: a large inventory read from a YAML file instead of
// the stack config (whose environment variable Linux caps at 128 KiB), with
// its digest, and errors that name the file and the consumer's field.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import yaml from "js-yaml";
import { parseRotationConfig } from "../../lib/config";
import { ConfigError } from "../../lib/errors";
import { readInventory } from "../../lib/inventory";
import { resolveRotation } from "../../lib/resolve";
import { rawConfig } from "./harness";

function withFile(content: string): { dir: string; raw: Record<string, unknown> } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "inventory-"));
    fs.writeFileSync(path.join(dir, "fleet.yaml"), content);
    const { consumers: _inline, ...raw } = rawConfig();
    return { dir, raw: { ...raw, consumersFile: "fleet.yaml" } };
}

const problemsOf = (fn: () => unknown): string[] => {
    try {
        fn();
    } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        return [...e.problems];
    }
    assert.fail("expected a ConfigError");
};

test("1000 consumers from a file parse like inline ones; the file's digest is kept", () => {
    const many = Array.from({ length: 1000 }, (_, i) => ({ ...(rawConfig().consumers as any[])[0], name: `c-${i}`, configPath: `/etc/app/c-${i}.yaml` }));
    const { dir, raw } = withFile(yaml.dump(many));
    const { raw: expanded, inventory } = readInventory("prod", raw, dir);
    const cfg = parseRotationConfig("prod", expanded, inventory);
    assert.equal(cfg.consumers.length, 1000);
    assert.equal(cfg.consumers[999].name, "c-999");
    assert.equal(inventory!.file, "fleet.yaml");
    assert.match(inventory!.sha256, /^[0-9a-f]{64}$/);
    // A mapping with a consumers list is accepted too.
    const mapped = withFile(yaml.dump({ consumers: many.slice(0, 2) }));
    assert.equal(parseRotationConfig("prod", ...Object.values(readInventory("prod", mapped.raw, mapped.dir)) as [any, any]).consumers.length, 2);
});

test("a consumer's error names the file and the field", () => {
    const bad = [{ ...(rawConfig().consumers as any[])[0], configPath: "relative/path" }];
    const { dir, raw } = withFile(yaml.dump(bad));
    const { raw: expanded, inventory } = readInventory("prod", raw, dir);
    assert.deepEqual(problemsOf(() => parseRotationConfig("prod", expanded, inventory)), [
        "rotation:consumersFile fleet.yaml: consumers[0].configPath: must be an absolute path",
    ]);
});

test("a missing, malformed or ambiguous inventory is refused before anything runs", () => {
    const { dir, raw } = withFile("- name: [unclosed\n");
    assert.match(problemsOf(() => readInventory("prod", raw, dir))[0], /^rotation:consumersFile: fleet\.yaml is not valid YAML: /);
    assert.deepEqual(problemsOf(() => readInventory("prod", { ...raw, consumersFile: "nope.yaml" }, dir)), [
        `rotation:consumersFile: cannot read ${path.join(dir, "nope.yaml")}: ENOENT`,
    ]);
    const scalar = withFile("just text\n");
    assert.deepEqual(problemsOf(() => readInventory("prod", scalar.raw, scalar.dir)), [
        'rotation:consumersFile: fleet.yaml must hold a list of consumers (or a mapping with a "consumers" list)',
    ]);
    assert.deepEqual(problemsOf(() => readInventory("prod", { ...raw, consumers: "[]" }, dir)), [
        "rotation:consumersFile: set only one of rotation:consumers or rotation:consumersFile",
    ]);
});

test("a log-check pattern grep -E cannot read is refused before anything runs, naming the consumer (and its file)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "patterns-"));
    const key = path.join(dir, "id_ed25519");
    fs.writeFileSync(key, "not read here");
    const consumers = (rawConfig().consumers as any[]).map((c, i) => ({ ...c, privateKeyFile: key, logCheck: { ...c.logCheck, pattern: i === 1 ? "AUTH_FAILED(" : "AUTH_FAILED|WRONGPASS" } }));
    const { dir: invDir, raw } = withFile(yaml.dump(consumers));
    const { raw: expanded, inventory } = readInventory("prod", raw, invDir);
    const cfg = parseRotationConfig("prod", { ...expanded, store: { kind: "file", dir }, source: { ...(rawConfig().source as any), adminPasswordFile: key } }, inventory);
    assert.deepEqual(problemsOf(() => resolveRotation("prod", cfg, dir, inventory)), [
        'rotation:consumersFile fleet.yaml: consumers[1].logCheck.pattern: "AUTH_FAILED(" is not an extended regular expression grep -E accepts (Unmatched ( or \\()',
    ]);
    cfg.consumers[1].logCheck!.pattern = "AUTH_FAILED\\(";
    assert.equal(resolveRotation("prod", cfg, dir, inventory).config.consumers.length, 3, "an escaped parenthesis is fine");
});
