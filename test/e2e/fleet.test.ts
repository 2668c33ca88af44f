// Fifty consumers through the real engine (config files on the lab's three
// hosts, a health command that really authenticates to Redis, a log check),
// rolled out in batches (rollout.batch "auto": 13 resources of up to 4): the
// plan lists every consumer, the engine's event sequence proves that the
// revocation started after every batch ended, a batch where one consumer
// failed keeps the others and its resume deploys only that one, and a
// rotation killed with kill -9 mid-rollout completes after unlock and resume.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, test } from "node:test";
import yaml from "js-yaml";
import {
    changedSteps,
    consumerEntry,
    currentSecret,
    fleetOf,
    hosts,
    labCtl,
    localPath,
    rolloutResources,
    ROOT,
    setupFleet,
    stackConfig,
    stepTimeline,
    storeFile,
    urnName,
    verify,
    Workspace,
} from "../../lab/driver";
import { assertPreviewPlan, assertRevokeAfterEveryConsumer, assertSucceeded, remember } from "./checks";
import { scanForLeaks } from "./leaks";
import { STEP_TYPE } from "../../provider/types";

/** Processes a run of this workspace starts: program, language host, provider, SSH masters and agents. */
function runProcesses(): string[] {
    const r = spawnSync("pgrep", ["-af", `${ws.dir}/|rotation-ssh-|pulumi-language-nodejs`], { encoding: "utf8" });
    return r.stdout.split("\n").filter((l) => l.trim() && !l.includes("pgrep"));
}

const fleet = fleetOf(50);
const names = Array.from({ length: fleet.count }, (_, i) => `${fleet.user}-${i}`);
let ws: Workspace;

/** The fleet's inventory file (rotation:inventoryFile). */
const inventory = () => path.join(ws.dir, "inventory", "fleet.yaml");
/** Writes the fleet's consumers and points the stack at them, at generation `g` (the driver turns the file into the stack's inventory file). */
const writeInventory = (entries: Record<string, unknown>[], g = 0) => {
    fs.writeFileSync(inventory(), yaml.dump(entries, { lineWidth: -1 }));
    ws.setConfig({ ...stackConfig(fleet, g), consumersFile: inventory() });
};

before(() => {
    labCtl("up", "--reset");
    setupFleet(fleet);
    ws = new Workspace("fleet");
    fs.mkdirSync(path.dirname(inventory()), { recursive: true });
    writeInventory(names.map((_, i) => consumerEntry(fleet, i)));
});

test("50 consumers: preview lists each rollout; the revocation starts only after all 50 ended (event sequence)", async () => {
    const old = currentSecret(fleet);
    ws.patchConfig({ generation: 1 });
    const preview = await ws.pulumi(["preview", "--json"]);
    assertSucceeded(preview, "preview");
    assertPreviewPlan(preview.stdout, fleet.secret, names, 1);

    const up = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
    assertSucceeded(up, "up");
    console.log(`# fleet of ${fleet.count}: first rotation ${up.seconds.toFixed(1)}s wall`);
    assertRevokeAfterEveryConsumer(up, fleet.secret, names);
    assert.equal(verify(fleet, old), "ok");
    remember(old, currentSecret(fleet));

    // The steady state: a new generation updates every step in place, nothing is replaced or deleted.
    ws.patchConfig({ generation: 2 });
    const g2 = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(g2, "g2");
    assertRevokeAfterEveryConsumer(g2, fleet.secret, names);
    const ops = g2.events
        .map((e) => e.resourcePreEvent?.metadata)
        .filter((m) => m && m.type === STEP_TYPE)
        .map((m) => m!.op);
    const batches = new Set(rolloutResources(fleet.secret, names).values());
    assert.equal(batches.size, 13, "50 consumers roll out by 13 batch resources");
    assert.ok(ops.filter((o) => o === "update").length >= batches.size, "every batch ran as an in-place update");
    // Each consumer has its own audit line, as its own step would write it.
    const verified = ws.auditLines().filter((l) => l.generation === 2 && l.phase === "consumer-verified" && l.outcome === "ok");
    assert.deepEqual(verified.map((l) => l.consumer).sort(), [...names].sort(), "one consumer-verified line per consumer");
    assert.deepEqual(
        ops.filter((o) => o === "replace" || o === "delete-replaced" || o === "create-replacement"),
        [],
        "no step was replaced",
    );
    remember(currentSecret(fleet));
});

