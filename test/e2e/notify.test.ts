// Unattended rotation that escalates, on the lab: `bin/rotate run-due` over
// stacks of one project, each telling the lab's notification receiver
// (lab/notifyrx: a signed webhook, a Slack incoming webhook and PagerDuty's
// Events API v2, which the lab cannot reach) what the runbook says people
// must hear. A consumer host that goes down mid-rollout in one stack is one
// PagerDuty trigger and one signed webhook naming the secret and the
// consumer, while the other stack completes and says so; the fix and the
// resume resolve the same incident. A receiver that answers 500 three times
// and then hangs changes nothing in the rotation's time, and its failures are
// in the audit log and the report. A due rotation that needs a ceremony
// records its request, says so, and run-due exits 6 while the other stack
// rotates. The leak scan covers every payload the receiver got.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, test } from "node:test";
import yaml from "js-yaml";
import { assertAuditChain, remember } from "./checks";
import { captured, LAB_DIR, lab, labCtl, postgresStack, ROOT, type RunResult, redisStack, sshKeyStack, storeValue, Workspace } from "../../lab/driver";
import { scanForLeaks } from "./leaks";

const dev = (yaml.load(fs.readFileSync(path.join(ROOT, "stacks/templates/Pulumi.dev.yaml"), "utf8")) as { config: Record<string, any> }).config;
let alpha: Workspace;
let beta: Workspace;
let gamma: Workspace;
let delta: Workspace;
/** Beta's first rotation (receiver healthy), from run-due's document: the time the faulty receiver must not change. */
let baselineSeconds = 0;

const rx = () => lab().notifyrx;
const SETTLE = 8;
const DELIVERY = { attempts: 4, timeoutSeconds: 1, backoffSeconds: 0.2, settleSeconds: SETTLE };
const dedup = "secret-rotation/alpha/app-redis/g1";

interface Received {
    sink: string;
    path: string;
    headers: Record<string, string>;
    body: string;
    answer: string;
    status: number | null;
    signatureValid?: boolean;
}

const received = (): Received[] =>
    fs.existsSync(rx().deliveries)
        ? fs
              .readFileSync(rx().deliveries, "utf8")
              .split("\n")
              .filter(Boolean)
              .map((l) => JSON.parse(l))
        : [];
const doc = (d: Received) => JSON.parse(d.body);
const out = (r: RunResult) => r.stdout + r.stderr;
/** The webhook deliveries of one event, answered. */
const hooks = (got: Received[], event: string) => got.filter((d) => d.sink === "webhook" && d.headers["x-rotation-event"] === event && d.status === 200);
const pagerActions = (got: Received[], action: string) => got.filter((d) => d.sink === "pagerduty" && doc(d).event_action === action && d.status === 202);
const changes = (got: Received[]) => got.filter((d) => d.sink === "pagerduty-change" && d.status === 202);
const slacks = (got: Received[], text: RegExp) => got.filter((d) => d.sink === "slack" && d.status === 200 && text.test(doc(d).text));

const notifyConfig = () => ({
    sinks: {
        hook: { kind: "webhook", urlFile: rx().webhookUrlFile, keyFile: rx().webhookKeyFile },
        chat: { kind: "slack", urlFile: rx().slackUrlFile },
        pager: { kind: "pagerduty", routingKeyFile: rx().pagerdutyKeyFile, urlFile: rx().pagerdutyUrlFile },
    },
    delivery: DELIVERY,
});

/** host2's reload in alpha waits for this file: the run is caught mid-rollout there. */
const releaseFile = () => path.join(alpha.dir, "held-reload.release");
const heldReload = (reload: string) => `timeout 100 sh -c 'until [ -e "$1" ]; do sleep 0.05; done' held-reload '${releaseFile()}' && ${reload}`;
const heldNow = () => spawnSync("pgrep", ["-f", `held-reload ${releaseFile()}`]).status === 0;

