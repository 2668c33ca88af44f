// The lab's notification receiver (lab/notifyrx/server.js) on its own: each
// sink's contract (the webhook's signature checked, Slack's payload, the
// PagerDuty Events API's fields and routing key), every request recorded,
// and the fault plan (500, hang, close, then ok) from PUT /_faults.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { signBody } from "../../notify/webhook";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "notifyrx-"));
const f = (n: string) => path.join(dir, n);
let rx: ChildProcess;
let base = "";

before(async () => {
    fs.writeFileSync(f("hook.key"), "hook-key\n", { mode: 0o600 });
    fs.writeFileSync(f("pd.key"), "ROUTING\n", { mode: 0o600 });
    rx = spawn(
        "node",
        [
            path.join(__dirname, "..", "..", "lab", "notifyrx", "server.js"),
            ...["--listen", "127.0.0.1:0", "--record", f("rec.jsonl"), "--faults", f("faults.json")],
            ...["--webhook-key-file", f("hook.key"), "--pagerduty-key-file", f("pd.key")],
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
    );
    let err = "";
    rx.stderr!.on("data", (d) => (err += d));
    const end = Date.now() + 10_000;
    while (!/listening on 127\.0\.0\.1:(\d+)/.test(err)) {
        assert.ok(Date.now() < end, `the receiver listens: ${err}`);
        await new Promise((r) => setTimeout(r, 20));
    }
    base = `http://127.0.0.1:${/listening on 127\.0\.0\.1:(\d+)/.exec(err)![1]}`;
});
after(() => {
    rx.kill();
    fs.rmSync(dir, { recursive: true, force: true });
});

const post = async (p: string, body: string, headers: Record<string, string> = {}) => {
    const r = await fetch(`${base}${p}`, { method: "POST", body, headers, signal: AbortSignal.timeout(1500) }).catch((e: Error) => e);
    return r instanceof Error ? (r.name === "TimeoutError" ? "hang" : "close") : `${r.status} ${await r.text()}`;
};
const recorded = () =>
    fs
        .readFileSync(f("rec.jsonl"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l));

test("each sink's contract, every request recorded with whether its signature checked out", async () => {
    const body = JSON.stringify({ event_action: "completed" });
    assert.equal(await post("/webhook", body, { "X-Rotation-Signature": signBody("hook-key", body) }), '200 {"ok":true}');
    assert.equal(await post("/webhook", body, { "X-Rotation-Signature": signBody("another", body) }), '401 {"error":"signature does not match"}');
    assert.equal(await post("/slack/services/T/B/x", JSON.stringify({ text: "hi" })), "200 ok");
    assert.equal(await post("/slack/services/T/B/x", JSON.stringify({ blocks: [] })), "400 no_text");
    const trigger = { routing_key: "ROUTING", event_action: "trigger", dedup_key: "k", payload: { summary: "s", source: "h", severity: "error" } };
    assert.match(await post("/pagerduty/v2/enqueue", JSON.stringify(trigger)), /^202 .*"dedup_key":"k"/);
    assert.match(await post("/pagerduty/v2/enqueue", JSON.stringify({ ...trigger, routing_key: "other" })), /^400 .*'routing_key' is invalid/);
    assert.match(await post("/pagerduty/v2/enqueue", JSON.stringify({ routing_key: "ROUTING", event_action: "resolve" })), /^400 .*'dedup_key' is required/);
    assert.match(
        await post("/pagerduty/v2/change/enqueue", JSON.stringify({ routing_key: "ROUTING", payload: { summary: "s" } })),
        /^202 .*Change event processed/,
    );
    const rec = recorded();
    assert.deepEqual(
        rec.map((r) => [r.sink, r.status]),
        [
            ["webhook", 200],
            ["webhook", 401],
            ["slack", 200],
            ["slack", 400],
            ["pagerduty", 202],
            ["pagerduty", 400],
            ["pagerduty", 400],
            ["pagerduty-change", 202],
        ],
    );
    assert.deepEqual([rec[0].signatureValid, rec[1].signatureValid, rec[0].body], [true, false, body]);
});

test("the fault plan: 500, close, hang, then the contract again; a bad plan refused", async () => {
    const put = await fetch(`${base}/_faults`, { method: "PUT", body: JSON.stringify({ plan: ["500", "close", "hang"], after: "ok" }) });
    assert.equal(put.status, 200);
    const text = JSON.stringify({ text: "x" });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push((await post("/slack/a", text)).split(" ")[0]);
    assert.deepEqual(answers, ["500", "close", "hang", "200"]);
    assert.equal((await fetch(`${base}/_faults`, { method: "PUT", body: JSON.stringify({ plan: ["slow"] }) })).status, 400);
    assert.deepEqual(
        recorded()
            .slice(-4)
            .map((r) => r.answer),
        ["500", "close", "hang", "ok"],
    );
});
