/**
 * How the `kubernetes-secret` store (stores/kubernetesSecret.ts) reaches a
 * Kubernetes API server: its credentials, from a kubeconfig or a
 * service-account token file, and one HTTPS request at a time. No client
 * library and no kubectl: the token (or client key) is read from its file
 * when a request is made and travels only in that request's header (or TLS
 * handshake), never in config, state, a command line or a message.
 *
 * A kubeconfig is read as kubectl reads one file: the context (the store's,
 * or the file's current-context), its cluster's `server` and
 * `certificate-authority[-data]`, its user's `token`, `tokenFile` or
 * `client-certificate[-data]` with `client-key[-data]`; relative paths are
 * against the kubeconfig's directory. An `exec` or `auth-provider` user, a
 * username and password, or `insecure-skip-tls-verify` are refused, naming
 * the kubeconfig and the user.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import yaml from "js-yaml";
import { StoreError } from "../lib/errors";
import { isTlsCode, type JsonReply, jsonRequest, type TransportError } from "../adapters/httpJson";

/** The store's settings, resolved (stores/kubernetesSecret.ts declares and completes them). */
export interface KubernetesStore {
    kind: "kubernetes-secret";
    /** The API server's https URL; with a kubeconfig, its cluster's server when left out. */
    server?: string;
    /** The CA bundle that signs the server's certificate; with a kubeconfig, its cluster's when left out. */
    caFile?: string;
    namespace: string;
    name: string;
    auth: { method: "token"; tokenFile: string } | { method: "kubeconfig"; path?: string; context?: string };
}

/** What a store phase does (components pick one per rotation phase; "unstage" undoes a "stage"). */
export type KubernetesAction = "read" | "stage" | "unstage" | "commit" | "promote" | "guard";

/** One store phase, as the step provider receives it (op "kubernetes"; stores/kubernetesSecret.ts runs it). */
export interface KubernetesStepSpec {
    action: KubernetesAction;
    store: KubernetesStore;
    /** The generation being rotated to ("read" returns the one before). */
    generation: number;
}

/** A failure of this store; its message names the Secret and never holds a value or a credential. */
export class KubernetesError extends StoreError {
    override readonly name = "KubernetesError";
}

/** How messages name the store: `kubernetes Secret rotation-lab/app-redis at https://127.0.1.40:6443`. */
export function secretLabel(store: Pick<KubernetesStore, "namespace" | "name" | "server" | "auth">): string {
    const where = store.server ?? (store.auth.method === "kubeconfig" ? `the server of kubeconfig ${store.auth.path ?? "~/.kube/config"}` : "(no server)");
    return `kubernetes Secret ${store.namespace}/${store.name} at ${where}`;
}

/** Where the kubeconfig is when the store names none: KUBECONFIG (one file), else ~/.kube/config. */
export function defaultKubeconfig(): string {
    return process.env.KUBECONFIG || path.join(os.homedir(), ".kube", "config");
}

/** What one request needs. Never printed: it may hold a token or a client key. */
interface Connection {
    server: URL;
    ca?: Buffer;
    token?: string;
    cert?: Buffer;
    key?: Buffer;
    /** How messages name the credential: a file, never its contents. */
    credential: string;
}

// biome-ignore lint/suspicious/noExplicitAny: a kubeconfig is YAML of many shapes, read field by field with checks
type Doc = any;

/** The parts of a kubeconfig this store uses, its paths absolute; throws naming the file and what is wrong. */
export function readKubeconfig(
    file: string,
    context?: string,
): {
    server?: string;
    caFile?: string;
    caData?: Buffer;
    token?: string;
    tokenFile?: string;
    certFile?: string;
    certData?: Buffer;
    keyFile?: string;
    keyData?: Buffer;
    user: string;
} {
    let doc: Doc;
    try {
        doc = yaml.load(fs.readFileSync(file, "utf8"));
    } catch (e) {
        const why = (e as NodeJS.ErrnoException).code ?? (e as Error).name;
        throw new KubernetesError(`kubeconfig ${file} cannot be read: ${why}`);
    }
    if (!doc || typeof doc !== "object") throw new KubernetesError(`kubeconfig ${file} is not a kubeconfig (no mapping)`);
    const named = (list: string, n: string) => (Array.isArray(doc[list]) ? doc[list] : []).find((x: Doc) => x?.name === n);
    const ctxName = context ?? doc["current-context"];
    if (!ctxName) throw new KubernetesError(`kubeconfig ${file} has no current-context: set the store's auth.context`);
    const ctx = named("contexts", String(ctxName))?.context;
    if (!ctx) throw new KubernetesError(`kubeconfig ${file} has no context "${ctxName}"`);
    const cluster = named("clusters", String(ctx.cluster))?.cluster;
    if (!cluster) throw new KubernetesError(`kubeconfig ${file}: context "${ctxName}" names cluster "${ctx.cluster}", which the file does not hold`);
    const userName = String(ctx.user ?? "");
    const user = named("users", userName)?.user ?? {};
    const at = (p: unknown) => (typeof p === "string" && p ? path.resolve(path.dirname(file), p) : undefined);
    const b64 = (v: unknown) => (typeof v === "string" && v ? Buffer.from(v, "base64") : undefined);
    const who = `kubeconfig ${file} (context "${ctxName}", user "${userName}")`;
    if (cluster["insecure-skip-tls-verify"] === true)
        throw new KubernetesError(`${who}: insecure-skip-tls-verify is set: this store always verifies the server's certificate; give its CA instead`);
    for (const [field, what] of [
        ["exec", "an exec credential plugin"],
        ["auth-provider", "an auth provider"],
        ["username", "a username and password"],
    ] as const) {
        if (user[field] !== undefined)
            throw new KubernetesError(`${who}: the user authenticates with ${what}, which this store does not run: use a token file (auth.method "token")`);
    }
    const out = {
        server: typeof cluster.server === "string" ? cluster.server : undefined,
        caFile: at(cluster["certificate-authority"]),
        caData: b64(cluster["certificate-authority-data"]),
        token: typeof user.token === "string" && user.token ? user.token : undefined,
        tokenFile: at(user.tokenFile),
        certFile: at(user["client-certificate"]),
        certData: b64(user["client-certificate-data"]),
        keyFile: at(user["client-key"]),
        keyData: b64(user["client-key-data"]),
        user: who,
    };
    const cert = out.certFile || out.certData;
    const key = out.keyFile || out.keyData;
    if (!out.token && !out.tokenFile && !(cert && key)) {
        throw new KubernetesError(`${who}: the user has no credential this store uses (token, tokenFile, or client-certificate with client-key)`);
    }
    return out;
}

