// A secret full of shell and YAML metacharacters and non-ASCII text, rotated
// through the real engine with an operator-defined `command` source, must land
// byte-exact in each config format: YAML key, KEY=value line, template.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, test } from "node:test";
import yaml from "js-yaml";
import { assertSucceeded, remember } from "./checks";
import { hosts, lab, labCtl, ROOT, storePath, storeValue, Workspace } from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const SECRET = "app-hostile";
const HOSTILE = `p'a"s|s&w\\o$r(d) \`x\` $(touch /tmp/rotation-pwned) ; # ~!* é日本🔑 "end`;
let ws: Workspace;
let registry: string;

before(() => {
    labCtl("up");
    ws = new Workspace("hostile");
    const l = lab();
    registry = path.join(ws.dir, "accepted-hashes");
    fs.writeFileSync(path.join(l.storeDir, SECRET), "initial-hostile-test-value", { mode: 0o600 });
    fs.rmSync(storePath(SECRET, "committed"), { force: true });
    const valueFile = path.join(ws.dir, "hostile-value");
    fs.writeFileSync(valueFile, HOSTILE, { mode: 0o600 });
    const [h1, h2] = hosts();
    fs.writeFileSync(path.join(h1.etcDir, "hostile.yaml"), 'app:\n  secret: "before"  # keep this comment\n  other: 1\nsecret: untouched\n', { mode: 0o600 });
    fs.writeFileSync(path.join(h1.etcDir, "hostile.env"), "A=1\nSECRET=before\nSECRET2=untouched\n", { mode: 0o600 });
    fs.writeFileSync(path.join(h2.etcDir, "hostile.tmpl"), "old\n", { mode: 0o600 });
    fs.writeFileSync(registry, "");
    const hash = `sha256sum | cut -c1-64`;
    const consumer = (name: string, h: typeof h1, configPath: string, write: object) => ({
        name,
        host: h.ip,
        user: "root",
        hostKeyFile: `${l.labDir}/hosts/${h.name}/ssh_host_ed25519_key.pub`,
        privateKeyFile: l.operatorKey,
        configPath,
        write,
        reload: "true",
        health: { command: `test -s ${configPath}` },
        retries: 0,
    });
    ws.setConfig({
        generation: 1,
        secret: {
            name: SECRET,
            type: "api-token",
            generator: { kind: "command", command: `cat -- ${valueFile}` },
            reason: "scheduled",
            note: "hostile characters",
            operator: "e2e",
        },
        store: { kind: "file", dir: l.storeDir },
        source: {
            kind: "command",
            grant: `IFS= read -r -d '' S; printf '%s' "$S" | ${hash} >> ${registry}`,
            revoke: `IFS= read -r -d '' S; h=$(printf '%s' "$S" | ${hash}); grep -v "$h" ${registry} > ${registry}.tmp || true; mv ${registry}.tmp ${registry}`,
            withdraw: `IFS= read -r -d '' S; h=$(printf '%s' "$S" | ${hash}); grep -v "$h" ${registry} > ${registry}.tmp || true; mv ${registry}.tmp ${registry}`,
            test: `IFS= read -r -d '' S; grep -q "$(printf '%s' "$S" | ${hash})" ${registry}`,
        },
        consumers: [
            consumer("yaml", h1, "/etc/rotation-app/hostile.yaml", { format: "yaml-key", key: "app.secret" }),
            consumer("env", h1, "/etc/rotation-app/hostile.env", { format: "env-line", key: "SECRET" }),
            consumer("template", h2, "/etc/rotation-app/hostile.tmpl", { format: "template", template: "token = <<{{secret}}>>\n{{secret}}\n" }),
        ],
    });
});

test("a hostile secret is written exactly into YAML, KEY=value and template configs", async () => {
    // The initial value was never granted at this command source: grant it as generation 0.
    fs.appendFileSync(registry, `${require("node:crypto").createHash("sha256").update("initial-hostile-test-value").digest("hex")}\n`);
    remember(HOSTILE, "initial-hostile-test-value");
    const up = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assertSucceeded(up, "hostile rotation");
    assert.equal(storeValue(SECRET), HOSTILE, "the store holds the exact value");
    const [h1, h2] = hosts();
    const doc = yaml.load(fs.readFileSync(path.join(h1.etcDir, "hostile.yaml"), "utf8")) as any;
    assert.equal(doc.app.secret, HOSTILE, "YAML value is exact");
    assert.equal(doc.secret, "untouched");
    assert.match(fs.readFileSync(path.join(h1.etcDir, "hostile.yaml"), "utf8"), /# keep this comment/);
    const env = fs.readFileSync(path.join(h1.etcDir, "hostile.env"), "utf8");
    assert.equal(env, `A=1\nSECRET=${HOSTILE}\nSECRET2=untouched\n`, "KEY=value line is exact");
    assert.equal(fs.readFileSync(path.join(h2.etcDir, "hostile.tmpl"), "utf8"), `token = <<${HOSTILE}>>\n${HOSTILE}\n`, "template is exact");
    assert.equal(fs.existsSync("/tmp/rotation-pwned"), false, "nothing in the secret was executed");
    assert.equal(
        fs.readFileSync(path.join(h1.etcDir, "hostile.env.bak"), "utf8"),
        "A=1\nSECRET=before\nSECRET2=untouched\n",
        "the .bak holds the previous config",
    );
    fs.rmSync(path.join(ROOT, ".lab/store", SECRET), { force: true });
});

test("hostile: no secret leaked", () => {
    scanForLeaks(ws);
});
