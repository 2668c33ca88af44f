#!/usr/bin/env node
// Lab consumer service: holds one secret read from its config file and
// proves it on GET /healthz by authenticating to the source with it.
//
//   node app.js --kind redis|pg|ssh|token --config PATH --listen IP:PORT
//               --log PATH --pidfile PATH
//               [--target user@host] [--known-hosts PATH]   (kind ssh)
//               [--stdout journal]
//
// Each log line goes to the --log file; with `--stdout journal` also to
// stdout, without the time and with a syslog priority prefix (<3> errors:
// AUTH_FAILED, HEALTH_FAILED, CONFIG_ERROR, INTERNAL_ERROR, LISTEN_ERROR; <6>
// the rest) for journald (lab/lib/in-unit.sh: `journalctl -u <kind>-app`).
//
// Config is read at start and on SIGHUP (an unreadable/invalid config on
// SIGHUP keeps the old one and logs the error). The secret is never logged,
// printed or put in a child's argv.
//
// Endpoints:
//   GET /healthz             200 "ok <detail>" | 503 "<error>"
//                            (503 "forced failure" while <configdir>/FAIL_HEALTH exists)
//   GET /secret-fingerprint  sha256 hex of the secret held:
//                            redis: redis.password; pg: PGPASSWORD;
//                            ssh: the private key file's bytes; token: API_TOKEN
//   GET /info                non-secret details (kind, user, generation of load)
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const net = require("net");
const http = require("http");
const crypto = require("crypto");
const { spawn } = require("child_process");

const TIMEOUT_MS = 3000;

