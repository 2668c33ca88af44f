/**
 * The Vault HTTP client of the `vault` credential store (stores/vault.ts): a
 * KV v2 secret reached through the Vault HTTP API, so it works against HashiCorp Vault and OpenBao alike, with no
 * provider plugin (@pulumi/vault's cannot be had on these machines). The
 * program calls `vaultPreflight` before it registers anything; the step
 * provider runs `vaultStep` for each store phase of a rotation.
 *
 * Layout at `<mount>/<path>`, the runbook's: field `current`; `new` while a
 * generation is staged; `previous` after promotion. Each value field has a
 * `<field>_generation` beside it, written in the same KV version, so a run
 * that lost its state still tells the old secret from the new one. The
 * generation whose revocation started is custom metadata
 * `rotation-committed-generation`: the forward-only rule and the refusal of
 * rollback after revocation read it, as they read a file store's marker.
 *
 * Every data write is a check-and-set on the version it read: a concurrent
 * writer is detected and named, never overwritten. The token comes from a
 * file, VAULT_TOKEN or an AppRole login; it travels only in a request header,
 * never in config, state, a command line or a message.
 */
import * as fs from "node:fs";
import { isTlsCode, type JsonReply, jsonRequest, type TransportError } from "./httpJson";

/** A Vault store's settings, resolved (stores/vault.ts declares and completes them). */
export interface VaultStore {
    kind: "vault";
    address?: string;
    mount: string;
    path: string;
    caFile?: string;
    namespace?: string;
    auth: { method: "token"; tokenFile?: string } | { method: "approle"; roleIdFile: string; secretIdFile: string; mount: string };
}

/** What a store step does (components pick one per rotation phase). */
export type VaultAction = "read" | "stage" | "unstage" | "commit" | "promote" | "guard";

export interface VaultStepSpec {
    action: VaultAction;
    store: VaultStore;
    /** The generation being rotated to (read returns generation - 1). */
    generation: number;
}

/** Custom metadata key of the generation whose revocation started. */
export const COMMITTED_KEY = "rotation-committed-generation";

/** A store failure; its message names the store and never holds a secret or the token. */
export class VaultError extends Error {
    override readonly name = "VaultError";
}

/** How errors name the store: `vault https://127.0.1.32:8200 secret/apps/redis`. */
export function storeLabel(store: VaultStore): string {
    return `vault ${store.address ?? "(no address)"} ${store.mount}/${store.path}${store.namespace ? ` (namespace ${store.namespace})` : ""}`;
}

/** A Vault reply: its status and JSON body (of many shapes, read field by field with checks). */
export type Reply = JsonReply;

/** Tests may act between a read and its check-and-set write (a concurrent writer). */
export interface VaultHooks {
    beforeWrite?: () => Promise<void>;
}

const TIMEOUT_MS = 10_000;

function request(store: VaultStore, method: string, apiPath: string, token: string | undefined, body?: unknown): Promise<Reply> {
    const label = storeLabel(store);
    if (!store.address) return Promise.reject(new VaultError(`${label}: no address: set the store's address or VAULT_ADDR`));
    const url = new URL(`/v1/${apiPath}`, store.address);
    const headers: Record<string, string> = { "X-Vault-Request": "true" };
    if (token) headers["X-Vault-Token"] = token;
    if (store.namespace) headers["X-Vault-Namespace"] = store.namespace;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload) headers["Content-Type"] = "application/json";
    let ca: Buffer | undefined;
    if (store.caFile) {
        try {
            ca = fs.readFileSync(store.caFile);
        } catch (e) {
            return Promise.reject(new VaultError(`${label}: cannot read the CA file ${store.caFile}: ${(e as NodeJS.ErrnoException).code ?? e}`));
        }
    }
    return jsonRequest(url, { method, headers, payload, timeoutMs: TIMEOUT_MS, tls: ca ? { ca } : undefined }).catch((e: TransportError) => {
        if (e.response) throw new VaultError(`${label}: ${method} ${url.pathname}: ${e.message}`);
        const why = e.code === "ECONNREFUSED" ? "connection refused" : e.timedOut ? e.message : (e.code ?? e.message);
        const tls = isTlsCode(e.code) ? " (TLS: is the store's caFile or VAULT_CACERT the CA that signed the server's certificate?)" : "";
        throw new VaultError(`${label}: cannot reach ${store.address}: ${why}${tls}`);
    });
}

