/**
 * The `kubernetes-secret` credential store: one Secret of a Kubernetes API
 * server holds the secret in use, the new one staged beside it and the one
 * the last promotion replaced, as the data keys of SECRET_KEYS; the
 * generation of each, and the generation whose revocation started, are the
 * annotations of SECRET_ANNOTATIONS (numbers only: no value is ever an
 * annotation or a label). Keys and annotations of others are left alone.
 *
 * Every write is one JSON patch whose first operation tests
 * `metadata.resourceVersion` (check-and-set): another writer in between is
 * refused by the server, and the refusal names the Secret. The gate's write
 * is checked against the version the stage step of the same run last saw,
 * so a write from outside between staging and the gate stops the rotation
 * before anything is revoked, whatever it changed; a resumed run starts
 * from what it reads. The store's phases run in the step provider (op
 * "kubernetes"), reaching the server as stores/kubernetesApi.ts says.
 *
 * Before anything is registered (`ask`), the server is asked whether the
 * credential may do what the rotation will do (a SelfSubjectAccessReview per
 * verb of KUBERNETES_VERBS on this Secret), and for the committed generation.
 * Nothing here prints the Secret or any of its values.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { CONFIG_NAMESPACE, localPath } from "../lib/fields";
import { defineStore, type StoreValues } from "./kind";
import {
    type KubernetesStepSpec,
    type KubernetesStore,
    KubernetesError,
    type Reply,
    defaultKubeconfig,
    failure,
    kubeRequest,
    readKubeconfig,
    secretLabel,
    serverMessage,
} from "./kubernetesApi";

export { KubernetesError, type KubernetesAction, type KubernetesStepSpec, type KubernetesStore } from "./kubernetesApi";

/** The Secret's data keys, by part. Declared once: every phase, `values` and the docs take the names from here. */
export const SECRET_KEYS = {
    /** The secret in use. */
    current: "current",
    /** The new generation, staged until promotion. */
    staged: "new",
    /** The secret the last promotion replaced (bin/rotate check tells a consumer still on it). */
    previous: "previous",
} as const;

export type SecretPart = keyof typeof SECRET_KEYS;
const PARTS = Object.keys(SECRET_KEYS) as SecretPart[];

/** The Secret's annotations: the generation of each part, and the generation whose revocation started (rollback is refused at or below it). */
export const SECRET_ANNOTATIONS = {
    current: "secret-rotation/current-generation",
    staged: "secret-rotation/new-generation",
    previous: "secret-rotation/previous-generation",
    committed: "secret-rotation/committed-generation",
} as const;

/** What the rotation does to the Secret, as the API names it: each is asked before anything registers. */
export const KUBERNETES_VERBS = ["get", "patch"] as const;

/** The Secret as the rotation sees it: its version, this store's parts (decoded), their generations. */
export interface SecretState {
    resourceVersion: string;
    values: Partial<Record<SecretPart, string>>;
    generations: Partial<Record<SecretPart, number>>;
    /** The generation whose revocation started (0: none). */
    committed: number;
    /** This store's annotations the Secret has, with their text (to remove or keep them). */
    annotations: Record<string, string>;
    /** Whether the Secret has a data map and an annotations map at all: a patch adds the map before its first member. */
    hasData: boolean;
    hasAnnotations: boolean;
    immutable: boolean;
}

/** What the rotation wants the Secret to hold after a write: this store's parts only. */
export interface SecretContent {
    values: Partial<Record<SecretPart, string>>;
    generations: Partial<Record<SecretPart, number>>;
    committed: number;
}

export type PatchOp = { op: "test" | "add"; path: string; value: unknown } | { op: "remove"; path: string };

