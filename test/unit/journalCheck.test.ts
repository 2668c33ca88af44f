// A consumer's log check in its unit's journal (lib/scripts/journal.ts), run
// with bash against a stand-in journalctl that keeps to the real one's
// contract where it bites (the e2e test test/e2e/journald.test.ts runs the
// real systemd-journald):
//   - `-u NAME` selects NAME.service, `-p P` that priority and above;
//   - without -q, no entry shown prints `-- No entries --` on stdout (every
//     output mode, as systemd before 250 did; 252 still does in short mode);
//   - `--after-cursor` skips the first entry of the selection at or after the
//     cursor's place, taking it for the cursor's own (systemd 252: when the
//     cursor's entry is not in the selection, a real entry is lost);
//   - no journal: exit 1.
// Then the rollout's check after the reload and Verification 3's count, from
// the anchor to the audit fields.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import type { JournalLogCheck } from "../../lib/logCheck";
import { journalPreflightSnippet } from "../../lib/scripts/journal";
import { logAnchorOf, logAnchorScript, logCountOf, logCountScript } from "../../lib/scripts/logCount";
import { problemsOf } from "../../lib/scripts/preflight";
import { VerificationError, noteLogAnchors, verifyConsumers } from "../../provider/authFailures";
import { logCheckScript, writeAndReloadScript } from "../../provider/rollout";
import type { RolloutSpec } from "../../provider/types";
import { LOCAL, gateOf, loggedConsumer } from "./verification3";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "journal-check-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const FAKE = `#!/usr/bin/env node
const fs = require("fs");
const file = process.env.FAKE_JOURNAL;
const a = process.argv.slice(2);
fs.appendFileSync(file + ".argv", JSON.stringify(a) + "\\n");
if (!fs.existsSync(file)) { process.stderr.write("No journal files were found.\\n"); process.exit(1); }
const P = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];
let quiet = false, unit, prio = 7, n, mode = "short", fields, after;
for (let i = 0; i < a.length; i++) {
  const x = a[i];
  if (x === "-q") quiet = true;
  else if (x === "--no-pager") {}
  else if (x === "-u") { unit = a[++i]; if (!/\\.[a-z]+$/.test(unit)) unit += ".service"; }
  else if (x === "-p") prio = P.indexOf(a[++i]);
  else if (x === "-n") n = Number(a[++i]);
  else if (x === "-o") mode = a[++i];
  else if (x.startsWith("--output-fields=")) fields = x.slice(16);
  else if (x.startsWith("--after-cursor=")) after = x.slice(15);
  else { process.stderr.write("fake journalctl: unexpected argument " + x + "\\n"); process.exit(2); }
}
const all = fs.readFileSync(file, "utf8").split("\\n").filter(Boolean).map((l) => JSON.parse(l));
const selected = (e) => (!unit || e.unit === unit) && e.priority <= prio;
let shown;
if (after !== undefined) {
  const at = all.findIndex((e) => e.cursor === after);
  if (at < 0) { process.stderr.write("Failed to seek to cursor: Invalid argument\\n"); process.exit(1); }
  shown = all.slice(at).filter(selected).slice(1);
} else {
  shown = all.filter(selected);
}
if (n !== undefined) shown = shown.slice(Math.max(0, shown.length - n));
let out = "";
for (const e of shown) {
  if (mode === "cat") out += e.message + "\\n";
  else if (mode === "export" && fields === "__CURSOR") out += "__CURSOR=" + e.cursor + "\\n__REALTIME_TIMESTAMP=1\\n\\n";
  else { process.stderr.write("fake journalctl: unexpected output mode " + mode + "\\n"); process.exit(2); }
}
if (!shown.length && !quiet) out += "-- No entries --\\n";
process.stdout.write(out);
`;
const bin = path.join(dir, "bin");
fs.mkdirSync(bin);
fs.writeFileSync(path.join(bin, "journalctl"), FAKE, { mode: 0o755 });
const PATH = `${bin}:${process.env.PATH}`;

interface Entry {
    unit: string;
    priority: number;
    message: string;
}
/** A journal of its own, and a way to log to it. */
function journal(name: string) {
    const file = path.join(dir, `${name}.jsonl`);
    let seq = 0;
    const log = (...entries: Entry[]) => {
        for (const e of entries) fs.appendFileSync(file, `${JSON.stringify({ cursor: `s=${name};i=${(seq += 1)}`, ...e })}\n`);
    };
    const env = { PATH, FAKE_JOURNAL: file, LC_ALL: "C.UTF-8" };
    const bash = (script: string) => spawnSync("bash", ["-c", script], { encoding: "utf8", env });
    const calls = () =>
        fs
            .readFileSync(`${file}.argv`, "utf8")
            .split("\n")
            .filter(Boolean)
            .map((l) => JSON.parse(l) as string[]);
    return { file, log, env, bash, calls };
}
const app1 = (priority: number, message: string): Entry => ({ unit: "app1.service", priority, message });
const other = (message: string): Entry => ({ unit: "other.service", priority: 3, message });

test("the cursor is the last entry of the check's own selection (unit and priority), so --after-cursor skips exactly it", () => {
    const j = journal("selection");
    j.log(app1(3, "AUTH_FAILED before the reload"), other("another unit's error, the journal's last entry"));
    const check: JournalLogCheck = { unit: "app1", priority: "err", pattern: "AUTH_FAILED", windowSeconds: 1 };
    const anchor = logAnchorOf(j.bash(logAnchorScript(check)).stdout);
    assert.equal(anchor, "s=selection;i=1", "app1's last error, not the journal's last entry");
    j.log(app1(6, "AUTH_FAILED at info: below the priority"), app1(3, "AUTH_FAILED after the reload"), other("AUTH_FAILED of another unit"));
    // A cursor of the whole journal (i=2) would have lost the one error after it: the real journalctl skips the first entry it finds.
    assert.deepEqual(logCountOf(j.bash(logCountScript(check, anchor!)).stdout), { count: 1, grepStatus: 0 });
    assert.deepEqual(logCountOf(j.bash(logCountScript(check, "s=selection;i=2")).stdout), { count: 0, grepStatus: 1 }, "the trap this avoids");
    for (const argv of j.calls()) {
        assert.ok(argv.includes("-q"), `every journalctl call has -q: ${argv.join(" ")}`);
        assert.deepEqual(argv.slice(argv.indexOf("-u"), argv.indexOf("-u") + 4), ["-u", "app1", "-p", "err"], argv.join(" "));
    }
});

test("-- No entries --: a unit with nothing logged counts 0 and passes its check (without -q both would count the notice as a line)", () => {
    const j = journal("empty");
    j.log(other("AUTH_FAILED elsewhere"));
    for (const check of [
        { unit: "app1", pattern: ".", windowSeconds: 1 },
        { unit: "app1", priority: "err", windowSeconds: 1 },
        { unit: "app1", priority: "err", pattern: "No entries|AUTH_FAILED", windowSeconds: 1 },
    ] as JournalLogCheck[]) {
        const at = JSON.stringify(check);
        const anchor = logAnchorOf(j.bash(logAnchorScript(check)).stdout);
        assert.equal(anchor, "", `${at}: no entry yet, an empty cursor`);
        assert.deepEqual(logCountOf(j.bash(logCountScript(check, anchor!)).stdout), { count: 0, grepStatus: 1 }, at);
        assert.equal(j.bash(logCheckScript(check, anchor!)).stdout, "LOGCHECK 1\n", at);
    }
    // The stand-in is faithful: without -q it does print the notice, and a pattern-free count would be 1.
    assert.equal(j.bash("journalctl -u app1 -o cat").stdout, "-- No entries --\n");
    const dropped = logCountScript({ unit: "app1", pattern: "." }, "").replaceAll("journalctl -q ", "journalctl ");
    assert.deepEqual(logCountOf(j.bash(dropped).stdout), { count: 1, grepStatus: 0 }, "the mistake the product must not make");
});

test("a priority alone counts entries, not lines; a pattern counts the message lines that match", () => {
    const j = journal("entries");
    j.log(app1(3, "an error before"), app1(6, "started"));
    const anchor = logAnchorOf(j.bash(logAnchorScript({ unit: "app1" })).stdout)!;
    const errors = logAnchorOf(j.bash(logAnchorScript({ unit: "app1", priority: "err" })).stdout)!;
    j.log(app1(3, "AUTH_FAILED first line\nsecond line\nAUTH_FAILED third"), app1(2, "crit, counted at err"), app1(4, "a warning, not counted"));
    assert.deepEqual(logCountOf(j.bash(logCountScript({ unit: "app1", priority: "err" }, errors)).stdout), { count: 2, grepStatus: 0 });
    assert.deepEqual(logCountOf(j.bash(logCountScript({ unit: "app1", pattern: "AUTH_FAILED" }, anchor)).stdout), { count: 2, grepStatus: 0 });
    assert.deepEqual(logCountOf(j.bash(logCountScript({ unit: "app1", pattern: "(" }, anchor)).stdout), { grepStatus: 2 }, "a bad pattern is no 0");
});

test("a journal that cannot be read is no 0: the count says journalctl's status, the check fails as not searched", () => {
    const j = journal("missing");
    const check: JournalLogCheck = { unit: "app1", pattern: "AUTH_FAILED", windowSeconds: 1 };
    assert.equal(logAnchorOf(j.bash(logAnchorScript(check)).stdout), "", "the anchor cannot tell");
    assert.deepEqual(logCountOf(j.bash(logCountScript(check, "")).stdout), { grepStatus: 1, journalStatus: 1 });
    const r = j.bash(logCheckScript(check, ""));
    assert.equal(r.stdout, "LOGCHECK 3\n");
    assert.match(r.stderr, /log check: could not read the journal of unit app1 \(journalctl exit 1\)/);
    assert.equal(logAnchorOf("LOGCURSOR s=1;i=2$(reboot)\n"), undefined, "a cursor is only what journalctl prints");
});

test("a user who may not read the system journal is no 0 (journalctl would show it only its own entries); pre-flight names it, and a host without journalctl", () => {
    const j = journal("reader");
    j.log(app1(3, "AUTH_FAILED"));
    const alice = path.join(dir, "alice");
    fs.mkdirSync(alice);
    fs.writeFileSync(path.join(alice, "id"), `#!/bin/bash\ncase "$*" in -u) echo 1000 ;; -un) echo alice ;; -nG) echo alice users ;; *) exit 1 ;; esac\n`, {
        mode: 0o755,
    });
    const asAlice = (script: string) => spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...j.env, PATH: `${alice}:${j.env.PATH}` } });
    const check: JournalLogCheck = { unit: "app1", pattern: "AUTH_FAILED", windowSeconds: 1 };
    assert.deepEqual(logCountOf(asAlice(logCountScript(check, "")).stdout), { grepStatus: 1, journalStatus: 77 });
    const r = asAlice(logCheckScript(check, ""));
    assert.equal(r.stdout, "LOGCHECK 3\n");
    assert.match(r.stderr, /alice may not read the system journal \(not root, not in systemd-journal, adm or wheel\)/);
    assert.deepEqual(logCountOf(j.bash(logCountScript(check, "")).stdout), { count: 1, grepStatus: 0 }, "root reads it");

    const preflight = (env: NodeJS.ProcessEnv) =>
        problemsOf(
            spawnSync("/bin/bash", ["-c", `problem() { printf 'PREFLIGHT %s\\n' "$*"; }\n${journalPreflightSnippet(check)}`], { encoding: "utf8", env }).stdout,
        );
    assert.deepEqual(preflight(j.env), [], "journalctl there, root reads it");
    assert.deepEqual(preflight({ ...j.env, PATH: `${alice}:${j.env.PATH}` }), [
        "alice may not read the system journal (not root, not in systemd-journal, adm or wheel): the log check reads the journal of unit app1",
    ]);
    const bare = path.join(dir, "bare");
    fs.mkdirSync(bare);
    for (const tool of ["id", "tr", "grep"])
        fs.symlinkSync(spawnSync("bash", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim(), path.join(bare, tool));
    assert.deepEqual(preflight({ ...j.env, PATH: bare }), ["journalctl is not found on this host: the log check reads the journal of unit app1"]);
});