// ---------------------------------------------------------------- arguments
function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument: ${a}`);
    const key = a.slice(2);
    const val = argv[i + 1];
    if (val === undefined) throw new Error(`missing value for ${a}`);
    out[key] = val;
    i++;
  }
  return out;
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
  for (const k of ["kind", "config", "listen"]) if (!args[k]) throw new Error(`--${k} is required`);
  if (!["redis", "pg", "ssh", "token"].includes(args.kind)) throw new Error(`bad --kind ${args.kind}`);
} catch (e) {
  process.stderr.write(`app.js: ${e.message}\n`);
  process.exit(2);
}
const KIND = args.kind;
const CONFIG = args.config;
const LOG = args["log"] || null;
const PIDFILE = args["pidfile"] || null;
const TARGET = args["target"] || "root@127.0.1.20";
const KNOWN_HOSTS = args["known-hosts"] || null;
const FAIL_FILE = path.join(path.dirname(CONFIG), "FAIL_HEALTH");
const JOURNAL = args["stdout"] === "journal";
const ERRORS = /^(AUTH_FAILED|HEALTH_FAILED|CONFIG_ERROR|INTERNAL_ERROR|LISTEN_ERROR)\b/;
// A journal that went away (its journald stopped) must not take the app with it.
if (JOURNAL) process.stdout.on("error", () => {});

// ---------------------------------------------------------------- logging
function log(msg) {
  const text = String(msg).replace(/\s*\n\s*/g, " | ");
  const line = `${new Date().toISOString()} ${KIND}-app[${process.pid}] ${text}\n`;
  if (JOURNAL) process.stdout.write(`<${ERRORS.test(text) ? 3 : 6}>${text}\n`);
  if (LOG) {
    try { fs.appendFileSync(LOG, line); return; } catch (_) { /* fall through */ }
  }
  process.stderr.write(line);
}

// ---------------------------------------------------------------- YAML (tiny)
// Enough YAML for the lab's config shape: nested block mappings by
// indentation, comments, plain / single-quoted / double-quoted scalars
// (double-quoted escapes: \\ \" \/ \n \t \r \0 \a \b \e \f \v \xXX \uXXXX \UXXXXXXXX).
function parseDoubleQuoted(s, lineNo) {
  // s starts right after the opening quote; returns [value, rest]
  let out = "";
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === '"') return [out, s.slice(i + 1)];
    if (c === "\\") {
      const e = s[i + 1];
      const simple = { "\\": "\\", '"': '"', "/": "/", n: "\n", t: "\t", r: "\r", "0": "\0",
        a: "\x07", b: "\b", e: "\x1b", f: "\f", v: "\v", " ": " ", N: "\u0085", _: "\u00a0",
        L: "\u2028", P: "\u2029", "\t": "\t" };
      if (e in simple) { out += simple[e]; i += 2; continue; }
      const hexLen = { x: 2, u: 4, U: 8 }[e];
      if (hexLen) {
        const hex = s.slice(i + 2, i + 2 + hexLen);
        if (!new RegExp(`^[0-9a-fA-F]{${hexLen}}$`).test(hex)) throw new Error(`line ${lineNo}: bad \\${e} escape`);
        out += String.fromCodePoint(parseInt(hex, 16));
        i += 2 + hexLen;
        continue;
      }
      throw new Error(`line ${lineNo}: unknown escape \\${e === undefined ? "" : e}`);
    }
    out += c;
    i++;
  }
  throw new Error(`line ${lineNo}: unterminated double-quoted string`);
}

function parseScalar(raw, lineNo) {
  let s = raw.trim();
  if (s === "") return null;
  let value;
  let rest;
  if (s[0] === '"') {
    [value, rest] = parseDoubleQuoted(s.slice(1), lineNo);
  } else if (s[0] === "'") {
    let out = "";
    let i = 1;
    for (;;) {
      if (i >= s.length) throw new Error(`line ${lineNo}: unterminated single-quoted string`);
      if (s[i] === "'") {
        if (s[i + 1] === "'") { out += "'"; i += 2; continue; }
        break;
      }
      out += s[i++];
    }
    value = out;
    rest = s.slice(i + 1);
  } else {
    const m = s.match(/^(.*?)(\s+#.*)?$/);
    value = m[1].trim();
    if (value === "~" || value === "null") value = null;
    return value;
  }
  rest = rest.trim();
  if (rest !== "" && !rest.startsWith("#")) throw new Error(`line ${lineNo}: trailing text after quoted string`);
  return value;
}

function parseYaml(text) {
  const root = {};
  const stack = [{ indent: -1, obj: root }];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, idx) => {
    const lineNo = idx + 1;
    if (/^\s*(#.*)?$/.test(line)) return;
    if (/^(---|\.\.\.)\s*$/.test(line)) return;
    if (/^\s*\t/.test(line)) throw new Error(`line ${lineNo}: tab indentation`);
    const indent = line.match(/^ */)[0].length;
    const body = line.slice(indent);
    const m = body.match(/^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^:#][^:]*?)\s*:(?:\s+(.*)|\s*)$/);
    if (!m) throw new Error(`line ${lineNo}: expected "key: value"`);
    let key = m[1];
    if (key[0] === '"' || key[0] === "'") key = parseScalar(key, lineNo);
    const rawVal = m[2] === undefined ? "" : m[2];
    while (stack.length > 1 && stack[stack.length - 1].indent >= indent) stack.pop();
    const parent = stack[stack.length - 1];
    if (parent.childIndent !== undefined && parent.childIndent !== indent) {
      throw new Error(`line ${lineNo}: bad indentation`);
    }
    parent.childIndent = indent;
    if (/^\s*(#.*)?$/.test(rawVal)) {
      const child = {};
      parent.obj[key] = child;
      stack.push({ indent, obj: child });
    } else {
      if (/^[|>&*!\[{]/.test(rawVal.trim())) throw new Error(`line ${lineNo}: unsupported YAML construct`);
      parent.obj[key] = parseScalar(rawVal, lineNo);
    }
  });
  return root;
}

function parseYamlWithFallback(text) {
  try {
    return parseYaml(text);
  } catch (e) {
    // A rotation tool may re-emit the YAML in a form the tiny parser does not
    // know; use js-yaml from the project if it is there.
    let yaml;
    try { yaml = require(path.join(__dirname, "../../node_modules/js-yaml")); } catch (_) { throw e; }
    try { return yaml.load(text); } catch (_) { throw e; }
  }
}

// ---------------------------------------------------------------- config
function parseEnvFile(text) {
  const out = {};
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*(#.*)?$/.test(line)) continue;
    const i = line.indexOf("=");
    if (i <= 0) throw new Error(`${path.basename(CONFIG)}: expected KEY=value lines`);
    out[line.slice(0, i).trim()] = line.slice(i + 1);
  }
  return out;
}

function loadConfig() {
  const text = fs.readFileSync(CONFIG, "utf8");
  if (KIND === "redis") {
    const doc = parseYamlWithFallback(text);
    const r = doc && doc.redis;
    if (!r || typeof r !== "object") throw new Error("redis.yaml: missing 'redis' mapping");
    if (r.password === undefined || r.password === null || String(r.password) === "") throw new Error("redis.yaml: missing redis.password");
    if (!r.host) throw new Error("redis.yaml: missing redis.host");
    const port = parseInt(String(r.port || "6379"), 10);
    if (!(port > 0 && port < 65536)) throw new Error("redis.yaml: bad redis.port");
    return { host: String(r.host), port, user: r.user ? String(r.user) : "default", secret: String(r.password) };
  }
  if (KIND === "pg") {
    const env = parseEnvFile(text);
    for (const k of ["PGHOST", "PGUSER", "PGPASSWORD"]) if (!env[k]) throw new Error(`pg.env: missing ${k}`);
    return { env, user: env.PGUSER, secret: env.PGPASSWORD };
  }
  if (KIND === "token") {
    const env = parseEnvFile(text);
    for (const k of ["TOKEN_API_URL", "API_TOKEN"]) if (!env[k]) throw new Error(`token.env: missing ${k}`);
    if (!/^http:\/\//.test(env.TOKEN_API_URL)) throw new Error("token.env: TOKEN_API_URL must be an http:// URL");
    return { url: env.TOKEN_API_URL, user: env.TOKEN_API_URL, secret: env.API_TOKEN };
  }
  // ssh: the whole file is the private key
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text) || !/-----END [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new Error("deploy_key: not a private key");
  }
  // Hold our own copy so a rewritten file takes effect only on reload.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rotation-app-ssh-${process.pid}-`));
  fs.chmodSync(dir, 0o700);
  const keyPath = path.join(dir, "key");
  fs.writeFileSync(keyPath, text, { mode: 0o600 });
  return { keyPath, keyDir: dir, user: TARGET, secret: text };
}