/** A JSON pointer's segment (RFC 6901): `~` and `/` escaped, as in `secret-rotation~1committed-generation`. */
const pointer = (key: string) => key.replace(/~/g, "~0").replace(/\//g, "~1");

const GENERATION = /^[0-9]{1,9}$/;

/** The Secret's parts from the API's answer; throws, naming the store, on a value that is not UTF-8 text or a committed mark that is not a number. */
export function parseSecret(store: KubernetesStore, body: unknown): SecretState {
    const label = secretLabel(store);
    // biome-ignore lint/suspicious/noExplicitAny: the API's Secret, read field by field with checks
    const b = body as any;
    const rv = b?.metadata?.resourceVersion;
    if (b?.kind !== "Secret" || typeof rv !== "string") throw new KubernetesError(`${label}: the server's answer is not a Secret`);
    const data: Record<string, unknown> = b.data && typeof b.data === "object" ? b.data : {};
    const ann: Record<string, unknown> = b.metadata.annotations && typeof b.metadata.annotations === "object" ? b.metadata.annotations : {};
    const s: SecretState = {
        resourceVersion: rv,
        values: {},
        generations: {},
        committed: 0,
        annotations: {},
        hasData: !!b.data,
        hasAnnotations: !!b.metadata.annotations,
        immutable: b.immutable === true,
    };
    for (const part of PARTS) {
        const raw = data[SECRET_KEYS[part]];
        if (typeof raw === "string" && raw !== "") {
            const bytes = Buffer.from(raw, "base64");
            const text = bytes.toString("utf8");
            if (!Buffer.from(text, "utf8").equals(bytes))
                throw new KubernetesError(`${label}: key "${SECRET_KEYS[part]}" is not UTF-8 text: this store keeps text secrets`);
            s.values[part] = text;
        }
        const g = ann[SECRET_ANNOTATIONS[part]];
        if (typeof g === "string") {
            s.annotations[SECRET_ANNOTATIONS[part]] = g;
            if (GENERATION.test(g)) s.generations[part] = Number(g);
        }
    }
    const c = ann[SECRET_ANNOTATIONS.committed];
    if (typeof c === "string") {
        if (!GENERATION.test(c)) throw new KubernetesError(`${label}: annotation ${SECRET_ANNOTATIONS.committed} is not a generation number`);
        s.annotations[SECRET_ANNOTATIONS.committed] = c;
        s.committed = Number(c);
    }
    return s;
}

/**
 * The JSON patch that turns the Secret `from` into `to` (this store's parts
 * only), guarded by a test of `metadata.resourceVersion` against `guard`.
 * Values go base64 into data keys; annotations get generation numbers only.
 */
export function secretPatch(from: SecretState, to: SecretContent, guard: string): PatchOp[] {
    const data: PatchOp[] = [];
    const ann: PatchOp[] = [];
    const annotate = (key: string, n: number | undefined) => {
        if (n !== undefined && !(Number.isInteger(n) && n >= 0)) throw new Error(`annotation ${key}: not a generation number`);
        const text = n === undefined ? undefined : String(n);
        if (text !== undefined && text !== from.annotations[key]) ann.push({ op: "add", path: `/metadata/annotations/${pointer(key)}`, value: text });
        else if (text === undefined && key in from.annotations) ann.push({ op: "remove", path: `/metadata/annotations/${pointer(key)}` });
    };
    for (const part of PARTS) {
        const [now, next] = [from.values[part], to.values[part]];
        const at = `/data/${pointer(SECRET_KEYS[part])}`;
        if (next !== undefined && next !== now) data.push({ op: "add", path: at, value: Buffer.from(next, "utf8").toString("base64") });
        else if (next === undefined && now !== undefined) data.push({ op: "remove", path: at });
        annotate(SECRET_ANNOTATIONS[part], to.generations[part]);
    }
    // The committed generation only grows: it is never removed.
    annotate(SECRET_ANNOTATIONS.committed, Math.max(to.committed, from.committed) || undefined);
    const map = (ops: PatchOp[], exists: boolean, at: string): PatchOp[] =>
        !exists && ops.some((o) => o.op === "add") ? [{ op: "add", path: at, value: {} }, ...ops] : ops;
    return [
        { op: "test", path: "/metadata/resourceVersion", value: guard },
        ...map(data, from.hasData, "/data"),
        ...map(ann, from.hasAnnotations, "/metadata/annotations"),
    ];
}

const secretPath = (store: KubernetesStore) => `/api/v1/namespaces/${encodeURIComponent(store.namespace)}/secrets/${encodeURIComponent(store.name)}`;

/** The Secret, or undefined when there is none. */
async function readSecret(store: KubernetesStore): Promise<SecretState | undefined> {
    const r = await kubeRequest(store, "GET", secretPath(store));
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw failure(store, "read the Secret", r);
    return parseSecret(store, r.body);
}

function missing(store: KubernetesStore): KubernetesError {
    return new KubernetesError(
        `${secretLabel(store)}: no such Secret: create it holding the secret in use as key "${SECRET_KEYS.current}" (kubectl create secret generic ${store.name} -n ${store.namespace} --from-file=${SECRET_KEYS.current}=<file>)`,
    );
}

async function existing(store: KubernetesStore): Promise<SecretState> {
    const s = await readSecret(store);
    if (!s) throw missing(store);
    return s;
}

/** The resourceVersion each Secret had when this process's stage step last saw it (its own write, or its read): the gate's check-and-set is against it. */
const seenAtStage = new Map<string, string>();
const secretKey = (store: KubernetesStore) => `${store.server ?? ""} ${store.namespace}/${store.name}`;

/** What a phase knows besides the new secret: the one in use, the stack and the secret's name (for the way forward). */
export interface KubernetesStepExtra {
    /** The secret in use (generation - 1), as the rotation read it: stage and the gate compare against it. */
    previous?: string;
    stack?: string;
    secret?: string;
    /** Tests: acts between the read and its check-and-set write (a concurrent writer). */
    beforeWrite?: () => Promise<void>;
}

const resumeCommand = (extra: KubernetesStepExtra) => `bin/rotate resume --stack ${extra.stack ?? "<stack>"} --yes`;

/**
 * Writes `to` over `from` as one check-and-set patch against `guard` (by
 * default the version read); returns the new resourceVersion. A refused
 * check names the Secret and both versions; `after` ends the message.
 */
async function write(
    store: KubernetesStore,
    from: SecretState,
    to: SecretContent,
    extra: KubernetesStepExtra,
    opts: { guard?: string; seen?: string; after?: string } = {},
): Promise<string> {
    const guard = opts.guard ?? from.resourceVersion;
    await extra.beforeWrite?.();
    const r = await kubeRequest(store, "PATCH", secretPath(store), secretPatch(from, to, guard), "application/json-patch+json");
    if (r.status === 200) return String(r.body?.metadata?.resourceVersion ?? "");
    // The server answers a failed `test` with a bare 422 ("the server rejected our request due to an
    // error in our request"): the Secret's version, read again, tells a stale write from a bad patch.
    const now = r.status === 409 || r.status === 422 ? await readSecret(store) : undefined;
    if (now && now.resourceVersion !== guard) {
        throw new KubernetesError(
            `${secretLabel(store)}: changed behind this rotation's back: resourceVersion ${guard} is the one ${opts.seen ?? "this phase read"}, but another writer has written the Secret since (now resourceVersion ${now.resourceVersion}; check-and-set refused: HTTP ${r.status}: ${serverMessage(r)}). Nothing was written; find out who changed it, then ${resumeCommand(extra)}.${opts.after ? ` ${opts.after}` : ""}`,
        );
    }
    if (r.status === 404) throw missing(store);
    throw failure(store, "write the Secret", r);
}

const content = (s: SecretState): SecretContent => ({ values: { ...s.values }, generations: { ...s.generations }, committed: s.committed });

function without(c: SecretContent, part: SecretPart): SecretContent {
    const out = { values: { ...c.values }, generations: { ...c.generations }, committed: c.committed };
    delete out.values[part];
    delete out.generations[part];
    return out;
}

function reusedSecret(store: KubernetesStore, k: number, which: string, extra: KubernetesStepExtra): KubernetesError {
    const st = extra.stack ?? "<stack>";
    const name = extra.secret ?? "<secret>";
    return new KubernetesError(
        `${secretLabel(store)}: the new secret of generation ${k} is the same as ${which}: once the old one is revoked, that value would be revoked with it. ` +
            `Nothing was staged or granted. Make the generator (secret.generator) give a new value, then take generation ${k} back ` +
            `(bin/rotate rollback --stack ${st} --secret ${name} --yes) or start a new one (bin/rotate start --stack ${st} --secret ${name} --yes).`,
    );
}

const NOTHING_REVOKED = "Nothing was revoked; the old secret still works everywhere.";

/**
 * The gate, before it marks the revocation as started: the staged copy of
 * generation k is still in the Secret and the secret in use is the one the
 * rotation read. A staged copy that went missing is written again and the
 * gate still refuses, so the operator learns of the write; the next run finds
 * it staged and goes on.
 */
async function assertStaged(store: KubernetesStore, s: SecretState, k: number, v: string, extra: KubernetesStepExtra): Promise<void> {
    const { values: d } = s;
    if (d.current === v && s.generations.current === k) return; // promoted by an earlier run
    const currentKept = extra.previous === undefined || d.current === extra.previous;
    if (d.staged === v && currentKept) return;
    const label = secretLabel(store);
    const refuse = (what: string) => new KubernetesError(`${label}: ${what}, then ${resumeCommand(extra)}. ${NOTHING_REVOKED}`);
    const when = `resourceVersion ${s.resourceVersion}: written behind this rotation's back after generation ${k} was staged`;
    if (d.staged !== undefined && d.staged !== v)
        throw refuse(`key "${SECRET_KEYS.staged}" holds another secret than generation ${k} (${when}); find out who wrote it, remove the key`);
    if (!currentKept) throw refuse(`key "${SECRET_KEYS.current}" no longer holds the secret in use (${when}); put the secret in use back there`);
    const version = await write(store, s, { ...content(s), values: { ...s.values, staged: v }, generations: { ...s.generations, staged: k } }, extra);
    throw new KubernetesError(
        `${label}: the staged copy of generation ${k} (key "${SECRET_KEYS.staged}") was missing at resourceVersion ${s.resourceVersion} (removed behind this rotation's back after staging); it was staged again (resourceVersion ${version}). Find out who wrote the Secret, then ${resumeCommand(extra)}. ${NOTHING_REVOKED}`,
    );
}

/**
 * One store phase of a rotation to `spec.generation`. `value` is the new
 * secret (stage, unstage, promote, and the gate's commit). Returns the
 * secret in use for "read".
 */
export async function kubernetesStep(spec: KubernetesStepSpec, value: string | undefined, extra: KubernetesStepExtra = {}): Promise<string | undefined> {
    const { store, generation: k } = spec;
    const label = secretLabel(store);
    const need = () => {
        if (!value) throw new KubernetesError(`${label}: ${spec.action}: no secret given`);
        return value;
    };
    switch (spec.action) {
        case "read": {
            const s = await existing(store);
            const cur = s.generations.current;
            // Already promoted by an earlier run whose state was lost: the one in use before is `previous`.
            if (cur === k && s.generations.previous === k - 1 && s.values.previous) return s.values.previous;
            // Older than k - 1 is fine: generations that were rolled back never became current.
            if (cur !== undefined && cur >= k) {
                throw new KubernetesError(
                    `${label}: key "${SECRET_KEYS.current}" already holds generation ${cur}, not one before generation ${k}; set the secret's generation to ${cur + 1} to rotate from it`,
                );
            }
            if (!s.values.current) throw new KubernetesError(`${label}: no key "${SECRET_KEYS.current}" (or it is empty): put the secret in use there first`);
            return s.values.current;
        }
        case "stage": {
            const v = need();
            const s = await existing(store);
            const done = (s.values.staged === v && s.generations.staged === k) || (s.values.current === v && s.generations.current === k);
            if (!done) {
                if (s.values.staged && s.generations.staged === k) {
                    throw new KubernetesError(
                        `${label}: a different secret is already staged as generation ${k} (key "${SECRET_KEYS.staged}"): another rotation of this secret? Nothing was written.`,
                    );
                }
                const reused =
                    v === extra.previous
                        ? "the secret in use"
                        : v === s.values.current
                          ? `key "${SECRET_KEYS.current}"`
                          : v === s.values.previous
                            ? `key "${SECRET_KEYS.previous}" (the secret before the one in use)`
                            : undefined;
                if (reused) throw reusedSecret(store, k, reused, extra);
                if (s.immutable)
                    throw new KubernetesError(`${label}: the Secret is immutable: nothing can be staged in it; recreate it without immutable: true`);
                const version = await write(
                    store,
                    s,
                    { ...content(s), values: { ...s.values, staged: v }, generations: { ...s.generations, staged: k } },
                    extra,
                );
                seenAtStage.set(secretKey(store), version);
            } else {
                seenAtStage.set(secretKey(store), s.resourceVersion);
            }
            return undefined;
        }
        case "unstage": {
            const v = need();
            const s = await readSecret(store);
            if (!s || s.values.staged !== v) return undefined; // not ours (or gone): leave it
            await write(store, s, without(content(s), "staged"), extra);
            return undefined;
        }
        case "commit": {
            // The version this run's stage saw, used once: a run that goes on after this gate's
            // refusal (a new process, or a retry) starts from what it reads.
            const seen = seenAtStage.get(secretKey(store));
            seenAtStage.delete(secretKey(store));
            const s = await existing(store);
            if (s.committed >= k) return undefined;
            // The point of no return: the staged copy must still be there (byte for byte), or the
            // promotion after the revocation would have nothing to promote.
            if (value !== undefined) await assertStaged(store, s, k, value, extra);
            await write(store, s, { ...content(s), committed: k }, extra, {
                guard: seen ?? s.resourceVersion,
                seen: seen ? `this rotation's stage left it at` : undefined,
                after: NOTHING_REVOKED,
            });
            return undefined;
        }
        case "promote": {
            const v = need();
            const s = await existing(store);
            if (s.values.current === v && s.values.staged !== v) return undefined; // promoted by an earlier, interrupted run
            // With the staged copy gone after the gate (the Secret written behind the rotation's back),
            // the new secret is current all the same: the previous one is revoked by now and every
            // consumer holds this one, so promotion writes it there and rolls forward.
            const next = without(content(s), "staged");
            next.values.current = v;
            next.generations.current = k;
            if (s.values.current) {
                next.values.previous = s.values.current;
                next.generations.previous = s.generations.current ?? k - 1;
            }
            await write(store, s, next, extra);
            return undefined;
        }
        case "guard": {
            const s = await readSecret(store);
            if (s && s.committed >= k) {
                throw new KubernetesError(
                    `rollback refused: revocation of the previous secret started at generation ${k} (${label}, annotation ${SECRET_ANNOTATIONS.committed}=${s.committed}); the old secret may already be revoked. Roll forward instead: fix the cause and run up, or start a new generation (bin/rotate start).`,
                );
            }
            return undefined;
        }
    }
}

/** Whether the credential may `verb` this Secret, by the server's SelfSubjectAccessReview. */
async function mayDo(store: KubernetesStore, verb: string): Promise<{ allowed: boolean; reason?: string }> {
    const r = await kubeRequest(store, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SelfSubjectAccessReview",
        spec: { resourceAttributes: { namespace: store.namespace, verb, group: "", resource: "secrets", name: store.name } },
    });
    if (r.status !== 201 && r.status !== 200) throw failure(store, `ask whether it may ${verb} the Secret (SelfSubjectAccessReview)`, r);
    return { allowed: r.body?.status?.allowed === true, reason: typeof r.body?.status?.reason === "string" ? r.body.status.reason : undefined };
}