test("rollout: the cursor is noted before the reload, and an auth failure the reload logs fails the check after its window", () => {
    const j = journal("rollout");
    j.log(app1(3, "AUTH_FAILED long before"));
    const entry = (m: string) => JSON.stringify({ cursor: `s=rollout;i=${m}`, unit: "app1.service", priority: 3, message: m });
    const spec = (reload: string): RolloutSpec => ({
        label: "app-redis → consumer web-1",
        target: LOCAL,
        health: { command: "true" },
        retries: 0,
        retryDelaySeconds: 0,
        timeoutSeconds: 5,
        generation: 2,
        configPath: path.join(dir, "unused.env"),
        write: { format: "env-line", key: "K" },
        reload,
        logCheck: { unit: "app1", pattern: "AUTH_FAILED", windowSeconds: 1 },
    });
    const run = (reload: string) => {
        const r = j.bash(writeAndReloadScript(spec(reload), false));
        return { ...r, markers: Object.fromEntries([...r.stdout.matchAll(/^([A-Z]+) (.*)$/gm)].map((m) => [m[1], m[2]])) };
    };
    const clean = run(`printf '%s\\n' ${JSON.stringify(entry("reloaded"))} >> "$FAKE_JOURNAL"`);
    assert.deepEqual(clean.markers, { LOGCURSOR: "s=rollout;i=1", RELOAD: "0", HEALTH: "ok", LOGCHECK: "1" }, clean.stderr);
    const started = Date.now();
    const failed = run(`printf '%s\\n' ${JSON.stringify(entry("AUTH_FAILED WRONGPASS after the reload"))} >> "$FAKE_JOURNAL"`);
    assert.deepEqual(failed.markers, { LOGCURSOR: "s=rollout;i=reloaded", RELOAD: "0", HEALTH: "ok", LOGCHECK: "0" }, failed.stderr);
    assert.match(failed.stderr, /log check: the journal of unit app1 shows 1 auth failure\(s\) after the reload/);
    assert.ok(Date.now() - started >= 1000, "the check waited for the window after the reload");
});

