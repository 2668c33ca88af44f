// Notifications (notify/, cli/notify.ts) and the unattended run
// (cli/runDue.ts, deploy/): rotation:notify refused with messages naming the
// field; credentials only from 0600 files or the environment; each sink
// kind's payload (the webhook's signature, PagerDuty's trigger, resolve and
// change event, Slack's text), never a secret value; delivery retried,
// bounded and announced when it fails, against a real HTTP server in this
// process; run-due's exit code; the systemd units verified by systemd-analyze.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { parseEnvironment } from "../../lib/config";
import { type NotifyConfig, sinkOf, sinksFor } from "../../notify";
import { type EventInput, Notifier } from "../../notify/deliver";
import { type NotifyEvent, isUnreachable, summaryOf } from "../../notify/event";
import { signBody } from "../../notify/webhook";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { type RunNotify, announceVerdict, watchRun } from "../../cli/notify";
import { RunTracker, planIndex } from "../../cli/progress";
import { renderReport } from "../../cli/report";
import type { RunSecret } from "../../cli/runRecord";
import { summaryCode } from "../../cli/runDue";
import { rawEnvironment } from "./harness";
import { problemsOf } from "./configProblems";

const ROOT = path.join(__dirname, "..", "..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "notify-unit-"));
const file = (name: string, text: string, mode = 0o600) => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, text, { mode });
    fs.chmodSync(p, mode);
    return p;
};

const withNotify = (notify: unknown, secretNotify?: unknown) => {
    const env = rawEnvironment() as Record<string, any>;
    if (secretNotify) env.secrets["app-redis"].notify = secretNotify;
    return { ...env, notify };
};

test("rotation:notify: a route to a sink the stack lacks, an unknown event or kind, a URL in the stack file: each named", () => {
    assert.deepEqual(
        problemsOf(() =>
            parseEnvironment(
                "prod",
                withNotify(
                    { sinks: { pager: { kind: "pagerduty", routingKeyEnv: "PD_KEY" } }, routes: { completed: ["pager", "chat"] } },
                    { routes: { "consumer-failed": ["hook"] } },
                ),
            ),
        ),
        [
            'rotation:notify.routes.completed[1]: no sink "chat" in rotation:notify.sinks (it has: pager)',
            'rotation:secrets.app-redis.notify.routes.consumer-failed[0]: no sink "hook" in rotation:notify.sinks (it has: pager)',
        ],
    );
    assert.deepEqual(
        problemsOf(() =>
            parseEnvironment(
                "prod",
                withNotify({
                    sinks: { chat: { kind: "teams", urlEnv: "X" }, hook: { kind: "webhook", url: "https://x.example/hook", keyEnv: "K" } },
                    routes: { paged: ["hook"] },
                }),
            ),
        ),
        [
            'rotation:notify.sinks.chat.kind: unknown kind "teams": must be one of "webhook", "slack", "pagerduty"',
            "rotation:notify.sinks.hook.url: unknown key",
            "rotation:notify.routes.paged: unknown key",
        ],
    );
    const env = parseEnvironment(
        "prod",
        withNotify({ sinks: { pager: { kind: "pagerduty", routingKeyEnv: "PD_KEY" }, chat: { kind: "slack", urlEnv: "SLACK" } } }),
    );
    assert.deepEqual(env.notify?.delivery, { attempts: 4, timeoutSeconds: 5, backoffSeconds: 1, settleSeconds: 15 });
    // Without routes, each sink gets what its kind takes: the pager only escalations and completions.
    assert.deepEqual(sinksFor(env.notify!, "run-started"), ["chat"]);
    assert.deepEqual(sinksFor(env.notify!, "consumer-failed"), ["pager", "chat"]);
    assert.deepEqual(sinksFor(env.notify!, "completed", { completed: [] }), [], "a secret's own route wins");
});