/** Who the server takes the credential for (SelfSubjectReview), for messages; undefined when it does not say. */
async function whoAmI(store: KubernetesStore): Promise<string | undefined> {
    const r: Reply = await kubeRequest(store, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {
        apiVersion: "authentication.k8s.io/v1",
        kind: "SelfSubjectReview",
    }).catch(() => ({ status: 0, body: undefined }));
    const name = r.body?.status?.userInfo?.username;
    return typeof name === "string" ? name : undefined;
}

/**
 * Before anything is registered: the server answers, the credential is
 * valid and may do every verb of KUBERNETES_VERBS on this Secret, the Secret
 * exists with the secret in use and can be written; and its committed
 * generation. Throws a KubernetesError naming the Secret (and each verb
 * refused, with the resource).
 */
export async function kubernetesAsk(store: KubernetesStore): Promise<{ committed: number; exists: boolean }> {
    const label = secretLabel(store);
    const verdicts = await Promise.all(KUBERNETES_VERBS.map(async (verb) => ({ verb, ...(await mayDo(store, verb)) })));
    const denied = verdicts.filter((v) => !v.allowed);
    if (denied.length) {
        const who = (await whoAmI(store)) ?? "the credential";
        const each = denied.map((d) => `cannot ${d.verb} resource "secrets" named "${store.name}" in namespace "${store.namespace}"`).join(", and ");
        throw new KubernetesError(
            `${label}: ${who === "the credential" ? who : `user "${who}"`} ${each} (SelfSubjectAccessReview). The rotation reads the Secret (get) and writes each phase as a patch (patch): grant ${KUBERNETES_VERBS.join(" and ")} on this Secret, e.g. a Role and RoleBinding as in docs/kinds.md. Nothing was changed.`,
        );
    }
    const s = await readSecret(store);
    if (!s) throw missing(store);
    if (s.immutable) throw new KubernetesError(`${label}: the Secret is immutable: the rotation cannot write it; recreate it without immutable: true`);
    if (!s.values.current) throw new KubernetesError(`${label}: no key "${SECRET_KEYS.current}" (or it is empty): put the secret in use there first`);
    return { committed: s.committed, exists: true };
}