let current = null;
let loads = 0;

function fingerprint(secret) {
  return crypto.createHash("sha256").update(secret, "utf8").digest("hex");
}

function reload(initial) {
  try {
    const next = loadConfig();
    const old = current;
    current = next;
    loads++;
    if (old && old.keyDir && old.keyDir !== next.keyDir) {
      // A check that began before this reload may still be starting ssh with the old copy:
      // removing it at once made that check fail as "Permission denied" (a false AUTH_FAILED).
      setTimeout(() => {
        try { fs.rmSync(old.keyDir, { recursive: true, force: true }); } catch (_) { /* ignore */ }
      }, 15000).unref();
    }
    log(`${initial ? "loaded" : "reloaded"} config ${CONFIG} (user=${next.user}, fingerprint=${fingerprint(next.secret).slice(0, 12)}...)`);
    return true;
  } catch (e) {
    log(`CONFIG_ERROR ${initial ? "loading" : "reloading"} ${CONFIG}: ${e.message}${current ? " (keeping previous config)" : ""}`);
    return false;
  }
}

// ---------------------------------------------------------------- checks
function respCommand(parts) {
  let out = `*${parts.length}\r\n`;
  const bufs = [];
  for (const p of parts) {
    const b = Buffer.from(String(p), "utf8");
    bufs.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from("\r\n"));
  }
  return Buffer.concat([Buffer.from(out), ...bufs]);
}

