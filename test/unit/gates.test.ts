// The program's own gates (lib/gates.ts) with real ssh-keygen signatures:
// a moved generation of a ceremony secret runs only with a request whose
// signatures verify; text typed into the config is never a witness; a closed
// window refuses without leave for this very generation.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { envAfter } from "../../cli/approve";
import { approveRequest, createRequest, planDigest, readRequest } from "../../lib/ceremony";
import { parseEnvironment } from "../../lib/config";
import type { EnvironmentConfig } from "../../lib/configSchema";
import { RotationRefusedError } from "../../lib/errors";
import { enforceGates, startedIn } from "../../lib/gates";
import { secretRotation } from "../../lib/config";
import type { ResolvedRotation } from "../../adapters/resolve";
import { rawEnvironment } from "./harness";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gates-"));
const keyOf = (who: string) => {
    const k = path.join(dir, who);
    assert.equal(spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", who, "-f", k]).status, 0);
    return k;
};
const [alice, bob] = ["alice", "bob"].map(keyOf);
const pub = (k: string) => fs.readFileSync(`${k}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
fs.writeFileSync(path.join(dir, "allowed_signers"), `alice@team ${pub(alice)}\nbob@team ${pub(bob)}\n`);

const NAME = "app-redis";
const STACK = "prod";
const base = parseEnvironment(STACK, rawEnvironment());
/** The environment with a required ceremony (requests in `dir`) and `NAME` at generation 3. */
function ceremonyEnv(f?: (e: EnvironmentConfig) => void): EnvironmentConfig {
    const e = envAfter(base, { [NAME]: { generation: 3, mode: "rotate", reason: "incident", note: "INC-7" } });
    e.ceremony = { required: true, approvers: "allowed_signers", validFor: "1h", dir: "requests" };
    e.auditLog = path.join(dir, "audit.log");
    f?.(e);
    return e;
}
const rotationsOf = (e: EnvironmentConfig, committed = 2): ResolvedRotation[] =>
    Object.keys(e.secrets).map((n) => ({ config: secretRotation(e, n), consumerHostKeys: {}, committed: n === NAME ? committed : e.secrets[n].generation }));
const gates = (e: EnvironmentConfig, opts: { committed?: number; now?: Date } = {}) => {
    const rotations = rotationsOf(e, opts.committed);
    enforceGates({ stack: STACK, env: e, rotations, project: dir, now: opts.now });
    return rotations.find((r) => r.config.secret.name === NAME)!.config;
};
const refused = (f: () => unknown, why: RegExp) =>
    assert.throws(
        f,
        (e: Error) =>
            e instanceof RotationRefusedError &&
            why.test(e.message) &&
            e.message.includes(`stack ${STACK}, secret ${NAME} generation `) &&
            /Nothing was registered/.test(e.message),
        why.source,
    );

/** A request for the plan of `e`, signed by `by`, approved by `approver` when given. */
function request(e: EnvironmentConfig, by = alice, approver?: string): string {
    const digest = planDigest(STACK, e, [NAME]);
    const { request: r } = createRequest({
        dir: path.join(dir, "requests"),
        stack: STACK,
        digest,
        validFor: "1h",
        approvers: [path.join(dir, "allowed_signers")],
        key: by,
        secrets: [{ name: NAME, generation: 3, consumers: e.secrets[NAME].consumers.map((c) => c.name), reason: "incident", note: "INC-7" }],
    });
    if (approver)
        approveRequest(readRequest(path.join(dir, "requests"), r.id), { stack: STACK, digest, approvers: [path.join(dir, "allowed_signers")], key: approver });
    return r.id;
}

test("a moved generation of a ceremony secret without an approval is refused, naming what to run", () => {
    refused(() => gates(ceremonyEnv()), /needs a second person's approval.*bin\/rotate start --stack prod --secret app-redis --yes/);
    // The same generation once committed (revocation started) has nothing left to approve: a resume goes on.
    assert.equal(gates(ceremonyEnv(), { committed: 3 }).approval, undefined);
});

test("an approval typed into the config is no approval: an unknown request, or one never signed by a second person", () => {
    refused(
        () => gates(ceremonyEnv((e) => (e.secrets[NAME].approval = { request: "forged-0001", requester: "alice@team", approver: "bob@team" }))),
        /no request forged-0001/,
    );
    const unapproved = request(ceremonyEnv());
    refused(
        () => gates(ceremonyEnv((e) => (e.secrets[NAME].approval = { request: unapproved, requester: "alice@team", approver: "bob@team" }))),
        /not approved yet/,
    );
});

test("an approved request gives the witnesses from its signatures, never from the config's text", () => {
    const id = request(ceremonyEnv(), alice, bob);
    const config = gates(ceremonyEnv((e) => (e.secrets[NAME].approval = { request: id, requester: "mallory@team", approver: "eve@team" })));
    assert.deepEqual(config.approval, { request: id, requester: "alice@team", approver: "bob@team" });
});

test("an approval is for exactly one plan, generation and time", () => {
    const id = request(ceremonyEnv(), alice, bob);
    const pointing = (f?: (e: EnvironmentConfig) => void) =>
        ceremonyEnv((e) => {
            e.secrets[NAME].approval = { request: id };
            f?.(e);
        });
    refused(() => gates(pointing((e) => e.secrets[NAME].consumers.pop())), /another plan/);
    refused(
        () =>
            gates(
                pointing((e) => (e.secrets[NAME].generation = 4)),
                { committed: 3 },
            ),
        /for generation 3 of app-redis, the config says 4/,
    );
    const later = new Date(Date.now() + 2 * 3600_000);
    refused(() => gates(pointing(), { now: later }), /expired/);
    // A rotation that started within its approval's time may be resumed after it expired.
    fs.writeFileSync(
        path.join(dir, "audit.log"),
        `${JSON.stringify({ stack: STACK, secret: NAME, generation: 3, mode: "rotate", phase: "staged", outcome: "ok" })}\n`,
    );
    try {
        assert.equal(gates(pointing(), { now: later }).approval?.approver, "bob@team");
    } finally {
        fs.rmSync(path.join(dir, "audit.log"));
    }
});

test("a closed window refuses a moved generation unless leave names this generation; an open one or a started rotation goes on", () => {
    const sunday = new Date("2026-12-06T12:00:00Z");
    const windowed = (f?: (e: EnvironmentConfig) => void) => {
        const e = envAfter(base, { [NAME]: { generation: 3, mode: "rotate" } });
        e.auditLog = path.join(dir, "window-audit.log");
        e.secrets[NAME].window = { days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00", timeZone: "UTC" };
        f?.(e);
        return e;
    };
    refused(
        () => gates(windowed(), { now: sunday }),
        /outside its rotation window \(mon,tue,wed,thu,fri 09:00-17:00 UTC; it next opens 2026-12-07T09:00:00.000Z\).*outsideWindow: \{generation: 3/,
    );
    refused(
        () =>
            gates(
                windowed((e) => (e.secrets[NAME].outsideWindow = { generation: 2, by: "alice", why: "old leave" })),
                { now: sunday },
            ),
        /outside its rotation window/,
    );
    refused(
        () =>
            gates(
                windowed((e) => (e.secrets[NAME].outsideWindow = true)),
                { now: sunday },
            ),
        /outside its rotation window/,
    );
    const leave = gates(
        windowed((e) => (e.secrets[NAME].outsideWindow = { generation: 3, by: "alice", why: "INC-7 key leaked" })),
        { now: sunday },
    );
    assert.deepEqual(leave.windowOverride, { generation: 3, by: "alice", why: "INC-7 key leaked" });
    assert.doesNotThrow(() => gates(windowed(), { now: new Date("2026-12-07T10:00:00Z") }));
    assert.doesNotThrow(() => gates(windowed(), { now: sunday, committed: 3 }), "committed: nothing to gate");
});

test("a rotation counts as started only from a step past the pre-flight that went through", () => {
    const line = (l: Record<string, unknown>) => ({ stack: STACK, secret: NAME, generation: 3, mode: "rotate", outcome: "ok", phase: "generated", ...l });
    assert.equal(startedIn([line({})], STACK, NAME, 3), true);
    for (const other of [{ phase: "preflight" }, { outcome: "failed" }, { generation: 2 }, { mode: "rollback" }, { stack: "dev" }, { secret: "app-pg" }]) {
        assert.equal(startedIn([line(other)], STACK, NAME, 3), false, JSON.stringify(other));
    }
});