/** The server's own words (Vault answers `{"errors": [...]}`), one line. */
function serverErrors(r: Reply): string {
    const errs = Array.isArray(r.body?.errors) ? r.body.errors.map(String).filter(Boolean) : [];
    return errs.length ? errs.join("; ").replace(/\s+/g, " ").slice(0, 300) : "no detail";
}

function fail(store: VaultStore, what: string, r: Reply): VaultError {
    const label = storeLabel(store);
    if (r.status === 403) {
        return new VaultError(
            `${label}: ${what}: permission denied (HTTP 403: ${serverErrors(r)}): the token is wrong or expired, or its policy does not allow this path`,
        );
    }
    return new VaultError(`${label}: ${what}: HTTP ${r.status} (${serverErrors(r)})`);
}

function readFileValue(store: VaultStore, field: string, file: string): string {
    try {
        const v = fs.readFileSync(file, "utf8").trim();
        if (!v) throw new VaultError(`${storeLabel(store)}: ${field} ${file} is empty`);
        return v;
    } catch (e) {
        if (e instanceof VaultError) throw e;
        throw new VaultError(`${storeLabel(store)}: cannot read ${field} ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
}

/** AppRole logins of this process, so one run logs in once per role (not once per step). */
const logins = new Map<string, Promise<string>>();

/** The token the store's auth gives: from its file, VAULT_TOKEN, or an AppRole login. */
export function vaultToken(store: VaultStore): Promise<string> {
    const auth = store.auth;
    if (auth.method === "token") {
        if (auth.tokenFile) return Promise.resolve(readFileValue(store, "auth.tokenFile", auth.tokenFile));
        const env = process.env.VAULT_TOKEN?.trim();
        if (!env)
            return Promise.reject(new VaultError(`${storeLabel(store)}: no token: set VAULT_TOKEN or the store's auth.tokenFile (or use auth.method approle)`));
        return Promise.resolve(env);
    }
    const key = JSON.stringify([store.address, store.namespace, auth.mount, auth.roleIdFile, auth.secretIdFile]);
    let login = logins.get(key);
    if (!login) {
        login = (async () => {
            const role_id = readFileValue(store, "auth.roleIdFile", auth.roleIdFile);
            const secret_id = readFileValue(store, "auth.secretIdFile", auth.secretIdFile);
            const r = await request(store, "POST", `auth/${auth.mount}/login`, undefined, { role_id, secret_id });
            const token = r.body?.auth?.client_token;
            if (r.status !== 200 || typeof token !== "string") {
                throw new VaultError(
                    `${storeLabel(store)}: AppRole login at auth/${auth.mount} failed: HTTP ${r.status} (${serverErrors(r)}): check auth.roleIdFile and auth.secretIdFile`,
                );
            }
            return token;
        })();
        logins.set(key, login);
        login.catch(() => logins.delete(key));
    }
    return login;
}

async function call(store: VaultStore, what: string, method: string, apiPath: string, body?: unknown, ok: number[] = [200, 204]): Promise<Reply> {
    const r = await request(store, method, apiPath, await vaultToken(store), body);
    if (!ok.includes(r.status)) throw fail(store, what, r);
    return r;
}

type KvData = Record<string, unknown>;

/** The latest version of the secret, or undefined when there is none (never written, or its latest version deleted). */
async function readKv(store: VaultStore): Promise<{ data: KvData; version: number } | undefined> {
    const r = await call(store, "read", "GET", `${store.mount}/data/${store.path}`, undefined, [200, 404]);
    if (r.status === 404) return undefined;
    const data = r.body?.data?.data;
    const version = r.body?.data?.metadata?.version;
    if (data === null || data === undefined) return undefined;
    if (typeof data !== "object" || typeof version !== "number")
        throw new VaultError(`${storeLabel(store)}: read: not a KV v2 answer (is ${store.mount} a KV version 2 mount?)`);
    return { data: data as KvData, version };
}

async function writeKv(store: VaultStore, data: KvData, readVersion: number, hooks?: VaultHooks): Promise<void> {
    await hooks?.beforeWrite?.();
    const r = await request(store, "POST", `${store.mount}/data/${store.path}`, await vaultToken(store), { options: { cas: readVersion }, data });
    if (r.status === 200 || r.status === 204) return;
    if (r.status === 400 && /check-and-set/i.test(serverErrors(r))) {
        throw new VaultError(
            `${storeLabel(store)}: changed behind this rotation's back: version ${readVersion} was read, but another writer has written since (check-and-set refused: ${serverErrors(r)}). Nothing was written; find out who changed it, then resume (bin/rotate resume).`,
        );
    }
    throw fail(store, "write", r);
}

async function readCustomMetadata(store: VaultStore): Promise<Record<string, string> | undefined> {
    const r = await call(store, "read metadata", "GET", `${store.mount}/metadata/${store.path}`, undefined, [200, 404]);
    if (r.status === 404) return undefined;
    return (r.body?.data?.custom_metadata as Record<string, string> | null) ?? {};
}

/** A `<field>_generation` as a number, undefined when absent or not a whole number. */
function generationOf(data: KvData, field: string): number | undefined {
    const v = data[`${field}_generation`];
    const n = typeof v === "number" ? v : typeof v === "string" && /^[0-9]+$/.test(v) ? Number(v) : NaN;
    return Number.isInteger(n) ? n : undefined;
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v : undefined);

function without(data: KvData, ...fields: string[]): KvData {
    const out = { ...data };
    for (const f of fields) delete out[f];
    return out;
}

/** The committed generation from the metadata (0 when none). */
function committedOf(custom: Record<string, string> | undefined): number {
    const v = custom?.[COMMITTED_KEY];
    return v && /^[0-9]+$/.test(v) ? Number(v) : 0;
}

/** Why a new secret equal to one in use is refused, and what gets forward. */
function reusedSecret(label: string, k: number, which: string, extra: VaultStepExtra): string {
    const st = extra.stack ?? "<stack>";
    const name = extra.secret ?? "<secret>";
    return (
        `${label}: the new secret of generation ${k} is the same as ${which}: once the old one is revoked, that value would be revoked with it. ` +
        `Nothing was staged or granted. Make the generator (secret.generator) give a new value, then take generation ${k} back ` +
        `(bin/rotate rollback --stack ${st} --secret ${name} --yes) or start a new one (bin/rotate start --stack ${st} --secret ${name} --yes).`
    );
}

/**
 * Before the gate commits: the staged copy of generation k is still in the
 * store. A copy that went missing (the store written behind the rotation's
 * back, keeping the secret in use) is written again and the gate still
 * refuses, so the operator learns of the write; the next run (resume) finds
 * it staged and goes on. Anything else (another secret staged, the secret in
 * use replaced, the secret gone) is refused as found.
 */
async function assertStaged(store: VaultStore, k: number, v: string, extra: VaultStepExtra, hooks?: VaultHooks): Promise<void> {
    const label = storeLabel(store);
    const kv = await readKv(store);
    if (kv && (kv.data.new === v || (kv.data.current === v && generationOf(kv.data, "current") === k))) return;
    const resume = `bin/rotate resume --stack ${extra.stack ?? "<stack>"} --yes`;
    const refuse = (what: string) => new VaultError(`${label}: ${what}. Nothing was revoked; the old secret still works everywhere.`);
    if (!kv)
        throw refuse(
            `the secret is gone (deleted behind this rotation's back after generation ${k} was staged): put the secret in use back as field "current", then ${resume}`,
        );
    const fields = Object.keys(kv.data).sort().join(", ");
    if (str(kv.data.new)) {
        throw refuse(
            `field "new" holds another secret than generation ${k} (version ${kv.version}: written behind this rotation's back after staging, fields ${fields}); find out who wrote it, remove field "new", then ${resume}`,
        );
    }
    if (extra.previous !== undefined && kv.data.current !== extra.previous) {
        throw refuse(
            `field "current" no longer holds the secret in use (version ${kv.version}: written behind this rotation's back after generation ${k} was staged, fields ${fields}); put the secret in use back there, then ${resume}`,
        );
    }
    await writeKv(store, { ...kv.data, new: v, new_generation: String(k) }, kv.version, hooks);
    throw refuse(
        `the staged copy of generation ${k} (field "new") was missing at version ${kv.version} (written behind this rotation's back after staging, fields ${fields}); it was staged again (version ${kv.version + 1}). Find out who wrote the store, then ${resume}`,
    );
}

export interface PreflightResult {
    /** The generation whose revocation started (0: none). */
    committed: number;
    /** Whether the secret exists (has a readable latest version). */
    exists: boolean;
}

/**
 * Before anything is registered: the server answers, the token (or AppRole
 * login) works, `mount` is a KV version 2 mount, and the committed
 * generation. Throws a VaultError that names the store.
 */
export async function vaultPreflight(store: VaultStore): Promise<PreflightResult> {
    const label = storeLabel(store);
    // The token first (the default policy lets every token look itself up): a wrong one is named as such.
    const self = await request(store, "GET", "auth/token/lookup-self", await vaultToken(store));
    if (self.status === 403 || self.status === 401) {
        throw new VaultError(`${label}: the token is not valid (wrong, expired or revoked): HTTP ${self.status} (${serverErrors(self)})`);
    }
    if (self.status !== 200) throw fail(store, "look up the token", self);
    const r = await call(
        store,
        `look up mount "${store.mount}"`,
        "GET",
        `sys/internal/ui/mounts/${store.mount}/${store.path}`,
        undefined,
        [200, 400, 403, 404],
    );
    const mount = r.body?.data;
    if (r.status === 403) {
        throw new VaultError(`${label}: no secrets engine is mounted at "${store.mount}/" that this token may reach (HTTP 403: ${serverErrors(r)})`);
    }
    if (r.status !== 200 || !mount || mount.path !== `${store.mount}/`) {
        throw new VaultError(
            `${label}: no secrets engine is mounted at "${store.mount}/"${r.status !== 200 ? ` (HTTP ${r.status}: ${serverErrors(r)})` : mount?.path ? ` (the path belongs to mount "${mount.path}")` : ""}`,
        );
    }
    if (mount.type !== "kv" || String(mount.options?.version ?? "1") !== "2") {
        throw new VaultError(`${label}: "${store.mount}/" is a ${mount.type} engine${mount.type === "kv" ? " of version 1" : ""}, not KV version 2`);
    }
    const custom = await readCustomMetadata(store);
    const exists = custom !== undefined && (await readKv(store)) !== undefined;
    return { committed: committedOf(custom), exists };
}

/** What a store phase knows besides the new secret: the one in use, the stack (for the way forward), test hooks. */
export interface VaultStepExtra extends VaultHooks {
    /** The secret in use (generation - 1), as the rotation read it: stage and the gate compare against it. */
    previous?: string;
    /** The stack and the secret's name, so a refusal names the exact command that gets forward. */
    stack?: string;
    secret?: string;
}

/**
 * One store phase of a rotation to `spec.generation`. `value` is the new
 * secret (stage, unstage, promote, and the gate's commit, which first makes
 * sure the staged copy is still there). Returns the previous secret for "read".
 */
export async function vaultStep(spec: VaultStepSpec, value: string | undefined, extra: VaultStepExtra = {}): Promise<string | undefined> {
    const { store, generation: k } = spec;
    const label = storeLabel(store);
    const hooks = extra;
    const need = () => {
        if (!value) throw new VaultError(`${label}: ${spec.action}: no secret given`);
        return value;
    };
    const existing = async () => {
        const kv = await readKv(store);
        if (!kv) {
            throw new VaultError(
                `${label}: no secret at this path: put the secret in use as field "current" first (e.g. bao kv put -mount=${store.mount} ${store.path} current=@file)`,
            );
        }
        return kv;
    };
    switch (spec.action) {
        case "read": {
            const { data } = await existing();
            const cur = generationOf(data, "current");
            // Already promoted by an earlier run whose state was lost: the old one is `previous`.
            if (cur === k && generationOf(data, "previous") === k - 1 && str(data.previous)) return str(data.previous);
            // Older than k - 1 is fine: generations that were rolled back never became current.
            if (cur !== undefined && cur >= k) {
                throw new VaultError(
                    `${label}: field "current" already holds generation ${cur}, not one before generation ${k}; set the secret's generation to ${cur + 1} to rotate from it`,
                );
            }
            const v = str(data.current);
            if (!v) throw new VaultError(`${label}: no field "current" (or it is empty): put the secret in use there first`);
            return v;
        }
        case "stage": {
            const v = need();
            const { data, version } = await existing();
            if (data.new === v && generationOf(data, "new") === k) return undefined; // staged by an earlier run
            if (data.current === v && generationOf(data, "current") === k) return undefined; // already promoted
            if (str(data.new) && generationOf(data, "new") === k) {
                throw new VaultError(
                    `${label}: a different secret is already staged as generation ${k} (field "new"): another rotation of this secret? Nothing was written.`,
                );
            }
            const reused =
                v === extra.previous
                    ? "the secret in use"
                    : v === data.current
                      ? 'field "current"'
                      : v === data.previous
                        ? 'field "previous" (the secret before the one in use)'
                        : undefined;
            if (reused) throw new VaultError(reusedSecret(label, k, reused, extra));
            await writeKv(store, { ...without(data, "new", "new_generation"), new: v, new_generation: String(k) }, version, hooks);
            return undefined;
        }
        case "unstage": {
            const v = need();
            const kv = await readKv(store);
            if (!kv || kv.data.new !== v) return undefined; // not ours (or gone): leave it
            await writeKv(store, without(kv.data, "new", "new_generation"), kv.version, hooks);
            return undefined;
        }
        case "promote": {
            const v = need();
            const { data, version } = await existing();
            if (data.current === v && data.new !== v) return undefined; // promoted by an earlier, interrupted run
            // With the staged copy gone after the gate (the store written behind the rotation's back),
            // the new secret is current all the same: the previous one is revoked by now and every
            // consumer holds this one, so promotion writes it there and rolls forward.
            const previousGeneration = generationOf(data, "current") ?? k - 1;
            await writeKv(
                store,
                {
                    ...without(data, "new", "new_generation"),
                    current: v,
                    current_generation: String(k),
                    ...(str(data.current) ? { previous: data.current, previous_generation: String(previousGeneration) } : {}),
                },
                version,
                hooks,
            );
            return undefined;
        }
        case "commit": {
            const custom = (await readCustomMetadata(store)) ?? {};
            if (committedOf(custom) >= k) return undefined;
            // The point of no return: the staged copy must still be there (byte for byte), or the
            // promotion after the revocation would have nothing to promote.
            if (value !== undefined) await assertStaged(store, k, value, extra, hooks);
            await call(store, "record the committed generation", "POST", `${store.mount}/metadata/${store.path}`, {
                custom_metadata: { ...custom, [COMMITTED_KEY]: String(k) },
            });
            return undefined;
        }
        case "guard": {
            const committed = committedOf(await readCustomMetadata(store));
            if (committed >= k) {
                throw new VaultError(
                    `rollback refused: revocation of the previous secret started at generation ${k} (${label}, metadata ${COMMITTED_KEY}=${committed}); the old secret may already be revoked. Roll forward instead: fix the cause and run up, or start a new generation (bin/rotate start).`,
                );
            }
            return undefined;
        }
    }
}

/** The generation whose revocation started, from the secret's metadata (0 when none); for `bin/rotate status`. */
export async function vaultCommittedGeneration(store: VaultStore): Promise<number> {
    return committedOf(await readCustomMetadata(store));
}

/** The secret's latest data, version and custom metadata, as the rotation sees them (tests and diagnostics). */
export async function vaultRead(store: VaultStore): Promise<{ data?: KvData; version?: number; custom?: Record<string, string> }> {
    const kv = await readKv(store);
    return { data: kv?.data, version: kv?.version, custom: await readCustomMetadata(store) };
}

/**
 * One call of the Vault API at `store`'s server (its address, CA file and
 * namespace; `store.mount` and `path` only name it in messages), for other
 * families than the store (generators/vaultPasswordPolicy.ts); never throws
 * on an HTTP status, and `vaultErrors` gives the server's words.
 */
export const vaultRequest = request;
export const vaultErrors = serverErrors;
