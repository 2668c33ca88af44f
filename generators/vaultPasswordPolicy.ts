/**
 * The `vault-password-policy` generator: the new secret is drawn by a Vault
 * or OpenBao server from a named password policy
 * (`GET /v1/sys/policies/password/<policy>/generate`), so the organization's
 * own rules (length, character sets) decide what a password looks like.
 *
 * The token comes from a 0600 file (or VAULT_TOKEN) and travels only in a
 * request header: the step runs Node's HTTP client with the token read inside
 * it, so it is never in argv, the step's inputs or state. Before anything is
 * registered the server is asked (`ask`) whether the token may `read` the
 * policy's `generate` endpoint (sys/capabilities-self, which every token may
 * ask) and whether the policy exists (one draw, thrown away): a token that may
 * only generate cannot read the policy itself, and needs not.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { VaultError, vaultErrors, vaultRequest, vaultToken, type VaultStore } from "../adapters/vault";
import { httpUrl, localPath } from "../lib/fields";
import { shq } from "../lib/quote";
import { defineGenerator } from "./kind";

const POLICY_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

const schema = z.strictObject({
    kind: z.literal("vault-password-policy"),
    /** The password policy's name on the server (sys/policies/password/<policy>). */
    policy: z.string().regex(POLICY_NAME, "must be a password policy name (letters, digits, '_', '-', '.')"),
    /** The Vault (or OpenBao) server; default: VAULT_ADDR. */
    address: httpUrl().optional(),
    /** CA bundle that signs the server's certificate; default: VAULT_CACERT. */
    caFile: localPath.optional(),
    /** Enterprise / OpenBao namespace (X-Vault-Namespace); default: VAULT_NAMESPACE. */
    namespace: z
        .string()
        .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*\/?$/, "must be a namespace path such as 'team-a'")
        .optional(),
    /** A file (mode 0600) holding a token that may `read` the policy's generate endpoint; default: VAULT_TOKEN. */
    tokenFile: localPath.optional(),
});

type PolicyGenerator = z.output<typeof schema>;

/** The endpoint a value is drawn from. */
export const generatePath = (policy: string) => `sys/policies/password/${policy}/generate`;

/** The server as adapters/vault.ts calls it; its mount and path only name the policy in messages. */
function server(g: PolicyGenerator): VaultStore {
    return {
        kind: "vault",
        address: g.address,
        mount: "sys/policies/password",
        path: g.policy,
        caFile: g.caFile,
        namespace: g.namespace,
        auth: { method: "token", tokenFile: g.tokenFile },
    };
}

/**
 * Run by the step with `node -e` (the operator's Node, as bin/rotate's): argv
 * is address, policy, namespace, CA file, token file (none secret); the token
 * is read here. Prints the password and nothing else; an error names the
 * policy and the server's words, never the body of a reply that held a password.
 */
const CLIENT = `const fs = require("fs");
const [address, policy, namespace, caFile, tokenFile] = process.argv.slice(1);
const die = (m) => { process.stderr.write("password policy " + JSON.stringify(policy) + " at " + address + ": " + m + "\\n"); process.exit(1); };
let token = "";
try { token = (tokenFile ? fs.readFileSync(tokenFile, "utf8") : process.env.VAULT_TOKEN || "").trim(); } catch (e) { die("cannot read the token file " + tokenFile + ": " + (e.code || e)); }
if (!token) die(tokenFile ? "the token file " + tokenFile + " is empty" : "no token: set VAULT_TOKEN or the generator's tokenFile");
const url = new URL("/v1/sys/policies/password/" + policy + "/generate", address);
const headers = { "X-Vault-Token": token, "X-Vault-Request": "true" };
if (namespace) headers["X-Vault-Namespace"] = namespace;
const opts = { method: "GET", headers, timeout: 10000 };
if (caFile) opts.ca = fs.readFileSync(caFile);
const req = require(url.protocol === "https:" ? "https" : "http").request(url, opts, (res) => {
  const chunks = [];
  res.on("data", (c) => chunks.push(c));
  res.on("end", () => {
    let body;
    try { body = JSON.parse(Buffer.concat(chunks).toString("utf8")); } catch { body = undefined; }
    const pw = body && body.data && body.data.password;
    if (res.statusCode === 200 && typeof pw === "string" && pw) return void process.stdout.write(pw);
    const errs = body && Array.isArray(body.errors) && body.errors.length ? body.errors.map(String).join("; ").slice(0, 300) : "no detail";
    die("HTTP " + res.statusCode + " (" + errs + ")" + (res.statusCode === 403 ? ": the token may not read " + url.pathname.slice(4) : ""));
  });
});
req.on("timeout", () => req.destroy(new Error("no answer within 10s")));
req.on("error", (e) => die("cannot reach the server: " + (e.code || e.message)));
req.end();
`;