test("Verification 3 in a journal: the gate's cursor, each consumer's count (errors at a priority, auth failures by a pattern), named, in the audit fields", async () => {
    const j = journal("verify");
    const saved = { PATH: process.env.PATH, FAKE_JOURNAL: process.env.FAKE_JOURNAL };
    process.env.PATH = j.env.PATH;
    process.env.FAKE_JOURNAL = j.file;
    after(() => Object.assign(process.env, saved));
    j.log(app1(3, "AUTH_FAILED before the revocation"), { unit: "app2.service", priority: 3, message: "an error before the revocation" });
    const run = { stack: "dev", secret: "app-redis", generation: 4 };
    const checks = {
        "web-1": { unit: "app1", pattern: "AUTH_FAILED", windowSeconds: 1 },
        "web-2": { unit: "app2", priority: "err", windowSeconds: 1 },
    } satisfies Record<string, JournalLogCheck>;
    await noteLogAnchors(gateOf(dir, run, checks));
    j.log(app1(6, "served"), { unit: "app2.service", priority: 3, message: "lost the database" }, { unit: "app2.service", priority: 6, message: "retrying" });
    const consumers = Object.entries(checks).map(([name, logCheck]) => loggedConsumer(name, logCheck));
    await assert.rejects(verifyConsumers(consumers, "app-redis: all 2 consumers healthy after revocation", run, []), (e: Error) => {
        assert.ok(e instanceof VerificationError);
        assert.equal(
            e.message,
            "app-redis: all 2 consumers healthy after revocation: 1 of 2 consumers logged errors after the revocation: " +
                "app-redis → consumer web-2: 1 error(s) in the journal of unit app2 (priority err or above) since the revocation. " +
                "Something there still uses the revoked secret (or its log could not be searched); nothing is undone: the new secret stays current and the old one revoked",
        );
        assert.deepEqual(e.auditFields, { authFailures: "web-1=0 web-2=1", authFailuresInJournal: "web-1 web-2" });
        return true;
    });
});
