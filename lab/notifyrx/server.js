#!/usr/bin/env node
// The lab's notification receiver: stands in for the services a rotation
// tells people through, which the lab cannot reach (a generic webhook
// endpoint, a Slack incoming webhook, PagerDuty's Events API v2). It speaks
// each one's contract, records every request it gets, and misbehaves on
// demand, so the tests see what bin/rotate sends and what it does when a
// receiver fails.
//
//   node server.js --listen IP:PORT --record FILE --faults FILE
//                  [--webhook-key-file FILE] [--pagerduty-key-file FILE] [--pidfile FILE]
//
//   POST /webhook                 JSON; with --webhook-key-file, X-Rotation-Signature must be
//                                 sha256=<HMAC-SHA256 of the body> (401 otherwise): 200 {"ok":true}
//   POST /slack/<path>            Slack's incoming webhook: {"text": ...} 200 "ok"; 400 "invalid_payload" / "no_text"
//   POST /pagerduty/v2/enqueue    Events API v2 (trigger, acknowledge, resolve): 202
//                                 {"status":"success","message":"Event processed","dedup_key":...}; 400 "invalid event"
//   POST /pagerduty/v2/change/enqueue  change events: 202 {"status":"success","message":"Change event processed"}
//   GET  /healthz                 200 (the lab's liveness check)
//   GET|PUT /_faults              the fault plan (JSON, also the --faults file, re-read when it changes):
//                                 {"plan": ["500", "500", "500"], "after": "hang"}: each request to a sink
//                                 path takes the plan's next answer, then `after` for good. Answers:
//                                 "ok" (the contract), "500", "hang" (never answer), "close" (drop the connection).
//
// Every request to a sink path is one JSON line of the --record file (0600):
// time, method, path, the headers that matter, the body as received, the
// answer given and whether the signature checked out. The routing key and
// the HMAC key are read once at start.

const fs = require("node:fs");
const http = require("node:http");
const crypto = require("node:crypto");

const MAX_BODY = 256 * 1024;

function parseArgs(argv) {
    const out = {};
    for (let i = 0; i < argv.length; i += 2) {
        if (!argv[i].startsWith("--") || argv[i + 1] === undefined) throw new Error(`bad argument: ${argv[i]}`);
        out[argv[i].slice(2)] = argv[i + 1];
    }
    for (const k of ["listen", "record", "faults"]) if (!out[k]) throw new Error(`--${k} is required`);
    return out;
}

let args;
try {
    args = parseArgs(process.argv.slice(2));
} catch (e) {
    process.stderr.write(`notifyrx: ${e.message}\n`);
    process.exit(2);
}
const readKey = (f) => (f ? fs.readFileSync(f, "utf8").trim() : undefined);
const webhookKey = readKey(args["webhook-key-file"]);
const pagerdutyKey = readKey(args["pagerduty-key-file"]);

// ---- the fault plan: a file, re-read when it changes (PUT /_faults writes it)
const ANSWERS = ["ok", "500", "hang", "close"];
let faults = { plan: [], after: "ok" };
let faultsStamp = "";
let used = 0;
function currentFaults() {
    let st;
    try {
        st = fs.statSync(args.faults);
    } catch {
        if (faultsStamp !== "none") (faults = { plan: [], after: "ok" }), (faultsStamp = "none"), (used = 0);
        return faults;
    }
    const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    if (stamp !== faultsStamp) {
        try {
            faults = checkFaults(JSON.parse(fs.readFileSync(args.faults, "utf8")));
        } catch (e) {
            process.stderr.write(`notifyrx: ignoring ${args.faults}: ${e.message}\n`);
            faults = { plan: [], after: "ok" };
        }
        faultsStamp = stamp;
        used = 0;
    }
    return faults;
}
function checkFaults(f) {
    const plan = Array.isArray(f?.plan) ? f.plan.map(String) : [];
    const after = f?.after === undefined ? "ok" : String(f.after);
    for (const a of [...plan, after]) if (!ANSWERS.includes(a)) throw new Error(`unknown answer "${a}" (one of ${ANSWERS.join(", ")})`);
    return { plan, after };
}
function nextAnswer() {
    const f = currentFaults();
    return used < f.plan.length ? f.plan[used++] : f.after;
}
function writeFaults(f) {
    const tmp = `${args.faults}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(f)}\n`, { mode: 0o600 });
    fs.renameSync(tmp, args.faults);
}

function record(entry) {
    fs.appendFileSync(args.record, `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`, { mode: 0o600 });
}

const KEPT_HEADERS = ["content-type", "user-agent", "x-rotation-signature", "x-rotation-delivery", "x-rotation-event"];
const keptHeaders = (h) => Object.fromEntries(KEPT_HEADERS.filter((k) => h[k] !== undefined).map((k) => [k, h[k]]));

