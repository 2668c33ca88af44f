#!/usr/bin/env node
// The lab's API-token service: the third kind of source of the runbook
// (POST a new token, DELETE the old one), so the http-token source rotates a
// real token through the real engine.
//
//   node server.js --listen IP:PORT --dir DIR --admin-token-file FILE
//                  --log FILE [--pidfile FILE] [--seed-file FILE --seed-name NAME]
//
//   POST   /tokens              admin; JSON {name, token}: 201 created (200 if it exists already)
//   DELETE /tokens/<fingerprint> admin; first 16 hex of sha256(token): 204 revoked, 404 unknown
//   GET    /tokens              admin; the live tokens' names and fingerprints
//   GET    /whoami              Authorization: Bearer <token>: 200 live, 401 otherwise
//   GET    /healthz             no auth: 200 (the lab's own liveness check)
//
// Only sha256 hashes are stored (DIR/tokens.json, 0600, replaced atomically),
// so the storage holds no token; the admin token is read once at start (its
// file may be swapped or gone afterwards). The request log records the
// request line as sent (a client that put a token in a URL shows up there,
// where the lab's leak scan finds it), the status and the token's name or
// fingerprint, never a header or a body. `--listen IP:0` picks a free port;
// the log's first line names it.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const http = require("node:http");
const crypto = require("node:crypto");

const MAX_BODY = 16 * 1024;

function parseArgs(argv) {
    const out = {};
    for (let i = 0; i < argv.length; i += 2) {
        if (!argv[i].startsWith("--") || argv[i + 1] === undefined) throw new Error(`bad argument: ${argv[i]}`);
        out[argv[i].slice(2)] = argv[i + 1];
    }
    for (const k of ["listen", "dir", "admin-token-file", "log"]) if (!out[k]) throw new Error(`--${k} is required`);
    return out;
}

let args;
try {
    args = parseArgs(process.argv.slice(2));
} catch (e) {
    process.stderr.write(`tokenapi: ${e.message}\n`);
    process.exit(2);
}

const sha256 = (s) => crypto.createHash("sha256").update(s, "utf8").digest("hex");
const STORE = path.join(args.dir, "tokens.json");

function log(line) {
    fs.appendFileSync(args.log, `${new Date().toISOString()} ${line}\n`, { mode: 0o600 });
}

/** Atomic, 0600: a crash mid-write leaves the previous list, never half of one. */
function save(tokens) {
    const tmp = `${STORE}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify({ tokens }, null, 1)}\n`, { mode: 0o600 });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, STORE);
}

function load() {
    if (fs.existsSync(STORE)) return JSON.parse(fs.readFileSync(STORE, "utf8")).tokens;
    // First start: the token of generation 0 (the lab's store file) is live.
    const tokens = [];
    if (args["seed-file"]) {
        const seed = fs.readFileSync(args["seed-file"], "utf8");
        tokens.push({ name: args["seed-name"] || "seed", sha256: sha256(seed), created: new Date().toISOString() });
    }
    save(tokens);
    return tokens;
}

fs.mkdirSync(args.dir, { recursive: true, mode: 0o700 });
const adminHash = sha256(fs.readFileSync(args["admin-token-file"], "utf8").trim());
let tokens = load();

/** Compares hashes in constant time (equal lengths by construction). */
const sameHash = (a, b) => crypto.timingSafeEqual(Buffer.from(a, "hex"), Buffer.from(b, "hex"));
const bearer = (req) => {
    const m = /^Bearer (\S+)\s*$/.exec(req.headers.authorization || "");
    return m ? m[1] : undefined;
};
const isAdmin = (req) => {
    const t = bearer(req);
    return t !== undefined && sameHash(sha256(t), adminHash);
};
const liveToken = (token) => {
    const h = sha256(token);
    return tokens.find((t) => sameHash(t.sha256, h));
};

function readJson(req) {
    return new Promise((resolve, reject) => {
        let size = 0;
        const parts = [];
        req.on("data", (d) => {
            size += d.length;
            if (size > MAX_BODY) reject(new Error("body too large"));
            else parts.push(d);
        });
        req.on("end", () => {
            try {
                resolve(JSON.parse(Buffer.concat(parts).toString("utf8")));
            } catch {
                reject(new Error("body is not JSON"));
            }
        });
        req.on("error", reject);
    });
}