function readFile(what: string, file: string): Buffer {
    try {
        return fs.readFileSync(file);
    } catch (e) {
        throw new KubernetesError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
}

/** A token file's token: its first line, trimmed; an empty one is refused. */
function readToken(what: string, file: string): string {
    const t = readFile(what, file).toString("utf8").trim();
    if (!t) throw new KubernetesError(`${what} ${file} is empty`);
    if (/[\r\n\0]/.test(t)) throw new KubernetesError(`${what} ${file} holds more than one line: a token file holds the token alone`);
    return t;
}

/** The connection the store's settings give, its credential read from its file now (a token that rotates is read afresh). */
function connect(store: KubernetesStore): Connection {
    const label = secretLabel(store);
    try {
        let server = store.server;
        let ca = store.caFile ? readFile("the CA file", store.caFile) : undefined;
        if (store.auth.method === "token") {
            if (!server) throw new KubernetesError("no server: set the store's server");
            return { server: new URL(server), ca, token: readToken("the token file", store.auth.tokenFile), credential: `token file ${store.auth.tokenFile}` };
        }
        const file = store.auth.path ?? defaultKubeconfig();
        const k = readKubeconfig(file, store.auth.context);
        server ??= k.server;
        if (!server) throw new KubernetesError(`${k.user}: its cluster has no server`);
        ca ??= k.caData ?? (k.caFile ? readFile("the kubeconfig's certificate-authority", k.caFile) : undefined);
        const conn: Connection = { server: new URL(server), ca, credential: k.user };
        if (k.token) conn.token = k.token;
        else if (k.tokenFile) conn.token = readToken("the kubeconfig's tokenFile", k.tokenFile);
        else {
            conn.cert = k.certData ?? readFile("the kubeconfig's client-certificate", k.certFile!);
            conn.key = k.keyData ?? readFile("the kubeconfig's client-key", k.keyFile!);
        }
        return conn;
    } catch (e) {
        if (e instanceof KubernetesError) throw new KubernetesError(`${label}: ${e.message}`);
        throw e;
    }
}

/** An API server's reply: its status and JSON body (of many shapes, read field by field with checks). */
export type Reply = JsonReply;

const TIMEOUT_MS = 10_000;

/**
 * One request to the API server, as the store's credential. `body` is sent
 * as JSON, with `contentType` (a JSON patch's is its own). Rejects, naming
 * the store, when the credential cannot be read or the server cannot be
 * reached; any HTTP answer resolves.
 */
export async function kubeRequest(store: KubernetesStore, method: string, apiPath: string, body?: unknown, contentType = "application/json"): Promise<Reply> {
    const conn = connect(store);
    const label = secretLabel(store);
    const url = new URL(apiPath, conn.server);
    if (url.protocol !== "https:") throw new KubernetesError(`${label}: the server must be https (not ${conn.server.protocol})`);
    const headers: Record<string, string> = { Accept: "application/json" };
    if (conn.token) headers.Authorization = `Bearer ${conn.token}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) headers["Content-Type"] = contentType;
    const tls = { ...(conn.ca ? { ca: conn.ca } : {}), ...(conn.cert ? { cert: conn.cert, key: conn.key } : {}) };
    try {
        return await jsonRequest(url, { method, headers, payload, timeoutMs: TIMEOUT_MS, tls });
    } catch (e) {
        const { code, message } = e as TransportError;
        const why = code === "ECONNREFUSED" ? "connection refused" : (code ?? message);
        const hint = isTlsCode(code)
            ? " (TLS: is the store's caFile, or the kubeconfig's certificate-authority, the CA that signed the server's certificate?)"
            : "";
        throw new KubernetesError(`${label}: cannot reach ${conn.server.origin} (${method} ${url.pathname}): ${why}${hint}`);
    }
}

/** The server's own words (a `Status` object's message), one line; never a Secret's data (a Status holds none). */
export function serverMessage(r: Reply): string {
    const m = typeof r.body?.message === "string" ? r.body.message : "";
    return m ? m.replace(/\s+/g, " ").slice(0, 300) : "no detail";
}

/** A failed answer as an error naming the store, what was being done, and the credential when it is refused. */
export function failure(store: KubernetesStore, what: string, r: Reply): KubernetesError {
    const label = secretLabel(store);
    const cred = store.auth.method === "token" ? `the token in ${store.auth.tokenFile}` : `the kubeconfig's user`;
    if (r.status === 401) return new KubernetesError(`${label}: ${what}: ${cred} is not valid (wrong, expired or revoked): HTTP 401 (${serverMessage(r)})`);
    if (r.status === 403) return new KubernetesError(`${label}: ${what}: forbidden (HTTP 403: ${serverMessage(r)})`);
    return new KubernetesError(`${label}: ${what}: HTTP ${r.status} (${serverMessage(r)})`);
}