function checkRedis(cfg) {
  return new Promise((resolve) => {
    let done = false;
    let buf = "";
    const finish = (r) => { if (!done) { done = true; sock.destroy(); resolve(r); } };
    const sock = net.connect({ host: cfg.host, port: cfg.port });
    sock.setTimeout(TIMEOUT_MS, () => finish({ ok: false, msg: "timeout talking to redis" }));
    sock.on("error", (e) => finish({ ok: false, msg: `redis connection error: ${e.code || e.message}` }));
    sock.on("connect", () => {
      sock.write(Buffer.concat([respCommand(["AUTH", cfg.user, cfg.secret]), respCommand(["PING"])]));
    });
    sock.on("data", (d) => {
      buf += d.toString("utf8");
      const lines = buf.split("\r\n");
      if (lines.length < 2) return;
      const first = lines[0];
      if (first[0] === "-") {
        const code = first.slice(1).split(" ")[0];
        finish({ ok: false, auth: true, msg: `redis AUTH failed: ${code}` });
        return;
      }
      if (lines.length < 3) return;
      if (first !== "+OK") return finish({ ok: false, msg: "redis: unexpected AUTH reply" });
      if (lines[1] === "+PONG") return finish({ ok: true, msg: `PONG user=${cfg.user}` });
      finish({ ok: false, msg: `redis: unexpected PING reply ${lines[1].slice(0, 60)}` });
    });
    sock.on("end", () => finish({ ok: false, msg: "redis closed the connection" }));
  });
}

function runChild(cmd, argv, env) {
  return new Promise((resolve) => {
    let out = "";
    let err = "";
    let timedOut = false;
    const child = spawn(cmd, argv, { env, stdio: ["ignore", "pipe", "pipe"] });
    const t = setTimeout(() => { timedOut = true; child.kill("SIGKILL"); }, TIMEOUT_MS);
    child.stdout.on("data", (d) => { out += d; });
    child.stderr.on("data", (d) => { err += d; });
    child.on("error", (e) => { clearTimeout(t); resolve({ code: -1, out, err: e.message, timedOut }); });
    child.on("close", (code) => { clearTimeout(t); resolve({ code, out, err, timedOut }); });
  });
}

async function checkPg(cfg) {
  const env = {
    PATH: process.env.PATH || "/usr/bin:/bin",
    PGCONNECT_TIMEOUT: "3",
    PGPASSFILE: "/dev/null",
    PGAPPNAME: "rotation-lab-pg-app",
  };
  for (const k of ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE"]) {
    if (cfg.env[k] !== undefined) env[k] = cfg.env[k];
  }
  const r = await runChild("psql", ["-X", "-w", "-Atc", "select current_user"], env);
  if (r.timedOut) return { ok: false, msg: "timeout talking to postgres" };
  if (r.code === 0) return { ok: true, msg: `current_user=${r.out.trim()}` };
  const e = r.err.trim().split("\n").pop() || `psql exit ${r.code}`;
  const auth = /authentication failed|password|no pg_hba\.conf entry|role .* does not exist|not permitted to log in/i.test(r.err);
  return { ok: false, auth, msg: `postgres: ${e.replace(/^psql: (error: )?/, "").slice(0, 200)}` };
}

