// Fifty consumers through the real engine (config files on the lab's three
// hosts, a health command that really authenticates to Redis, a log check):
// the plan lists every consumer, the engine's event sequence proves that the
// revocation started after all fifty rollouts ended, and a rotation killed
// with kill -9 mid-rollout completes after unlock and resume.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, test } from "node:test";
import yaml from "js-yaml";
import {
    consumerEntry,
    currentSecret,
    fleetOf,
    hosts,
    labCtl,
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

before(() => {
    labCtl("up", "--reset");
    setupFleet(fleet);
    ws = new Workspace("fleet");
    const file = path.join(ws.dir, "inventory", "fleet.yaml");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(
        file,
        yaml.dump(
            names.map((_, i) => consumerEntry(fleet, i)),
            { lineWidth: -1 },
        ),
    );
    ws.setConfig({ ...stackConfig(fleet, 0), consumersFile: file });
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
    assert.ok(ops.filter((o) => o === "update").length >= fleet.count, "every rollout ran as an in-place update");
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
            if (m && urnName(m.urn).startsWith(`${fleet.secret}-rollout-`) && m.op === "update") done++;
            if (!killed && done >= 10) {
                killed = true;
                process.kill(-child.pid!, "SIGKILL");
            }
        },
    });
    assert.ok(killed, "the engine was killed after 10 rollouts ended");
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
    for (const c of names) {
        const t = stepTimeline(again.events, `${fleet.secret}-rollout-${c}`);
        if (t.start !== undefined) assert.ok(t.end! < revoke.start!, `${c}'s rollout ended before the revocation`);
    }
    assert.equal(currentSecret(fleet), staged, "the rotation finished with the secret staged before the kill");
    assert.equal(verify(fleet, old), "ok");
    for (const h of hosts()) {
        const baks = fs.readdirSync(path.join(h.etcDir, "fleet")).filter((f) => f.endsWith(".env.bak"));
        assert.ok(baks.length >= Math.floor(fleet.count / hosts().length), `${h.name} keeps a .bak per consumer`);
    }
});

test("no secret leaked anywhere in the fleet's runs", () => {
    scanForLeaks(ws);
});