test("credentials only from a file nobody else can read or a variable, each problem naming its field, never the value", () => {
    const at = "rotation:notify.sinks.hook";
    const hook = sinkOf("webhook");
    const url = file("url", "https://hooks.example/T0/s3cr3t-path\n");
    const open = file("open.key", "k", 0o644);
    const r = hook.credentials({ kind: "webhook", urlFile: url, keyFile: open } as never, tmp, at, {});
    assert.deepEqual(r.problems, [`${at}.keyFile: ${open} is readable by group or others (mode 644); chmod 600 it`]);
    assert.deepEqual(hook.credentials({ kind: "webhook", urlEnv: "HOOK_URL", keyEnv: "HOOK_KEY" } as never, tmp, at, { HOOK_URL: "ftp://x" }).problems, [
        `${at}: the url read from urlFile or urlEnv must be http(s)`,
        `${at}.keyEnv: the environment variable HOOK_KEY is not set (or empty)`,
    ]);
    assert.deepEqual(hook.credentials({ kind: "webhook", keyFile: "missing.key" } as never, tmp, at, {}).problems, [
        `${at}: set urlFile (a file, mode 0600) or urlEnv`,
        `${at}.keyFile: missing.key does not exist`,
    ]);
    const ok = hook.credentials({ kind: "webhook", urlFile: url, keyEnv: "K" } as never, tmp, at, { K: "key" });
    assert.deepEqual(ok, { problems: [], credentials: { url: "https://hooks.example/T0/s3cr3t-path", key: "key" } });
    const pd = sinkOf("pagerduty").credentials({ kind: "pagerduty", routingKeyEnv: "PD" } as never, tmp, at, { PD: "R" });
    assert.deepEqual(pd.credentials, { url: "https://events.pagerduty.com", key: "R" }, "PagerDuty's own API by default");
});

const event = (over: Partial<NotifyEvent>): NotifyEvent => {
    const base = { event: "consumer-failed" as const, stack: "prod", secret: "app-redis", generation: 7, consumer: "web-2", unreachable: true, ...over };
    return { id: "e1", time: "2026-12-05T00:00:00.000Z", severity: "error", source: "ops-1", summary: summaryOf(base as never), ...base } as NotifyEvent;
};

test("each kind's payload: the webhook signed over its body, PagerDuty's trigger / resolve / change with one dedup key, Slack's text", () => {
    const e = event({ error: "web-2: write g7: exited with code 255 on root@10.0.0.2:22: the connection to the host ended" });
    const [w] = sinkOf("webhook").requests({ kind: "webhook" } as never, { url: "https://h.example/x", key: "k3y" }, e, "d-1");
    assert.equal(w.headers["X-Rotation-Signature"], `sha256=${createHmac("sha256", "k3y").update(w.body).digest("hex")}`);
    assert.notEqual(w.headers["X-Rotation-Signature"], signBody("another key", w.body));
    assert.equal(w.headers["X-Rotation-Delivery"], "d-1");
    const body = JSON.parse(w.body);
    assert.equal(body.resource_id, "prod/app-redis");
    assert.equal(body.event_action, "consumer-failed");
    assert.equal(body.event_payload.consumer, "web-2");
    assert.ok(!w.body.includes("k3y"), "the key signs the body, it is not in it");

    const pd = sinkOf("pagerduty");
    const creds = { url: "https://pd.example", key: "ROUTING" };
    const [trigger] = pd.requests({ kind: "pagerduty" } as never, creds, e, "d");
    const t = JSON.parse(trigger.body);
    assert.equal(trigger.url, "https://pd.example/v2/enqueue");
    assert.equal(t.event_action, "trigger");
    assert.equal(t.dedup_key, "secret-rotation/prod/app-redis/g7");
    assert.equal(t.payload.severity, "error");
    assert.equal(
        t.payload.summary,
        "ESCALATE: stack prod: app-redis g7: consumer web-2 is unreachable during the dual-active window; nothing is revoked, the old secret still works",
    );
    const done = event({ event: "completed", consumers: 3, escalated: true, consumer: undefined, unreachable: undefined });
    const [resolve, change] = pd.requests({ kind: "pagerduty" } as never, creds, done, "d");
    assert.deepEqual(JSON.parse(resolve.body), { routing_key: "ROUTING", event_action: "resolve", dedup_key: "secret-rotation/prod/app-redis/g7" });
    assert.equal(change.url, "https://pd.example/v2/change/enqueue");
    assert.equal(pd.requests({ kind: "pagerduty" } as never, creds, { ...done, escalated: false }, "d").length, 1, "no incident: only the change event");
    assert.deepEqual(pd.requests({ kind: "pagerduty" } as never, creds, event({ event: "run-started" }), "d"), []);

    const [s] = sinkOf("slack").requests({ kind: "slack" } as never, { url: "https://hooks.slack.example/T/B/x" }, event({ error: "a <b> & c" }), "d");
    assert.match(JSON.parse(s.body).text, /^:rotating_light: \*ESCALATE: stack prod: app-redis g7: consumer web-2 is unreachable/);
    assert.match(JSON.parse(s.body).text, /• error: a &lt;b&gt; &amp; c/);
    assert.equal(isUnreachable(e.error!), true);
    assert.equal(isUnreachable("web-2: health check: http://x/healthz answered 503, expected 200"), false);
});

