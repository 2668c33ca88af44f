// PostgreSQL role password rotation: a new login role per generation, given
// to three consumer apps (KEY=value config) and pgbouncer (whole-file template).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { assertAudit, assertPreviewPlan, assertRevokeAfterEveryConsumer, assertSucceeded, remember } from "./checks";
import { consumerState, hosts, lab, labCtl, pgbouncerUser, pgLoginOk, postgresStack, sha256, storeHas, storeValue, Workspace } from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const SECRET = "app-pg";
let ws: Workspace;

before(() => {
    labCtl("up", "--reset");
    ws = new Workspace("postgres");
});

after(() => {
    for (const h of hosts()) labCtl("fail-health", h.name, "off");
});

test("postgres: every consumer moves to login app_g<N> before the previous login is disabled", async () => {
    for (const generation of [1, 2]) {
        const old = storeValue(SECRET);
        const oldLogin = generation === 1 ? lab().postgres.initialLogin : `app_g${generation - 1}`;
        remember(old);
        assert.equal(pgLoginOk(oldLogin, old), true, `${oldLogin} works before the rotation`);
        ws.setConfig(postgresStack(generation));
        const consumers = [...hosts().map((h) => `pg-${h.name}`), "pgbouncer-host3"];
        const preview = await ws.pulumi(["preview", "--json"]);
        assertSucceeded(preview, "preview");
        assertPreviewPlan(preview.stdout, SECRET, consumers, generation);

        const up = await ws.pulumi(["up", "--yes", "--skip-preview"], { sampleProcesses: true });
        assertSucceeded(up, `postgres rotation g${generation}`);
        console.log(`# postgres rotation g${generation} across ${consumers.length} consumers: ${up.seconds.toFixed(1)}s wall`);
        assertRevokeAfterEveryConsumer(up, SECRET, consumers);

        const fresh = storeValue(SECRET);
        remember(fresh);
        const login = `app_g${generation}`;
        assert.notEqual(fresh, old);
        assert.equal(storeHas(SECRET, "staged"), false);
        assert.equal(pgLoginOk(login, fresh), true, `${login} logs in with the new password`);
        assert.equal(pgLoginOk(oldLogin, old), false, `${oldLogin} is disabled`);
        for (const h of hosts()) {
            const s = await consumerState(h, "pg");
            assert.equal(s.fingerprint, sha256(fresh), `${h.name} holds the new password`);
            assert.ok(s.healthy, `${h.name} is healthy`);
            const env = fs.readFileSync(path.join(h.etcDir, "pg.env"), "utf8");
            assert.match(env, new RegExp(`^PGUSER=${login}$`, "m"));
        }
        assert.equal(pgbouncerUser(), login, "pgbouncer logs in to PostgreSQL with the new login");
        const ini = path.join(hosts()[2].etcDir, "pgbouncer.ini");
        assert.equal(fs.statSync(ini).uid, fs.statSync(path.join(hosts()[2].etcDir, "pgbouncer-users.txt")).uid, "pgbouncer.ini keeps its owner");
        assert.equal(fs.statSync(ini).mode & 0o777, 0o600);
        assertAudit(ws, SECRET, generation, consumers.length);
    }
});

test("postgres: no secret leaked", () => {
    scanForLeaks(ws);
});
