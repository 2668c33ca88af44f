// The other half of scriptQuoting.test.ts's level (b): the builders whose
// scripts need no lab, run with bash on temporary files at seeded nasty paths
// (line breaks, quotes, $, $(...), backticks, backslashes, blanks, leading
// dashes, non-ASCII), each checked to find, write or pass on exactly that
// value: the file store, a consumer's write-reload-health-log job, the
// authorized_keys edits, a command source's test, the pinned known_hosts
// line, the ssh-key generator's comment and the count of auth failures after
// the revocation.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { defaultGeneratorCommand } from "../../generators/command";
import { shq, stdinFields } from "../../lib/quote";
import { pinnedKnownHosts } from "../../lib/scripts/common";
import { sourceScripts } from "../../sources";
import { splitBatch } from "../../lib/scripts/common";
import { logAnchorOf, logAnchorScript, logCountBatchScript, logCountOf, logCountScript } from "../../lib/scripts/logCount";
import { fileStoreScripts } from "../../stores/file";
import { fileStorePath } from "../../stores/fileLayout";
import { logCheckScript, writeAndReloadScript } from "../../provider/rollout";
import type { RolloutSpec } from "../../provider/types";
import { HOST_KEY } from "./harness";
import { NASTY, nastyValue, prng } from "./seeded";

const SEED = 0x2023_0b05;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "script-quoting-run-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const next = prng(SEED);
/** About `count` of the fixed nasty values, spread over their kinds, the all-in-one last, and `count` seeded ones; each is also a file name. */
function values(count: number): string[] {
    const step = Math.ceil(NASTY.length / count);
    return [...NASTY.filter((_, i) => i % step === 0 || i === NASTY.length - 1), ...Array.from({ length: count }, () => nastyValue(next))];
}
/** A fresh directory with a nasty name, for one case. */
const nastyDir = () => fs.mkdtempSync(path.join(tmp, `${Array.from(nastyValue(next)).slice(0, 40).join("")}-`));

function bash(script: string, stdin = ""): { status: number | null; stdout: string; stderr: string } {
    return spawnSync("bash", ["-c", script], { input: stdin, encoding: "utf8", env: { PATH: process.env.PATH, LC_ALL: "C.UTF-8" } });
}

test("file store (lib/scripts/store.ts): stage, promote, read, commit and the rollback guard at a nasty directory and name", () => {
    for (const [i, name] of values(3).entries()) {
        const dir = path.join(nastyDir(), `st'ore\n${i}`);
        const at = `dir ${JSON.stringify(dir)}, name ${JSON.stringify(name)} (seed ${SEED})`;
        const s = fileStoreScripts(dir, name, 2);
        const secret = `new'"$(echo PWNED)\n`;
        const old = `old'"\n${i}`;
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(`${dir}/${name}`, old, { mode: 0o600 });
        // The rotation's order: stage (new and the one in use), the gate's commit, promote.
        assert.equal(bash(s.stage, stdinFields(secret, old)).status, 0, at);
        assert.equal(fs.readFileSync(fileStorePath(dir, name, "staged"), "utf8"), secret, at);
        assert.equal(bash(s.commit, stdinFields(secret, old)).status, 0, at);
        assert.equal(fs.readFileSync(fileStorePath(dir, name, "committed"), "utf8"), "2\n", at);
        assert.equal(bash(s.promote, stdinFields(secret)).status, 0, at);
        assert.deepEqual(
            [bash(s.readCurrent).stdout, fs.existsSync(fileStorePath(dir, name, "staged")), fs.readFileSync(fileStorePath(dir, name, "previous"), "utf8")],
            [secret, false, old],
            at,
        );
        assert.equal(bash(s.rollbackGuard).status, 1, at);
    }
});

/** What grep -E reads literally: a nasty value without ERE operators and line breaks. */
const literalPattern = (v: string) => `-${v.replace(/[$()\\*|.?+[\]{}^\n\t]/g, "")}'"x`;

test("consumer rollout job (provider/rollout.ts): writes the config at a nasty path, runs the health command as written, searches a nasty log for a nasty pattern", () => {
    for (const v of values(3)) {
        const dir = nastyDir();
        const configPath = path.join(dir, `app ${v}.env`);
        const log = path.join(dir, `log\n${v}`);
        const healthOut = path.join(dir, "health-out");
        const pattern = literalPattern(v);
        fs.writeFileSync(configPath, "KEY=old\n");
        fs.writeFileSync(log, "");
        const spec: RolloutSpec = {
            label: "s → consumer c",
            target: { kind: "ssh", host: "h", port: 22, user: "root", hostKey: HOST_KEY, privateKeyFile: "/k" },
            health: { command: `printf '%s' ${shq(v)} > ${shq(healthOut)}` },
            retries: 0,
            retryDelaySeconds: 0,
            timeoutSeconds: 10,
            generation: 2,
            configPath,
            write: { format: "env-line", key: "KEY" },
            reload: `printf '%s\\n' ${shq(pattern)} >> ${shq(log)}`,
            logCheck: { path: log, pattern, windowSeconds: 0 },
        };
        const at = `value ${JSON.stringify(v)} (seed ${SEED})`;
        const r = bash(writeAndReloadScript(spec, true), "KEY=new\n");
        assert.equal(r.status, 0, `${at}: ${r.stderr}`);
        assert.match(r.stdout, /^RELOAD 0\nHEALTH ok\nLOGCHECK 0\n$/m, at);
        assert.deepEqual([fs.readFileSync(configPath, "utf8"), fs.readFileSync(`${configPath}.bak`, "utf8")], ["KEY=new\n", "KEY=old\n"], at);
        assert.equal(fs.readFileSync(healthOut, "utf8"), v, `${at}: the health command ran as written`);
        assert.equal(bash(logCheckScript(spec.logCheck!, 0)).stdout, "LOGCHECK 0\n", `${at}: the pattern found in the log`);
    }
});