// ---- delivery against a real HTTP server in this process

let server: http.Server;
let base = "";
const answers: string[] = [];
const got: { path: string; body: string }[] = [];

before(async () => {
    server = http.createServer((req, res) => {
        let body = "";
        req.on("data", (d) => (body += d));
        req.on("end", () => {
            got.push({ path: req.url ?? "", body });
            const a = answers.shift() ?? "200";
            if (a === "close") req.socket.destroy();
            else if (a !== "hang") res.writeHead(Number(a)).end();
        });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
    server.closeAllConnections();
    server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
});

const config = (delivery: Partial<NotifyConfig["delivery"]> = {}): NotifyConfig => ({
    sinks: { hook: { kind: "webhook" }, chat: { kind: "slack" } } as never,
    delivery: { attempts: 3, timeoutSeconds: 0.3, backoffSeconds: 0.05, settleSeconds: 5, ...delivery },
});

test("delivery: a 500, a dropped connection and a hang are tried again; the failure is reported once and announced to the other sink", async () => {
    answers.splice(0, answers.length, "500", "close", "hang");
    got.length = 0;
    const failures: string[] = [];
    const n = new Notifier({
        stack: "prod",
        config: { ...config(), routes: { "run-started": ["hook"] } },
        credentials: { hook: { url: `${base}/hook`, key: "k" }, chat: { url: `${base}/chat` } },
        onFailed: (d) => failures.push(`${d.sink} ${d.event} ${d.attempts}: ${d.error}`),
    });
    const t0 = Date.now();
    n.emit({ event: "run-started", stack: "prod", command: "start", secrets: [] });
    const deliveries = await n.settle();
    assert.deepEqual(failures, ["hook run-started 3: HTTP 500, connection closed before an answer, timed out after 0.3s"]);
    assert.deepEqual(
        deliveries.map((d) => [d.sink, d.event, d.outcome]),
        [
            ["hook", "run-started", "failed"],
            ["chat", "notification-failed", "delivered"],
        ],
    );
    assert.deepEqual(
        got.map((g) => g.path),
        ["/hook", "/hook", "/hook", "/chat"],
    );
    assert.match(JSON.parse(got[3].body).text, /notifying hook of run-started failed after 3 attempt\(s\): HTTP 500/);
    assert.ok(Date.now() - t0 < 3000, "bounded: three tries of 0.3 s and two short backoffs");
});

test("delivery: a 4xx is not tried again; settle gives up what is still under way after settleSeconds", async () => {
    answers.splice(0, answers.length, "400");
    got.length = 0;
    const n = new Notifier({
        stack: "prod",
        config: { ...config(), routes: { completed: ["hook"], "notification-failed": [] } },
        credentials: { hook: { url: `${base}/hook`, key: "k" } },
    });
    n.emit({ event: "completed", stack: "prod", secret: "s", generation: 1, consumers: 1 });
    assert.deepEqual(
        (await n.settle()).map((d) => [d.attempts, d.error]),
        [[1, "HTTP 400"]],
    );

    answers.splice(0, answers.length, "hang", "hang", "hang");
    const slow = new Notifier({
        stack: "prod",
        config: { ...config({ timeoutSeconds: 10, settleSeconds: 0.3 }), routes: { completed: ["hook"], "notification-failed": [] } },
        credentials: { hook: { url: `${base}/hook`, key: "k" } },
    });
    const t0 = Date.now();
    slow.emit({ event: "completed", stack: "prod", secret: "s", generation: 1, consumers: 1 });
    const [d] = await slow.settle();
    assert.ok(Date.now() - t0 < 2000, `settle returned after settleSeconds (${Date.now() - t0} ms)`);
    assert.equal(d.outcome, "failed");
    assert.match(d.error ?? "", /given up: the run ended before an answer came/);
    assert.equal(slow.emit({ event: "run-started", stack: "prod", secrets: [] }), undefined, "nothing is sent once settled");
});

test("run-due's exit code: the most urgent of its stacks'", () => {
    assert.equal(summaryCode([0, 6, 0]), 6);
    assert.equal(summaryCode([6, 7, 0]), 7, "a rotation stopped mid-way for a person comes before a request awaiting approval");
    assert.equal(summaryCode([7, 4]), 4);
    assert.equal(summaryCode([6, 1, 0]), 1);
    assert.equal(summaryCode([4, 3, 2]), 2);
    assert.equal(summaryCode([1, 5]), 5);
    assert.equal(summaryCode([0, 127]), 1, "a crashed stack run counts as failed");
    assert.equal(summaryCode([]), 0);
});

test("deploy/: the systemd service and timer pass systemd-analyze verify", (t) => {
    if (spawnSync("systemd-analyze", ["--version"]).status !== 0) {
        t.skip("systemd-analyze is not installed (Debian: apt-get install systemd)");
        return;
    }
    // As installed for this checkout: the units name /opt/secret-rotation, which must exist for the verify.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "units-"));
    try {
        for (const unit of ["secret-rotation.service", "secret-rotation.timer"])
            fs.writeFileSync(path.join(dir, unit), fs.readFileSync(path.join(ROOT, "deploy", unit), "utf8").replaceAll("/opt/secret-rotation", ROOT));
        const r = spawnSync("systemd-analyze", ["verify", "--man=no", path.join(dir, "secret-rotation.service"), path.join(dir, "secret-rotation.timer")], {
            encoding: "utf8",
        });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stderr.trim(), "", "no warning");
        // A unit with a mistake is refused: the check can fail.
        fs.writeFileSync(path.join(dir, "secret-rotation.timer"), "[Timer]\nOnCalendar=every full moon\nUnit=secret-rotation.service\n");
        assert.notEqual(spawnSync("systemd-analyze", ["verify", "--man=no", path.join(dir, "secret-rotation.timer")], { encoding: "utf8" }).stderr.trim(), "");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

// ---- a run's events, from the engine's events (cli/notify.ts)

const STEP = "rotation:index:Step";
const urn = (name: string) => `urn:pulumi:prod::secret-rotation::rotation:index:Rotation$rotation:index:Step::${name}`;
const meta = (name: string) => ({ metadata: { op: "update", urn: urn(name), type: STEP } }) as never;
const pre = (name: string) => ({ sequence: 0, timestamp: 0, resourcePreEvent: meta(name) }) as EngineEvent;
const ok = (name: string) => ({ sequence: 0, timestamp: 0, resOutputsEvent: meta(name) }) as EngineEvent;
const fail = (name: string, message: string) =>
    ({
        sequence: 0,
        timestamp: 0,
        diagnosticEvent: { urn: urn(name), message: `error: update failed: ${message}\n`, severity: "error", color: "never" },
    }) as EngineEvent;
const runSecret = (name: string, consumers: string[]): RunSecret => ({ name, generation: 4, mode: "rotate", consumers, after: [] });

test("a run's events: started once, a consumer's failure and the gate's refusal at once, then each secret's verdict", () => {
    const secrets = [runSecret("app-redis", ["web-1", "web-2"]), runSecret("app-pg", ["pg-1"]), runSecret("app-key", ["k-1"]), runSecret("app-tok", ["t-1"])];
    const tracker = new RunTracker(secrets);
    const sent: EventInput[] = [];
    const n: RunNotify = { notifier: { emit: (e: EventInput) => sent.push(e) } as unknown as Notifier, escalated: (s) => s === "app-tok" };
    const escalated = watchRun(n, tracker, "prod", "start");
    const names = [...planIndex(secrets).keys()];
    // Every step of app-tok completes; app-redis loses web-2's host; app-pg's gate refuses; app-key fails at its verification.
    for (const r of names.filter((x) => x.startsWith("app-tok-"))) {
        tracker.handle(pre(r));
        tracker.handle(ok(r));
    }
    tracker.handle(pre("app-redis-rollout-web-2"));
    tracker.handle(
        fail("app-redis-rollout-web-2", "app-redis → consumer web-2: write g4: exited with code 255 on root@10.0.0.2:22: the connection to the host ended"),
    );
    tracker.handle(pre("app-pg-gate"));
    tracker.handle(fail("app-pg-gate", "app-pg: gate: 1 of 1 consumers are not on the new secret, so nothing is revoked: pg-1 holds the previous secret"));
    const verify = names.find((x) => x.startsWith("app-key-verify"))!;
    tracker.handle(pre(verify));
    tracker.handle(fail(verify, "app-key: the old secret is still accepted"));
    tracker.finish();
    announceVerdict(
        n,
        {
            secrets,
            steps: tracker.steps,
            stack: "prod",
            command: "start",
            next: ["app-key: its revocation has started, so roll forward: bin/rotate resume --stack prod --yes"],
        },
        ["app-key"],
        escalated,
    );
    assert.deepEqual(
        sent.map((e) => [e.event, e.secret ?? "", e.consumer ?? "", e.unreachable ?? ""]),
        [
            ["run-started", "", "", ""],
            ["consumer-failed", "app-redis", "web-2", true],
            ["gate-refused", "app-pg", "", ""],
            ["failed-after-revocation", "app-key", "", ""],
            ["completed", "app-tok", "", ""],
        ],
        "app-redis and app-pg were escalated during the run: no second event for them",
    );
    const done = sent.find((e) => e.event === "completed")!;
    assert.deepEqual([done.consumers, done.escalated, done.generation], [1, true, 4]);
    assert.deepEqual(sent.find((e) => e.event === "failed-after-revocation")!.next, [
        "its revocation has started, so roll forward: bin/rotate resume --stack prod --yes",
    ]);
});

test("the report lists every delivery, a failed one with why each try failed", () => {
    const html = renderReport({
        id: "prod-1-start",
        stack: "prod",
        command: "start",
        started: 0,
        ended: 1000,
        outcome: "succeeded",
        exitCode: 0,
        secrets: [runSecret("app-redis", ["web-1"])],
        steps: [],
        audit: [],
        next: [],
        errors: [],
        notifications: [
            {
                id: "d1",
                sink: "pager",
                kind: "pagerduty",
                event: "completed",
                action: "change",
                secret: "app-redis",
                generation: 4,
                outcome: "delivered",
                attempts: 1,
                status: 202,
                seconds: 0.1,
            },
            {
                id: "d2",
                sink: "chat",
                kind: "slack",
                event: "completed",
                action: "completed",
                outcome: "failed",
                attempts: 4,
                error: "HTTP 500, HTTP 500, HTTP 500, timed out after 5s",
                seconds: 9.4,
            },
        ],
    });
    assert.match(html, /<h2>Notifications<\/h2>/);
    assert.match(html, /<td>pager<\/td><td>completed<\/td><td>change<\/td><td>app-redis g4<\/td><td>delivered<\/td>/);
    assert.match(
        html,
        /<td>chat<\/td>.*<span class="bad">failed<\/span><\/td><td>4<\/td><td>9\.4<\/td><td>HTTP 500, HTTP 500, HTTP 500, timed out after 5s<\/td>/,
    );
});
