/**
 * The `vault` credential store: a KV v2 secret in HashiCorp Vault or OpenBao,
 * reached through its HTTP API by adapters/vault.ts (no provider plugin:
 * @pulumi/vault's cannot be had on these machines). Fields `current`, `new`
 * and `previous`, the committed generation in the secret's custom metadata.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { storeLabel, vaultPreflight, vaultRead } from "../adapters/vault";
import { CONFIG_NAMESPACE, httpUrl, localPath } from "../lib/fields";
import { defineStore } from "./kind";

const mountPath = (what: string) => z.string().regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, `must be ${what}`);

export const vaultStore = defineStore({
    kind: "vault",
    schema: z.strictObject({
        kind: z.literal("vault"),
        /** The Vault (or OpenBao) server; default: the VAULT_ADDR environment variable. */
        address: httpUrl().optional(),
        mount: mountPath("a KV v2 mount path such as 'secret'"),
        path: z
            .string()
            .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_.-]+)*$/, "must be a KV path such as 'apps/redis' (letters, digits, '_', '-', '.', separated by '/')")
            .refine((p) => !p.split("/").some((s) => s === "." || s === ".."), "must not contain '.' or '..' segments"),
        /** CA bundle that signs the server's certificate; default: VAULT_CACERT. */
        caFile: localPath.optional(),
        /** Enterprise / OpenBao namespace (X-Vault-Namespace); default: VAULT_NAMESPACE. */
        namespace: z
            .string()
            .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*\/?$/, "must be a namespace path such as 'team-a'")
            .optional(),
        /** How the operator authenticates; the token never enters config, state or a command line. */
        auth: z
            .discriminatedUnion("method", [
                z.strictObject({
                    method: z.literal("token"),
                    /** A file holding the token; default: the VAULT_TOKEN environment variable. */
                    tokenFile: localPath.optional(),
                }),
                z.strictObject({
                    method: z.literal("approle"),
                    roleIdFile: localPath,
                    secretIdFile: localPath,
                    /** Where the AppRole auth method is mounted. */
                    mount: mountPath("an auth mount path such as 'approle'").default("approle"),
                }),
            ])
            .default({ method: "token" }),
    }),
    label: (store) => storeLabel(store),
    /**
     * The address, CA file and namespace from VAULT_ADDR, VAULT_CACERT and
     * VAULT_NAMESPACE where the config has none, its files absolute and
     * present, a token source present. The server is asked later (`ask`).
     */
    resolve(st, baseDir, at) {
        const problems: string[] = [];
        const file = (field: string, p: string) => {
            const f = path.resolve(baseDir, p);
            if (!fs.existsSync(f)) problems.push(`${CONFIG_NAMESPACE}:${at}.${field}: file not found: ${f}`);
            return f;
        };
        st.address ??= process.env.VAULT_ADDR || undefined;
        if (!st.address) problems.push(`${CONFIG_NAMESPACE}:${at}.address: is required (or set VAULT_ADDR)`);
        else if (!/^https?:\/\/[^/?#]+\/?$/.test(st.address))
            problems.push(`${CONFIG_NAMESPACE}:${at}.address: must be the server's http(s) URL without a path, e.g. https://vault.example:8200`);
        st.caFile ??= process.env.VAULT_CACERT || undefined;
        if (st.caFile) st.caFile = file("caFile", st.caFile);
        st.namespace ??= process.env.VAULT_NAMESPACE || undefined;
        if (st.auth.method === "approle") {
            st.auth.roleIdFile = file("auth.roleIdFile", st.auth.roleIdFile);
            st.auth.secretIdFile = file("auth.secretIdFile", st.auth.secretIdFile);
        } else if (st.auth.tokenFile) {
            st.auth.tokenFile = file("auth.tokenFile", st.auth.tokenFile);
        } else if (!process.env.VAULT_TOKEN) {
            problems.push(`${CONFIG_NAMESPACE}:${at}.auth: no token: set VAULT_TOKEN, or auth.tokenFile, or use auth.method "approle"`);
        }
        return problems;
    },
    ask: (store) => vaultPreflight(store),
    step: (store, action, { generation }) => ({ op: "vault", vault: { action, store, generation } }),
    async values(store) {
        const { data } = await vaultRead(store);
        const str = (k: string) => (typeof data?.[k] === "string" ? (data[k] as string) : undefined);
        return { current: str("current"), previous: str("previous"), staged: str("new") };
    },
});