/** The answer, and what the log may say about it (a name or fingerprint, never a token). */
async function handle(req) {
    const url = new URL(req.url || "/", "http://lab");
    const p = url.pathname;
    if (p === "/healthz" && req.method === "GET") return { code: 200, body: { ok: true } };
    if (p === "/whoami" && req.method === "GET") {
        const t = bearer(req);
        const hit = t === undefined ? undefined : liveToken(t);
        return hit ? { code: 200, body: { name: hit.name }, note: `name=${hit.name}` } : { code: 401, body: { error: "invalid token" } };
    }
    const del = /^\/tokens\/([^/]+)$/.exec(p);
    if (p !== "/tokens" && !del) return { code: 404, body: { error: "not found" } };
    if (!isAdmin(req)) return { code: 401, body: { error: "admin token required" }, note: "admin=refused" };
    if (p === "/tokens" && req.method === "GET") {
        return { code: 200, body: { tokens: tokens.map((t) => ({ name: t.name, fingerprint: t.sha256.slice(0, 16), created: t.created })) } };
    }
    if (p === "/tokens" && req.method === "POST") {
        let b;
        try {
            b = await readJson(req);
        } catch (e) {
            return { code: 400, body: { error: e.message } };
        }
        if (!b || typeof b.name !== "string" || !/^[A-Za-z0-9._-]{1,100}$/.test(b.name)) return { code: 400, body: { error: "name: 1-100 of [A-Za-z0-9._-]" } };
        if (typeof b.token !== "string" || b.token.length < 16 || b.token.length > 4096 || /\s/.test(b.token)) {
            return { code: 400, body: { error: "token: 16-4096 characters, no whitespace" } };
        }
        const h = sha256(b.token);
        const note = `name=${b.name} fp=${h.slice(0, 16)}`;
        // A grant run again (a resumed rotation) finds its token already live.
        if (liveToken(b.token)) return { code: 200, body: { name: b.name, fingerprint: h.slice(0, 16) }, note: `${note} exists` };
        tokens = [...tokens, { name: b.name, sha256: h, created: new Date().toISOString() }];
        save(tokens);
        return { code: 201, body: { name: b.name, fingerprint: h.slice(0, 16) }, note };
    }
    if (del && req.method === "DELETE") {
        const fp = del[1].toLowerCase();
        if (!/^[0-9a-f]{16}$/.test(fp)) return { code: 400, body: { error: "fingerprint: 16 hex digits" } };
        const gone = tokens.filter((t) => t.sha256.startsWith(fp));
        if (!gone.length) return { code: 404, body: { error: "unknown token" } };
        tokens = tokens.filter((t) => !t.sha256.startsWith(fp));
        save(tokens);
        return { code: 204, note: `name=${gone.map((t) => t.name).join(",")}` };
    }
    return { code: 405, body: { error: "method not allowed" } };
}

const server = http.createServer(async (req, res) => {
    const t0 = Date.now();
    let r;
    try {
        r = await handle(req);
    } catch (e) {
        r = { code: 500, body: { error: "internal error" }, note: `error=${String(e.message).slice(0, 200)}` };
    }
    res.writeHead(r.code, r.body ? { "content-type": "application/json", connection: "close" } : { connection: "close" });
    res.end(r.body ? `${JSON.stringify(r.body)}\n` : undefined);
    log(`${req.socket.remoteAddress} ${req.method} ${req.url} ${r.code} ${Date.now() - t0}ms${r.note ? ` ${r.note}` : ""}`);
});

function exit() {
    if (args.pidfile) {
        try {
            if (fs.readFileSync(args.pidfile, "utf8").trim() === String(process.pid)) fs.unlinkSync(args.pidfile);
        } catch {
            /* gone */
        }
    }
    process.exit(0);
}
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, exit);

const i = args.listen.lastIndexOf(":");
server.on("error", (e) => {
    process.stderr.write(`tokenapi: listen ${args.listen}: ${e.message}\n`);
    process.exit(1);
});
server.listen(Number(args.listen.slice(i + 1)), args.listen.slice(0, i), () => {
    if (args.pidfile) fs.writeFileSync(args.pidfile, `${process.pid}\n`);
    log(`listening on ${args.listen.slice(0, i)}:${server.address().port}, ${tokens.length} live token(s)`);
});