async function until(what: string, ok: () => boolean, seconds: number): Promise<void> {
    const end = Date.now() + seconds * 1000;
    while (!ok()) {
        assert.ok(Date.now() < end, `${what} within ${seconds}s`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

const due = (flat: Record<string, any>): Record<string, any> => ({ ...flat, secret: { ...flat.secret, schedule: "1d" } });

before(() => {
    labCtl("up", "--reset");
    alpha = new Workspace("notify", "alpha");
    beta = new Workspace("notify", "beta", { project: alpha });
    gamma = new Workspace("notify", "gamma", { project: alpha });
    delta = new Workspace("notify", "delta", { project: alpha });
    // The dev stack's token entry names the lab by relative paths (.lab/...), as the project's own stack does.
    fs.symlinkSync(LAB_DIR, path.join(alpha.dir, ".lab"));
    const notify = notifyConfig();

    const redis = due(redisStack(0));
    redis.consumers = (redis.consumers as Record<string, any>[]).map((c, i) => (i === 1 ? { ...c, reload: heldReload(c.reload) } : c));
    alpha.setSecrets([redis], { notify });

    // Beta: the lab's API token on host1 and host3 (host2 goes down in alpha's run).
    const token = structuredClone(dev["rotation:secrets"]["app-token"]);
    token.schedule = "1d";
    token.consumers = token.consumers.filter((c: { host: string }) => c.host !== "host2");
    beta.setSecrets([], { hosts: dev["rotation:hosts"], secrets: { "app-token": token }, notify });

    // Gamma: a ceremony; the unattended machine signs its request with its own key (ROTATION_SIGNING_KEY).
    const keys = path.join(alpha.dir, "keys");
    fs.mkdirSync(keys);
    assert.equal(spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "rotation-bot", "-f", path.join(keys, "bot")]).status, 0);
    const pub = fs.readFileSync(path.join(keys, "bot.pub"), "utf8").split(" ").slice(0, 2).join(" ");
    fs.writeFileSync(path.join(keys, "allowed_signers"), `bot@team ${pub}\n`);
    alpha.env.ROTATION_SIGNING_KEY = path.join(keys, "bot");
    gamma.setSecrets([due(postgresStack(0))], { ceremony: { required: true, approvers: "keys/allowed_signers" }, notify });

    delta.setSecrets([due(sshKeyStack(0))], { notify });
    remember(storeValue("app-redis"), storeValue("app-token"), storeValue("app-pg"), storeValue("app-deploy-key"));
});

after(() => {
    fs.writeFileSync(releaseFile(), "");
    labCtl("notify-faults");
});

test("run-due over two stacks: host2 goes down mid-rollout in alpha: one trigger and one signed webhook name secret and consumer; beta completes and says so", async () => {
    const mark = received().length;
    const run = alpha.rotateProject(["run-due", "--stacks", "alpha,beta", "--parallel", "2", "--yes", "--json"]);
    await until("host2's reload is held mid-rollout", heldNow, 180);
    labCtl("halt-host", "host2");
    const r = await run;
    console.log(`figures: run-due over alpha and beta ${r.seconds}s`);
    assert.equal(r.code, 1, `run-due exits 1 (a stack failed before revocation)\n${out(r)}`);
    const summary = JSON.parse(r.stdout);
    const by = Object.fromEntries(summary.stacks.map((s: { stack: string }) => [s.stack, s]));
    assert.equal(by.alpha.exitCode, 1, out(r));
    assert.equal(by.beta.exitCode, 0, out(r));
    assert.equal(by.beta.outcome, "succeeded");
    baselineSeconds = by.beta.rotationSeconds;
    assert.ok(baselineSeconds > 0, "beta's rotation time is known");
    assert.match(r.stderr, /\[alpha\] .*redis-host2/, "alpha's progress is shown, prefixed");

    const got = received().slice(mark);
    const triggers = pagerActions(got, "trigger");
    assert.equal(triggers.length, 1, `one trigger: ${JSON.stringify(triggers.map(doc))}`);
    const t = doc(triggers[0]);
    assert.equal(t.dedup_key, dedup);
    assert.equal(t.routing_key, fs.readFileSync(rx().pagerdutyKeyFile, "utf8").trim());
    assert.equal(t.payload.severity, "error");
    assert.equal(t.payload.component, "app-redis");
    assert.equal(t.payload.group, "alpha");
    assert.equal(t.payload.custom_details.consumer, "redis-host2");
    assert.match(t.payload.summary, /ESCALATE: stack alpha: app-redis g1: consumer redis-host2 is unreachable/);

    const failed = hooks(got, "consumer-failed");
    assert.equal(failed.length, 1, "one webhook of the failed consumer");
    const body = doc(failed[0]);
    assert.equal(body.resource_id, "alpha/app-redis");
    assert.equal(body.event_payload.secret, "app-redis");
    assert.equal(body.event_payload.consumer, "redis-host2");
    assert.equal(body.event_payload.unreachable, true);
    assert.equal(failed[0].signatureValid, true, "the receiver checked the signature with its key");
    // The signature verifies with the key and fails with another.
    const key = fs.readFileSync(rx().webhookKeyFile, "utf8").trim();
    const sign = (k: string) => `sha256=${createHmac("sha256", k).update(failed[0].body, "utf8").digest("hex")}`;
    assert.equal(failed[0].headers["x-rotation-signature"], sign(key));
    assert.notEqual(failed[0].headers["x-rotation-signature"], sign(`${key}x`));
    assert.match(failed[0].headers["x-rotation-delivery"], /^[0-9a-f-]{36}$/);
    assert.equal(slacks(got, /redis-host2/).length, 1, "the chat hears of it too");

    // Beta: its completion announced to every sink, as a change event at PagerDuty (no incident).
    const done = hooks(got, "completed").filter((d) => doc(d).resource_id === "beta/app-token");
    assert.equal(done.length, 1);
    assert.equal(doc(done[0]).event_payload.consumers, 2);
    assert.equal(slacks(got, /stack beta: app-token g1 rotated: 2 consumer\(s\)/).length, 1);
    assert.equal(changes(got).filter((d) => doc(d).payload.custom_details.stack === "beta").length, 1);
    assert.equal(pagerActions(got, "resolve").length, 0, "nothing to resolve yet");
    remember(storeValue("app-token"));
    assert.equal(hooks(got, "completed").filter((d) => doc(d).resource_id === "alpha/app-redis").length, 0, "alpha did not complete");
});

test("after the fix and the resume, the incident is resolved with the same dedup key", () => {
    fs.writeFileSync(releaseFile(), "");
    labCtl("up"); // host2 boots again
    const mark = received().length;
    const r = alpha.rotate(["resume", "--yes", "--json"]);
    assert.equal(r.code, 0, out(r));
    const got = received().slice(mark);
    const resolves = pagerActions(got, "resolve");
    assert.equal(resolves.length, 1);
    assert.equal(doc(resolves[0]).dedup_key, dedup);
    assert.equal(pagerActions(got, "trigger").length, 0, "no new incident");
    assert.equal(changes(got).length, 1, "the completion is a change event too");
    const done = hooks(got, "completed");
    assert.equal(done.length, 1);
    assert.equal(doc(done[0]).event_payload.consumers, 3);
    assert.equal(doc(done[0]).event_payload.escalated, true);
});

test("a receiver answering 500 three times, then hanging: the rotation takes the same time; the failed deliveries are in the audit log and the report", async () => {
    labCtl("notify-faults", "500", "500", "500", "then", "hang");
    try {
        await faultyRun();
    } finally {
        labCtl("notify-faults");
    }
});

/** Beta rotated again while the receiver misbehaves (test above). */
async function faultyRun(): Promise<void> {
    const mark = received().length;
    const auditBefore = alpha.auditLines().length;
    const r = await beta.rotateSampled(["start", "--secret", "app-token", "--yes", "--json"]);
    const exited = Date.now();
    assert.equal(r.code, 0, out(r));
    const run = JSON.parse(r.stdout);
    assert.equal(run.outcome, "succeeded");
    assert.ok(
        run.seconds <= baselineSeconds * 1.5 + 3,
        `the rotation took ${run.seconds}s with a failing receiver, ${baselineSeconds}s with a healthy one (within noise)`,
    );
    const waited = (exited - Date.parse(run.ended)) / 1000;
    console.log(
        `figures: beta's rotation ${baselineSeconds}s with a healthy receiver, ${run.seconds}s with a failing one; ${waited}s from its end to the command's`,
    );
    assert.ok(waited <= SETTLE + 5, `after the rotation, the command waited at most settleSeconds for deliveries (${waited}s)`);
    const answers = received()
        .slice(mark)
        .map((d) => d.answer);
    assert.deepEqual(answers.slice(0, 4), ["500", "500", "500", "hang"], "the receiver misbehaved as asked");

    const failedLines = alpha
        .auditLines()
        .slice(auditBefore)
        .filter((l) => l.phase === "notification-failed" && l.stack === "beta");
    assert.ok(failedLines.length >= 3, `failed deliveries in the audit log: ${JSON.stringify(failedLines)}`);
    const sinks = new Set(failedLines.map((l) => l.sink));
    for (const s of ["hook", "chat", "pager"]) assert.ok(sinks.has(s), `${s}'s failure is in the audit log`);
    remember(storeValue("app-token"));
    assert.ok(failedLines.some((l) => /HTTP 500/.test(String(l.detail))));
    assert.ok(
        failedLines.every((l) => /timed out after 1s|given up/.test(String(l.detail))),
        "each ended in the hang",
    );
    assert.ok(
        run.notifications.every((d: { outcome: string }) => d.outcome === "failed"),
        "every delivery of the run failed",
    );
    const report = fs.readFileSync(run.report, "utf8");
    assert.match(report, /<h2>Notifications<\/h2>/);
    assert.match(report, /HTTP 500, HTTP 500/);
    assert.match(report, /notification-failed/, "the audit lines of the failures are in the report");
    assert.match(r.stderr, /rotate: notified: 0 delivered, \d+ FAILED/);
}

test("a due rotation that needs a ceremony: request recorded, notification sent, run-due exits 6, the other stack rotated", async () => {
    const mark = received().length;
    const deployKey = storeValue("app-deploy-key");
    const r = await alpha.rotateProject(["run-due", "--stacks", "gamma,delta", "--yes", "--json"]);
    assert.equal(r.code, 6, `run-due exits 6, awaiting approval\n${out(r)}`);
    const by = Object.fromEntries(JSON.parse(r.stdout).stacks.map((s: { stack: string }) => [s.stack, s]));
    assert.equal(by.gamma.exitCode, 6);
    assert.equal(by.gamma.outcome, "awaiting-approval");
    assert.equal(by.delta.exitCode, 0, out(r));
    const request = by.gamma.request as string;
    assert.ok(fs.existsSync(path.join(alpha.dir, ".state", "ceremony", `${request}.json`)), "the request is recorded");
    assert.notEqual(storeValue("app-deploy-key"), deployKey, "delta rotated its key");
    remember(storeValue("app-deploy-key"));

    const got = received().slice(mark);
    const asked = hooks(got, "awaiting-approval");
    assert.equal(asked.length, 1);
    assert.equal(doc(asked[0]).event_payload.request.id, request);
    assert.equal(doc(asked[0]).resource_id, "gamma/app-pg");
    assert.equal(slacks(got, new RegExp(`awaiting a second person's approval \\(request ${request}\\)`)).length, 1);
    assert.equal(hooks(got, "completed").filter((d) => doc(d).resource_id === "delta/app-deploy-key").length, 1, "delta's completion announced");
    assert.equal(pagerActions(got, "trigger").length, 0, "nobody is paged");
});

test("no secret value in any payload, output, log or report; the sinks' URLs and keys are never printed", () => {
    remember(storeValue("app-redis"), storeValue("app-token"));
    scanForLeaks(alpha);
    assertAuditChain(alpha);
    const slackToken = fs.readFileSync(rx().slackUrlFile, "utf8").trim().split("/").pop()!;
    const credentials = [fs.readFileSync(rx().webhookKeyFile, "utf8").trim(), fs.readFileSync(rx().pagerdutyKeyFile, "utf8").trim(), slackToken];
    const reports = path.join(alpha.stateDir, "reports");
    const haystacks = [
        ...captured,
        { label: "audit log", text: fs.readFileSync(alpha.auditLog, "utf8") },
        ...fs.readdirSync(reports).map((f) => ({ label: f, text: fs.readFileSync(path.join(reports, f), "utf8") })),
    ];
    for (const c of credentials) for (const h of haystacks) assert.ok(!h.text.includes(c), `a sink's credential appears in ${h.label}`);
    // The receiver never got the webhook's key or the Slack hook's token in a body either.
    for (const d of received()) for (const c of [credentials[0], slackToken]) assert.ok(!d.body.includes(c), `a credential in a ${d.sink} payload`);
});