export const vaultPasswordPolicy = defineGenerator({
    kind: "vault-password-policy",
    schema,
    problems(_g, type) {
        return type === "ssh-key" ? [{ path: ["kind"], message: 'an ssh-key secret needs generator kind "command" (ed25519 via ssh-keygen)' }] : [];
    },
    step: (g, secret, generation) => ({
        title: `${secret.name}: generate secret g${generation} (password policy ${g.policy})`,
        target: { kind: "local" as const },
        script: `set -euo pipefail\nexec node -e ${shq(CLIENT)} ${[g.address ?? "", g.policy, g.namespace ?? "", g.caFile ?? "", g.tokenFile ?? ""].map(shq).join(" ")}\n`,
    }),
    nothing: "the password policy gave no password",
    /** The address, CA file and namespace from VAULT_ADDR, VAULT_CACERT and VAULT_NAMESPACE; the token file absolute, present and 0600. */
    resolve(g, baseDir, at) {
        const problems: string[] = [];
        g.address ??= process.env.VAULT_ADDR || undefined;
        if (!g.address) problems.push(`${at}.address: is required (or set VAULT_ADDR)`);
        else if (!/^https?:\/\/[^/?#]+\/?$/.test(g.address))
            problems.push(`${at}.address: must be the server's http(s) URL without a path, e.g. https://vault.example:8200`);
        g.caFile ??= process.env.VAULT_CACERT || undefined;
        if (g.caFile) {
            g.caFile = path.resolve(baseDir, g.caFile);
            if (!fs.existsSync(g.caFile)) problems.push(`${at}.caFile: file not found: ${g.caFile}`);
        }
        g.namespace ??= process.env.VAULT_NAMESPACE || undefined;
        if (g.tokenFile) {
            const f = (g.tokenFile = path.resolve(baseDir, g.tokenFile));
            const st = fs.statSync(f, { throwIfNoEntry: false });
            if (!st) problems.push(`${at}.tokenFile: file not found: ${f}`);
            else if (st.mode & 0o077) problems.push(`${at}.tokenFile: ${f} may be read by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 ${shq(f)}`);
        } else if (!process.env.VAULT_TOKEN) problems.push(`${at}.tokenFile: no token: set tokenFile (a 0600 file) or VAULT_TOKEN`);
        return problems;
    },
    async ask(g, secret, at) {
        const s = server(g);
        const endpoint = generatePath(g.policy);
        const what = `${secret.name}: password policy "${g.policy}" at ${g.address}`;
        try {
            const token = await vaultToken(s);
            const caps = await vaultRequest(s, "POST", "sys/capabilities-self", token, { paths: [endpoint] });
            if (caps.status === 401 || caps.status === 403)
                return [`${at}.tokenFile: ${what}: the token is not valid (wrong, expired or revoked): HTTP ${caps.status} (${vaultErrors(caps)})`];
            if (caps.status !== 200) return [`${at}: ${what}: cannot ask the token's capabilities: HTTP ${caps.status} (${vaultErrors(caps)})`];
            const granted: unknown = caps.body?.[endpoint] ?? caps.body?.data?.[endpoint] ?? caps.body?.capabilities;
            const list = Array.isArray(granted) ? granted.map(String) : [];
            if (!list.includes("read") && !list.includes("root")) {
                return [
                    `${at}.tokenFile: ${what}: the token may not read ${endpoint} (its capabilities there: ${list.join(", ") || "none"}); give its policy: path "${endpoint}" { capabilities = ["read"] }`,
                ];
            }
            // One draw, thrown away: the policy exists and can make a password.
            const r = await vaultRequest(s, "GET", endpoint, token);
            if (r.status === 200 && typeof r.body?.data?.password === "string" && r.body.data.password) return [];
            return [
                `${at}.policy: ${what}: ${r.status === 404 || r.status === 400 ? `no such password policy on the server` : "the policy gave no password"} (HTTP ${r.status}: ${vaultErrors(r)}); define it (bao write sys/policies/password/${g.policy} policy=@rules.hcl) or name another`,
            ];
        } catch (e) {
            if (e instanceof VaultError) return [`${at}: ${secret.name}: password policy "${g.policy}": ${e.message}`];
            throw e;
        }
    },
});