test("50 consumers: kill -9 mid-rollout, unlock and resume completes; no revocation before every consumer", async () => {
    const old = currentSecret(fleet);
    ws.patchConfig({ generation: 3 });
    const before = runProcesses();
    let done = 0;
    let killed = false;
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"], {
        onEvent: (e, child) => {
            const m = e.resOutputsEvent?.metadata;
            if (m && urnName(m.urn).startsWith(`${fleet.secret}-rollouts-`) && m.op === "update") done++;
            if (!killed && done >= 2) {
                killed = true;
                process.kill(-child.pid!, "SIGKILL");
            }
        },
    });
    assert.ok(killed, "the engine was killed after 2 batches ended");
    assert.notEqual(r.code, 0);
    // The step provider and the language host (each in a process group of its
    // own) end with the engine, and with them the program, the scripts and the
    // SSH connections: nothing of the killed run goes on unseen.
    const left = async () => {
        let now: string[] = [];
        for (let i = 0; i < 30; i++) {
            now = runProcesses().filter((p) => !before.includes(p));
            if (!now.length) return "";
            await new Promise((res) => setTimeout(res, 100));
        }
        return now.join("\n");
    };
    assert.equal(await left(), "", "no process of the killed run is left after 3 s");
    assert.equal(stepTimeline(r.events, `${fleet.secret}-revoke`).start, undefined, "the killed run revoked nothing");
    const staged = fs.readFileSync(storeFile(fleet, "staged"), "utf8");
    remember(staged);

    const unlock = spawnSync(path.join(ROOT, "bin", "rotate"), ["unlock", "--stack", ws.stack], { cwd: ROOT, env: ws.env, encoding: "utf8" });
    assert.equal(unlock.status, 0, unlock.stderr);
    const again = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(again, "resume after the kill");
    const revoke = stepTimeline(again.events, `${fleet.secret}-revoke`);
    for (const [c, resource] of rolloutResources(fleet.secret, names)) {
        const t = stepTimeline(again.events, resource);
        if (t.start !== undefined) assert.ok(t.end! < revoke.start!, `${c}'s rollout (${resource}) ended before the revocation`);
    }
    assert.equal(currentSecret(fleet), staged, "the rotation finished with the secret staged before the kill");
    assert.equal(verify(fleet, old), "ok");
    for (const h of hosts()) {
        const baks = fs.readdirSync(path.join(h.etcDir, "fleet")).filter((f) => f.endsWith(".env.bak"));
        assert.ok(baks.length >= Math.floor(fleet.count / hosts().length), `${h.name} keeps a .bak per consumer`);
    }
});

test("50 consumers: one consumer of a batch fails; nothing is revoked, its batch keeps the others, and the resume deploys only that one", async () => {
    const old = currentSecret(fleet);
    // The second consumer of batch 2 gets a reload that fails (the pre-flight cannot know it will).
    const broken = 5;
    const entries = names.map((_, i) => consumerEntry(fleet, i));
    writeInventory(
        entries.map((e, i) => (i === broken ? { ...e, reload: "echo 'reload refused' >&2; false" } : e)),
        4,
    );
    const r = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assert.notEqual(r.code, 0, "the update failed");
    const out = `${r.stdout}\n${r.stderr}`;
    assert.match(
        out,
        new RegExp(`${fleet.secret} → consumer ${names[broken]}: reload: exited with code 1 .*reload refused`),
        "the error names the consumer and its step",
    );
    assert.match(out, /1 of 4 consumers failed; the other 3 hold it/, "the batch says how many failed and that the others are kept");
    assert.equal(stepTimeline(r.events, `${fleet.secret}-revoke`).start, undefined, "nothing was revoked");
    assert.equal(stepTimeline(r.events, `${fleet.secret}-gate`).start, undefined, "the gate did not run");
    const lines = () => ws.auditLines().filter((l) => l.generation === 4 && l.phase === "consumer-verified");
    assert.deepEqual(
        lines()
            .filter((l) => l.outcome === "failed")
            .map((l) => l.consumer),
        [names[broken]],
    );
    assert.equal(lines().filter((l) => l.outcome === "ok").length, names.length - 1, "every other consumer was deployed");
    const staged = fs.readFileSync(storeFile(fleet, "staged"), "utf8");
    for (const i of [4, 6, 7]) assert.match(fs.readFileSync(localPath(fleet, i), "utf8"), new RegExp(`=${staged}$`, "m"), `${names[i]} holds g4`);

    writeInventory(entries, 4);
    const again = await ws.pulumi(["up", "--yes", "--skip-preview"]);
    assertSucceeded(again, "resume");
    const ran = changedSteps(again.events).filter((n) => n.includes("-rollout"));
    assert.deepEqual(ran, [`${rolloutResources(fleet.secret, names).get(names[broken])}:update`], "only the failed consumer's batch ran again");
    const ok = lines().filter((l) => l.outcome === "ok");
    assert.equal(ok.length, names.length, "the resume deployed only the failed consumer: one ok line per consumer in all");
    assert.equal(new Set(ok.map((l) => l.consumer)).size, names.length);
    const batch = stepTimeline(again.events, rolloutResources(fleet.secret, names).get(names[broken])!);
    const revoke = stepTimeline(again.events, `${fleet.secret}-revoke`);
    assert.ok(batch.end! < revoke.start!, `the resumed batch ended (seq ${batch.end}) before the revocation started (seq ${revoke.start})`);
    assert.equal(verify(fleet, old), "ok");
    remember(currentSecret(fleet));
});

test("no secret leaked anywhere in the fleet's runs", () => {
    scanForLeaks(ws);
});