function json(res, status, doc) {
    const body = typeof doc === "string" ? doc : JSON.stringify(doc);
    res.writeHead(status, { "Content-Type": typeof doc === "string" ? "text/plain" : "application/json", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
}

const parse = (body) => {
    try {
        return JSON.parse(body);
    } catch {
        return undefined;
    }
};

/** PagerDuty's first check of either endpoint: a routing key, the integration's. */
function routingKeyErrors(doc) {
    if (!doc?.routing_key) return ["'routing_key' is missing or blank"];
    return pagerdutyKey !== undefined && doc.routing_key !== pagerdutyKey ? ["'routing_key' is invalid"] : [];
}

/** Each sink's contract: [status, answer] for a well-formed request, or its error. */
const SINKS = [
    {
        name: "webhook",
        match: (p) => p === "/webhook",
        answer(body, headers, entry) {
            if (parse(body) === undefined) return [400, { error: "body is not JSON" }];
            if (webhookKey !== undefined) {
                const want = `sha256=${crypto.createHmac("sha256", webhookKey).update(body, "utf8").digest("hex")}`;
                const got = String(headers["x-rotation-signature"] ?? "");
                entry.signatureValid = got.length === want.length && crypto.timingSafeEqual(Buffer.from(got), Buffer.from(want));
                if (!entry.signatureValid) return [401, { error: "signature does not match" }];
            }
            return [200, { ok: true }];
        },
    },
    {
        name: "slack",
        match: (p) => p.startsWith("/slack/"),
        answer(body) {
            const doc = parse(body);
            if (!doc || typeof doc !== "object") return [400, "invalid_payload"];
            if (typeof doc.text !== "string" || !doc.text) return [400, "no_text"];
            return [200, "ok"];
        },
    },
    {
        name: "pagerduty-change",
        match: (p) => p === "/pagerduty/v2/change/enqueue",
        answer(body) {
            const doc = parse(body);
            const errors = routingKeyErrors(doc);
            if (!doc?.payload?.summary) errors.push("'payload.summary' is missing or blank");
            if (errors.length) return [400, { status: "invalid event", message: "Event object is invalid", errors }];
            return [202, { status: "success", message: "Change event processed" }];
        },
    },
    {
        name: "pagerduty",
        match: (p) => p === "/pagerduty/v2/enqueue",
        answer(body) {
            const doc = parse(body);
            const errors = routingKeyErrors(doc);
            const action = doc?.event_action;
            if (!["trigger", "acknowledge", "resolve"].includes(action)) errors.push("'event_action' must be one of trigger, acknowledge, resolve");
            if (action !== "trigger" && !doc?.dedup_key) errors.push("'dedup_key' is required for acknowledge and resolve");
            if (action === "trigger") {
                for (const k of ["summary", "source", "severity"]) if (!doc?.payload?.[k]) errors.push(`'payload.${k}' is missing or blank`);
                if (doc?.payload?.severity && !["critical", "error", "warning", "info"].includes(doc.payload.severity))
                    errors.push("'payload.severity' is invalid");
            }
            if (errors.length) return [400, { status: "invalid event", message: "Event object is invalid", errors }];
            return [202, { status: "success", message: "Event processed", dedup_key: doc.dedup_key ?? crypto.randomUUID().replace(/-/g, "") }];
        },
    },
];

const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://receiver");
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
    });
    req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (url.pathname === "/healthz") return json(res, 200, "ok");
        if (url.pathname === "/_faults") {
            if (req.method === "GET") return json(res, 200, { ...currentFaults(), used });
            if (req.method !== "PUT") return json(res, 405, { error: "GET or PUT" });
            try {
                const f = checkFaults(parse(body));
                writeFaults(f);
                currentFaults();
                return json(res, 200, f);
            } catch (e) {
                return json(res, 400, { error: e.message });
            }
        }
        const sink = SINKS.find((s) => s.match(url.pathname));
        if (!sink || req.method !== "POST") return json(res, sink ? 405 : 404, { error: sink ? "POST only" : "no such endpoint" });
        const answer = size > MAX_BODY ? "ok" : nextAnswer();
        const entry = { sink: sink.name, method: req.method, path: url.pathname, headers: keptHeaders(req.headers), body, answer };
        if (answer === "hang") {
            record({ ...entry, status: null });
            return; // never answered: the client's timeout ends it
        }
        if (answer === "close") {
            record({ ...entry, status: null });
            req.socket.destroy();
            return;
        }
        if (answer === "500") {
            record({ ...entry, status: 500 });
            return json(res, 500, { error: "injected failure" });
        }
        const [status, doc] = size > MAX_BODY ? [413, { error: "body too large" }] : sink.answer(body, req.headers, entry);
        record({ ...entry, status });
        json(res, status, doc);
    });
});

const [host, port] = args.listen.split(":");
server.listen(Number(port), host, () => {
    if (args.pidfile) fs.writeFileSync(args.pidfile, `${process.pid}\n`);
    process.stderr.write(`notifyrx: listening on ${host}:${server.address().port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