/** A DNS-1123 label (a namespace's name). */
const dnsLabel = z
    .string()
    .regex(
        /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
        "must be a namespace name: lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit",
    );
/** A DNS-1123 subdomain (a Secret's name). */
const dnsSubdomain = z
    .string()
    .max(253, "must be at most 253 characters")
    .regex(
        /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
        "must be a Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
    );

export const kubernetesSecretStore = defineStore({
    kind: "kubernetes-secret",
    schema: z.strictObject({
        kind: z.literal("kubernetes-secret"),
        /** The API server's https URL; with a kubeconfig, its cluster's server when left out. */
        server: z
            .url({ protocol: /^https$/, error: "must be the API server's https URL, e.g. https://10.0.0.1:6443" })
            .refine((u) => /^https:\/\/[^/?#]+\/?$/.test(u), "must be the API server's https URL without a path")
            .optional(),
        /** The CA bundle that signs the server's certificate; with a kubeconfig, its cluster's when left out. */
        caFile: localPath.optional(),
        namespace: dnsLabel,
        /** The Secret's name. */
        name: dnsSubdomain,
        /** The credential, from a file only: a service-account token file, or a kubeconfig (KUBECONFIG or ~/.kube/config when no path is given). */
        auth: z
            .discriminatedUnion("method", [
                z.strictObject({ method: z.literal("token"), tokenFile: localPath }),
                z.strictObject({
                    method: z.literal("kubeconfig"),
                    path: localPath.optional(),
                    /** The kubeconfig's context; default: its current-context. */
                    context: z.string().min(1, "must not be empty").optional(),
                }),
            ])
            .default({ method: "kubeconfig" }),
    }),
    label: (store) => secretLabel(store),
    /**
     * Paths made absolute and present; with a kubeconfig, the file read now
     * (its context, cluster and user usable) and the server taken from it
     * when the store names none. The server is asked later (`ask`).
     */
    resolve(st, baseDir, at) {
        const problems: string[] = [];
        const field = `${CONFIG_NAMESPACE}:${at}`;
        const file = (name: string, p: string) => {
            const f = path.resolve(baseDir, p);
            if (!fs.existsSync(f)) problems.push(`${field}.${name}: file not found: ${f}`);
            return f;
        };
        if (st.caFile) st.caFile = file("caFile", st.caFile);
        if (st.auth.method === "token") {
            st.auth.tokenFile = file("auth.tokenFile", st.auth.tokenFile);
            if (!st.server) problems.push(`${field}.server: is required with auth.method "token" (the API server's https URL)`);
            return problems;
        }
        if (!st.auth.path && process.env.KUBECONFIG?.includes(":"))
            problems.push(`${field}.auth.path: KUBECONFIG names several files; name the one to use here`);
        st.auth.path = file("auth.path", st.auth.path ?? defaultKubeconfig());
        if (problems.length) return problems;
        try {
            const k = readKubeconfig(st.auth.path, st.auth.context);
            st.server ??= k.server;
            if (!st.server || !/^https:\/\/[^/?#]+\/?$/.test(st.server))
                problems.push(
                    `${field}.server: the kubeconfig's cluster has no https server URL (${JSON.stringify(k.server ?? null)}); set the store's server`,
                );
        } catch (e) {
            if (!(e instanceof KubernetesError)) throw e;
            problems.push(`${field}.auth: ${e.message}`);
        }
        return problems;
    },
    ask: (store) => kubernetesAsk(store),
    step: (store, action, { generation }) => ({ op: "kubernetes", kubernetes: { action, store, generation } }),
    async values(store): Promise<StoreValues> {
        const s = await existing(store);
        return { current: s.values.current, previous: s.values.previous, staged: s.values.staged };
    },
});
