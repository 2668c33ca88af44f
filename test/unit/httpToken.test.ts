// The http-token source's verify script, run for real against a local HTTP
// server: curl must not glob the operator's URLs (`{1,2}` would send two
// requests and read "200200").
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as http from "node:http";
import { test } from "node:test";
import { sourceScripts } from "../../lib/scripts/source";
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
            { kind: "http-token", createUrl: `${base}/tokens`, deleteUrl: `${base}/tokens/{fingerprint}`, testUrl: `${base}/check?probe={1,2}`, adminTokenFile: "/nonexistent" },
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