test("auth failures after the revocation (lib/scripts/logCount.ts): a nasty log's size, then exactly the nasty pattern's lines after it counted; a rotated log counted from its start", () => {
    for (const v of values(3)) {
        const log = path.join(nastyDir(), `log\n${v}`);
        const pattern = literalPattern(v);
        const at = `value ${JSON.stringify(v)} (seed ${SEED})`;
        const size = () => logAnchorOf(bash(logAnchorScript({ path: log })).stdout) as number;
        // Alone, and in a host's batch between a consumer of the same log with another pattern and one of a log that is not there.
        const count = (from: number) => {
            const alone = logCountOf(bash(logCountScript({ path: log, pattern }, from)).stdout);
            const items = [
                { source: { path: log, pattern: "^ok$" }, from },
                { source: { path: log, pattern }, from },
                { source: { path: `${log}.absent`, pattern }, from },
            ];
            const batch = splitBatch(bash(logCountBatchScript(items, "COUNT-t")).stdout, 3, "COUNT-t").map((a) => logCountOf(a ?? ""));
            assert.deepEqual(batch[1], alone, `${at}: the batch counts as the script alone`);
            assert.deepEqual(batch[2], { count: 0, grepStatus: 1 }, `${at}: a log not there counts 0 in a batch`);
            return alone;
        };
        assert.equal(size(), 0, `${at}: no log yet is size 0`);
        assert.deepEqual(count(0), { count: 0, grepStatus: 1 }, `${at}: no log yet counts 0`);
        fs.writeFileSync(log, `${pattern} before\n${"ok\n".repeat(40)}`);
        const anchor = size()!;
        assert.equal(anchor, fs.statSync(log).size, at);
        fs.appendFileSync(log, `${pattern} after\n${v}\n${pattern}${pattern}\n`);
        assert.deepEqual(count(anchor), { count: 2, grepStatus: 0 }, `${at}: only the lines after the anchor`);
        fs.writeFileSync(log, `${pattern} in the rotated log\n`);
        assert.deepEqual(count(anchor), { count: 1, grepStatus: 0 }, `${at}: a log smaller than the anchor was rotated: counted from its start`);
    }
});

test("ssh-authorized-key source: grant adds and withdraw removes the key line in an authorized_keys file at a nasty path", () => {
    const pub = HOST_KEY.replace(/^\S+ /, "ssh-ed25519 ");
    for (const v of values(3)) {
        const file = path.join(nastyDir(), `keys ${v}`);
        const s = sourceScripts(
            {
                kind: "ssh-authorized-key",
                host: "h",
                port: 22,
                user: "root",
                hostKey: HOST_KEY,
                privateKeyFile: "/k",
                authorizedKeysFile: file,
                loginUser: "app",
            },
            { generation: 2, secretName: "app-key" },
            HOST_KEY,
        );
        const at = `file ${JSON.stringify(file)} (seed ${SEED})`;
        assert.equal(bash(s.grant, stdinFields(pub)).status, 0, at);
        assert.equal(fs.readFileSync(file, "utf8"), `${pub} rotation:app-key:g2\n`, at);
        assert.equal(bash(s.withdraw, stdinFields(pub)).status, 0, at);
        assert.equal(fs.readFileSync(file, "utf8"), "", at);
    }
});

test("command source: verify runs the operator's test command exactly as written", () => {
    for (const v of values(6)) {
        const test = `IFS= read -r -d '' s; [ "$s" = ${shq(v)} ]`;
        const s = sourceScripts({ kind: "command", grant: "true", revoke: "true", withdraw: "true", test }, { generation: 2, secretName: "app" });
        const r = bash(s.verify, stdinFields(`${v}-old`, v));
        assert.deepEqual([r.status, r.stdout], [0, "source: old rejected, new accepted\n"], `value ${JSON.stringify(v)} (seed ${SEED}): ${r.stderr}`);
    }
});

test("pinned known_hosts: the host and host key arrive as written", () => {
    for (const v of values(6)) {
        for (const port of [22, 2222]) {
            const r = bash(`set -eu\n${pinnedKnownHosts("kh", v, port, `${HOST_KEY} ${v}`)}cat -- "$kh"\n`);
            assert.equal(r.stdout, `${port === 22 ? v : `[${v}]:${port}`} ${HOST_KEY} ${v}\n`, `value ${JSON.stringify(v)} (seed ${SEED})`);
        }
    }
});

test("ssh-key generator: the key's comment is exactly the one given", () => {
    for (const comment of [`rotation:app-key:g2 it's "$(echo PWNED)" é日本🔑 \\`, "-n x", nastyValue(next)]) {
        const key = bash(defaultGeneratorCommand("ssh-key", 32, comment));
        assert.equal(key.status, 0, key.stderr);
        const file = path.join(tmp, "gen-key");
        fs.writeFileSync(file, key.stdout, { mode: 0o600 });
        assert.equal(bash(`ssh-keygen -y -f ${shq(file)}`).stdout.replace(/^\S+ \S+ /, ""), `${comment}\n`, JSON.stringify(comment));
    }
});