async function checkSsh(cfg) {
  const argv = ["-F", "/dev/null", "-i", cfg.keyPath, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
    "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR"];
  if (KNOWN_HOSTS) argv.push("-o", `UserKnownHostsFile=${KNOWN_HOSTS}`, "-o", "GlobalKnownHostsFile=/dev/null");
  argv.push(TARGET, "true");
  const r = await runChild("ssh", argv, { PATH: process.env.PATH || "/usr/bin:/bin", HOME: process.env.HOME || "/root" });
  if (r.timedOut) return { ok: false, msg: "timeout talking to ssh target" };
  if (r.code === 0) return { ok: true, msg: `ssh ${TARGET}` };
  const e = r.err.trim().split("\n").pop() || `ssh exit ${r.code}`;
  return { ok: false, auth: /Permission denied/i.test(r.err), msg: `ssh: ${e.slice(0, 200)}` };
}

// The token API answers 401 to a token it does not know (revoked): that is the auth failure.
function checkToken(cfg) {
  return new Promise((resolve) => {
    const req = http.get(cfg.url, { headers: { authorization: `Bearer ${cfg.secret}` }, timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      if (res.statusCode === 200) resolve({ ok: true, msg: `token accepted by ${cfg.url}` });
      else resolve({ ok: false, auth: res.statusCode === 401 || res.statusCode === 403, msg: `token API answered ${res.statusCode}` });
    });
    req.on("timeout", () => req.destroy(new Error("timeout talking to the token API")));
    req.on("error", (e) => resolve({ ok: false, msg: `token API: ${e.code || e.message}` }));
  });
}

async function health() {
  if (fs.existsSync(FAIL_FILE)) return { ok: false, msg: "forced failure" };
  if (!current) return { ok: false, msg: "no valid config loaded" };
  const cfg = current;
  if (KIND === "redis") return checkRedis(cfg);
  if (KIND === "pg") return checkPg(cfg);
  if (KIND === "token") return checkToken(cfg);
  return checkSsh(cfg);
}

// ---------------------------------------------------------------- server
const [listenHost, listenPortStr] = (() => {
  const i = args.listen.lastIndexOf(":");
  return [args.listen.slice(0, i), args.listen.slice(i + 1)];
})();

const server = http.createServer(async (req, res) => {
  const url = (req.url || "/").split("?")[0];
  const send = (code, body) => {
    res.writeHead(code, { "content-type": "text/plain; charset=utf-8", connection: "close" });
    res.end(body + "\n");
  };
  try {
    if (req.method !== "GET") return send(405, "method not allowed");
    if (url === "/healthz") {
      const r = await health();
      if (r.ok) return send(200, `ok ${r.msg}`);
      if (r.auth) log(`AUTH_FAILED ${r.msg}`);
      else if (r.msg !== "forced failure") log(`HEALTH_FAILED ${r.msg}`);
      return send(503, r.msg);
    }
    if (url === "/secret-fingerprint") {
      if (!current) return send(503, "no valid config loaded");
      return send(200, fingerprint(current.secret));
    }
    if (url === "/info") {
      return send(200, JSON.stringify({ kind: KIND, pid: process.pid, config: CONFIG, user: current ? current.user : null, loads }));
    }
    return send(404, "not found");
  } catch (e) {
    log(`INTERNAL_ERROR ${e.message}`);
    return send(500, "internal error");
  }
});

function cleanup() {
  if (current && current.keyDir) { try { fs.rmSync(current.keyDir, { recursive: true, force: true }); } catch (_) { /* ignore */ } }
  if (PIDFILE) {
    try { if (fs.readFileSync(PIDFILE, "utf8").trim() === String(process.pid)) fs.unlinkSync(PIDFILE); } catch (_) { /* ignore */ }
  }
}

process.on("SIGHUP", () => { log("SIGHUP received"); reload(false); });
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => { log(`${sig} received, exiting`); cleanup(); process.exit(0); });
}

reload(true);
server.on("error", (e) => { log(`LISTEN_ERROR ${args.listen}: ${e.message}`); cleanup(); process.exit(1); });
server.listen(parseInt(listenPortStr, 10), listenHost, () => {
  if (PIDFILE) fs.writeFileSync(PIDFILE, `${process.pid}\n`);
  log(`listening on ${args.listen} (kind=${KIND})`);
});
