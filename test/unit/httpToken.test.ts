// The http-token source's scripts, run for real against local HTTP(S)
// servers: curl must not glob the operator's URLs (`{1,2}` would send two
// requests and read "200200"), and a private CA is trusted only through
// source.caFile.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { sourceScripts } from "../../sources";
import { stdinFields } from "../../lib/quote";

test("verify sends one request per token to a URL with braces, and tells new from old", async () => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
        seen.push(req.url ?? "");
        res.statusCode = req.headers.authorization === "Bearer tok-new-123" ? 200 : 401;
        res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
        const scripts = sourceScripts(
            {
                kind: "http-token",
                createUrl: `${base}/tokens`,
                deleteUrl: `${base}/tokens/{fingerprint}`,
                testUrl: `${base}/check?probe={1,2}`,
                adminTokenFile: "/nonexistent",
            },
            { generation: 2, secretName: "api" },
        );
        const child = spawn("bash", ["-c", scripts.verify], { stdio: ["pipe", "pipe", "pipe"] });
        let err = "";
        child.stderr.on("data", (d) => (err += d));
        child.stdin.end(stdinFields("tok-old-456", "tok-new-123"));
        const code = await new Promise<number | null>((r) => child.on("close", r));
        assert.equal(code, 0, err);
        assert.deepEqual(seen, ["/check?probe={1,2}", "/check?probe={1,2}"], "one request per token, the URL as written");
    } finally {
        server.close();
    }
});

test("an https API signed by a private CA: trusted with source.caFile, and without it the failure says so", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "http-token-tls-"));
    const ssl = (...args: string[]) => assert.equal(spawnSync("openssl", args, { cwd: dir, encoding: "utf8" }).status, 0);
    ssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=rotation test CA",
    );
    ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1");
    fs.writeFileSync(path.join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1\n");
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.ext");
    const server = https.createServer(
        { key: fs.readFileSync(path.join(dir, "server.key")), cert: fs.readFileSync(path.join(dir, "server.pem")) },
        (req, res) => {
            res.statusCode = req.headers.authorization === "Bearer tok-new-123" ? 200 : req.method === "DELETE" ? 204 : 401;
            res.end();
        },
    );
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const base = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
    fs.writeFileSync(path.join(dir, "admin"), "admin-token");
    const run = async (script: string, stdin: Buffer | string) => {
        const child = spawn("bash", ["-c", script], { stdio: ["pipe", "pipe", "pipe"] });
        let err = "";
        child.stderr.on("data", (d) => (err += d));
        child.stdin.end(stdin);
        return { code: await new Promise<number | null>((r) => child.on("close", r)), err };
    };
    try {
        const src = {
            kind: "http-token" as const,
            createUrl: `${base}/tokens`,
            deleteUrl: `${base}/tokens/{fingerprint}`,
            testUrl: `${base}/whoami`,
            adminTokenFile: path.join(dir, "admin"),
        };
        const trusted = sourceScripts({ ...src, caFile: path.join(dir, "ca.pem") }, { generation: 2, secretName: "api" });
        assert.deepEqual(await run(trusted.verify, stdinFields("tok-old-456", "tok-new-123")), { code: 0, err: "" });
        assert.equal((await run(trusted.revoke, stdinFields("tok-old-456"))).code, 0);
        const untrusted = sourceScripts(src, { generation: 2, secretName: "api" });
        const refused = await run(untrusted.revoke, stdinFields("tok-old-456"));
        assert.notEqual(refused.code, 0);
        assert.match(
            refused.err,
            /http-token source of api: DELETE https:\/\/127\.0\.0\.1:\d+\/tokens\/[0-9a-f]{16} \(source\.deleteUrl\) answered 000 \(curl: the server's certificate is not trusted; source\.caFile names the CA that signs it\)/,
        );
    } finally {
        server.close();
    }
});
