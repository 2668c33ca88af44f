// The `kubernetes-secret` store (stores/kubernetesSecret.ts) against a fake
// API server over HTTPS that applies JSON patches as the real one does (a
// failed `test` op answers 422): the config's schema and resolution, the
// patches each phase sends (check-and-set first, values base64 in data keys,
// generation numbers only in annotations), the refusals (a writer in
// between, a write between stage and gate, a reused value, a credential
// without the rights), and that no value or token reaches a message.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { storeSchema } from "../../stores";
import { KubernetesError, type KubernetesStore } from "../../stores/kubernetesApi";
import {
    SECRET_ANNOTATIONS,
    SECRET_KEYS,
    type SecretState,
    kubernetesAsk,
    kubernetesSecretStore,
    kubernetesStep,
    parseSecret,
    secretPatch,
} from "../../stores/kubernetesSecret";

const TOKEN = "tok-0123456789abcdef-sa";
const OLD = "old-Secret-0123456789";
const NEW = 'new-Secret-\u65e5-"q" $x';
const OTHER = "someone-else-9876";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k8s-store-"));
const tokenFile = path.join(dir, "token");
const caFile = path.join(dir, "ca.pem");

/** The fake server's state: one Secret, who may do what, and every request it got. */
const world = {
    secret: undefined as any,
    rv: 100,
    allowed: new Set(["get", "patch"]),
    requests: [] as { method: string; path: string; auth?: string; body: string }[],
};
let server: https.Server;
let url: string;

function seed(data: Record<string, string> = { current: OLD }, annotations?: Record<string, string>) {
    world.rv += 1;
    world.secret = {
        kind: "Secret",
        apiVersion: "v1",
        type: "Opaque",
        metadata: { name: "app-redis", namespace: "team", resourceVersion: String(world.rv), ...(annotations ? { annotations } : {}) },
        data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
    };
    world.requests = [];
}

/** Someone else's write: the object changes, its resourceVersion too. */
function touch() {
    world.rv += 1;
    world.secret.metadata.labels = { touched: "yes" };
    world.secret.metadata.resourceVersion = String(world.rv);
}

function applyPatch(doc: any, ops: any[]): any {
    const out = structuredClone(doc);
    for (const op of ops) {
        const parts = String(op.path)
            .split("/")
            .slice(1)
            .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
        const last = parts.pop()!;
        let at = out;
        for (const p of parts) {
            if (!at || typeof at !== "object" || !(p in at)) throw new Error(`doc is missing path: ${op.path}`);
            at = at[p];
        }
        if (op.op === "test") {
            if (JSON.stringify(at?.[last]) !== JSON.stringify(op.value)) throw new Error(`testing value ${op.path} failed: test failed`);
        } else if (op.op === "add") at[last] = op.value;
        else if (op.op === "remove") {
            if (!(last in at)) throw new Error(`unable to remove nonexistent key: ${last}`);
            delete at[last];
        } else throw new Error(`unexpected op ${op.op}`);
    }
    return out;
}

before(async () => {
    fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const r = spawnSync(
        "openssl",
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"].concat([
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            path.join(dir, "key.pem"),
            "-out",
            caFile,
        ]),
        { encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    server = https.createServer({ key: fs.readFileSync(path.join(dir, "key.pem")), cert: fs.readFileSync(caFile) }, (req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            const body = Buffer.concat(chunks).toString("utf8");
            world.requests.push({ method: req.method ?? "", path: req.url ?? "", auth: req.headers.authorization, body });
            const send = (status: number, o: unknown) => {
                res.writeHead(status, { "Content-Type": "application/json" });
                res.end(JSON.stringify(o));
            };
            const status = (code: number, message: string) => send(code, { kind: "Status", status: "Failure", message, code });
            if (req.headers.authorization !== `Bearer ${TOKEN}`) return status(401, "Unauthorized");
            if (req.url === "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") {
                const verb = JSON.parse(body).spec.resourceAttributes.verb;
                return send(201, { kind: "SelfSubjectAccessReview", status: { allowed: world.allowed.has(verb) } });
            }
            if (req.url === "/apis/authentication.k8s.io/v1/selfsubjectreviews")
                return send(201, { status: { userInfo: { username: "system:serviceaccount:team:rotation" } } });
            if (req.url !== "/api/v1/namespaces/team/secrets/app-redis") return status(404, "not found");
            if (!world.secret) return status(404, 'secrets "app-redis" not found');
            if (req.method === "GET") return send(200, world.secret);
            if (req.method === "PATCH") {
                assert.equal(req.headers["content-type"], "application/json-patch+json");
                try {
                    world.secret = applyPatch(world.secret, JSON.parse(body));
                } catch (e) {
                    return status(422, `the server rejected our request due to an error in our request: ${(e as Error).message}`);
                }
                world.rv += 1;
                world.secret.metadata.resourceVersion = String(world.rv);
                return send(200, world.secret);
            }
            return status(405, "method not allowed");
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
});

const store = (): KubernetesStore => ({
    kind: "kubernetes-secret",
    server: url,
    caFile,
    namespace: "team",
    name: "app-redis",
    auth: { method: "token", tokenFile },
});
const extra = { previous: OLD, stack: "prod", secret: "app-redis" };
const step = (action: Parameters<typeof kubernetesStep>[0]["action"], generation: number, value?: string, more = {}) =>
    kubernetesStep({ action, store: store(), generation }, value, { ...extra, ...more });
const decoded = (key: string) => (world.secret.data?.[key] === undefined ? undefined : Buffer.from(world.secret.data[key], "base64").toString("utf8"));

/** Every message and every annotation or label the server holds: no value, no token. */
function assertClean(...texts: string[]) {
    const meta = JSON.stringify({ a: world.secret?.metadata?.annotations, l: world.secret?.metadata?.labels });
    for (const t of [...texts, meta]) for (const v of [OLD, NEW, OTHER, TOKEN]) assert.ok(!t.includes(v), `no value or token in: ${t}`);
    for (const v of Object.values(world.secret?.metadata?.annotations ?? {})) assert.match(String(v), /^[0-9]+$/, "annotations hold generation numbers only");
}

async function refusal(p: Promise<unknown>): Promise<string> {
    const e = await p.then(
        () => assert.fail("expected a refusal"),
        (x: Error) => x,
    );
    assert.ok(e instanceof KubernetesError, String(e));
    assertClean(e.message);
    return e.message;
}

test("the schema: a Secret by namespace and name, credentials from a file only (no inline token), https only", () => {
    const ok = storeSchema.safeParse({
        kind: "kubernetes-secret",
        server: "https://k8s.example:6443",
        namespace: "team",
        name: "app-redis",
        auth: { method: "token", tokenFile: "t" },
    });
    assert.ok(ok.success, JSON.stringify(ok.error?.issues));
    const kc = storeSchema.parse({ kind: "kubernetes-secret", namespace: "team", name: "db.creds" });
    assert.deepEqual((kc as { auth: unknown }).auth, { method: "kubeconfig" }, "the kubeconfig is the default credential");
    const refused = (o: object) => {
        const r = storeSchema.safeParse({ kind: "kubernetes-secret", namespace: "team", name: "app-redis", ...o });
        assert.ok(!r.success, JSON.stringify(o));
        const text = JSON.stringify(r.error.issues);
        assert.ok(!text.includes("sekrit"), "a refused value is not echoed");
        return r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    };
    assert.match(refused({ auth: { method: "token", token: "sekrit" } }), /auth: Unrecognized key/i);
    assert.match(refused({ auth: { method: "token" } }), /auth.tokenFile/);
    assert.match(refused({ token: "sekrit" }), /Unrecognized key/i);
    assert.match(refused({ server: "http://k8s:8080" }), /server: must be the API server's https URL/);
    assert.match(refused({ server: "https://k8s:6443/api" }), /server: must be the API server's https URL without a path/);
    assert.match(refused({ namespace: "Team_A" }), /namespace: must be a namespace name/);
    assert.match(refused({ name: "-bad-" }), /name: must be a Secret name/);
});

test("resolve: paths made absolute and present, the server required with a token file, a kubeconfig read (its server taken, an exec user refused)", () => {
    const st = storeSchema.parse({
        kind: "kubernetes-secret",
        namespace: "team",
        name: "app-redis",
        auth: { method: "token", tokenFile: "token" },
    }) as KubernetesStore;
    assert.deepEqual(kubernetesSecretStore.resolve(st as never, dir, "secrets.a.store"), [
        `rotation:secrets.a.store.server: is required with auth.method "token" (the API server's https URL)`,
    ]);
    assert.equal((st.auth as { tokenFile: string }).tokenFile, tokenFile);
    const missing = storeSchema.parse({ kind: "kubernetes-secret", server: url, namespace: "team", name: "x", auth: { method: "token", tokenFile: "nope" } });
    assert.deepEqual(kubernetesSecretStore.resolve(missing as never, dir, "secrets.a.store"), [
        `rotation:secrets.a.store.auth.tokenFile: file not found: ${path.join(dir, "nope")}`,
    ]);

    const kubeconfig = path.join(dir, "kubeconfig");
    const write = (user: string) =>
        fs.writeFileSync(
            kubeconfig,
            `apiVersion: v1\nkind: Config\ncurrent-context: ops\nclusters:\n- name: c\n  cluster:\n    server: ${url}\n    certificate-authority: ca.pem\nusers:\n- name: u\n  user:\n${user}\ncontexts:\n- name: ops\n  context: {cluster: c, user: u}\n`,
        );
    write("    tokenFile: token");
    const kc = storeSchema.parse({ kind: "kubernetes-secret", namespace: "team", name: "app-redis", auth: { method: "kubeconfig", path: "kubeconfig" } });
    assert.deepEqual(kubernetesSecretStore.resolve(kc as never, dir, "secrets.a.store"), []);
    assert.equal((kc as KubernetesStore).server, url, "the server is the kubeconfig's");
    assert.match(kubernetesSecretStore.label(kc as never, "a"), new RegExp(`^kubernetes Secret team/app-redis at ${url}$`));

    write("    exec:\n      command: aws");
    const ex = storeSchema.parse({ kind: "kubernetes-secret", namespace: "team", name: "app-redis", auth: { method: "kubeconfig", path: kubeconfig } });
    const [problem] = kubernetesSecretStore.resolve(ex as never, dir, "secrets.a.store");
    assert.match(
        problem,
        /^rotation:secrets\.a\.store\.auth: kubeconfig .*\(context "ops", user "u"\): the user authenticates with an exec credential plugin, which this store does not run/,
    );
    const other = storeSchema.parse({
        kind: "kubernetes-secret",
        namespace: "team",
        name: "app-redis",
        auth: { method: "kubeconfig", path: kubeconfig, context: "dev" },
    });
    assert.match(kubernetesSecretStore.resolve(other as never, dir, "s")[0], /has no context "dev"/);
});

test("the patches: check-and-set first, maps added before their first member, keys escaped, values base64 in data, generations in annotations", () => {
    const bare: SecretState = {
        resourceVersion: "7",
        values: { current: OLD },
        generations: {},
        committed: 0,
        annotations: {},
        hasData: true,
        hasAnnotations: false,
        immutable: false,
    };
    const staged = secretPatch(bare, { values: { current: OLD, staged: NEW }, generations: { staged: 3 }, committed: 0 }, "7");
    assert.deepEqual(staged, [
        { op: "test", path: "/metadata/resourceVersion", value: "7" },
        { op: "add", path: `/data/${SECRET_KEYS.staged}`, value: Buffer.from(NEW).toString("base64") },
        { op: "add", path: "/metadata/annotations", value: {} },
        { op: "add", path: "/metadata/annotations/secret-rotation~1new-generation", value: "3" },
    ]);
    const full: SecretState = {
        ...bare,
        values: { current: OLD, staged: NEW },
        generations: { current: 2, staged: 3 },
        annotations: { [SECRET_ANNOTATIONS.current]: "2", [SECRET_ANNOTATIONS.staged]: "3" },
        committed: 3,
        hasAnnotations: true,
    };
    full.annotations[SECRET_ANNOTATIONS.committed] = "3";
    const promoted = secretPatch(full, { values: { current: NEW, previous: OLD }, generations: { current: 3, previous: 2 }, committed: 0 }, "9");
    assert.deepEqual(
        promoted,
        [
            { op: "test", path: "/metadata/resourceVersion", value: "9" },
            { op: "add", path: "/data/current", value: Buffer.from(NEW).toString("base64") },
            { op: "remove", path: "/data/new" },
            { op: "add", path: "/data/previous", value: Buffer.from(OLD).toString("base64") },
            { op: "add", path: "/metadata/annotations/secret-rotation~1current-generation", value: "3" },
            { op: "remove", path: "/metadata/annotations/secret-rotation~1new-generation" },
            { op: "add", path: "/metadata/annotations/secret-rotation~1previous-generation", value: "2" },
        ],
        "the committed generation is never removed",
    );
    const empty: SecretState = { ...bare, values: {}, hasData: false };
    assert.deepEqual(secretPatch(empty, { values: { current: "x" }, generations: {}, committed: 0 }, "1").slice(1, 3), [
        { op: "add", path: "/data", value: {} },
        { op: "add", path: "/data/current", value: "eA==" },
    ]);
    assert.throws(() => secretPatch(bare, { values: {}, generations: { current: -1 }, committed: 0 }, "1"), /not a generation number/);
});

test("parseSecret reads the parts and refuses what it cannot keep: a value that is not UTF-8, a committed mark that is not a number", () => {
    const s = store();
    const body = (data: Record<string, string>, annotations: Record<string, string> = {}) => ({
        kind: "Secret",
        metadata: { resourceVersion: "5", annotations },
        data,
    });
    const p = parseSecret(s, body({ current: Buffer.from(OLD).toString("base64"), other: "eA==" }, { [SECRET_ANNOTATIONS.current]: "4", unrelated: "x" }));
    assert.deepEqual(p.values, { current: OLD });
    assert.deepEqual(p.generations, { current: 4 });
    assert.equal(p.resourceVersion, "5");
    assert.throws(() => parseSecret(s, body({ current: Buffer.from([0xff, 0xfe]).toString("base64") })), /key "current" is not UTF-8 text/);
    assert.throws(() => parseSecret(s, body({}, { [SECRET_ANNOTATIONS.committed]: "soon" })), /committed-generation is not a generation number/);
    assert.throws(() => parseSecret(s, { kind: "Status" }), /not a Secret/);
});

test("a rotation's phases: read, stage (again: nothing written), the gate, promote; the token goes in the header, every write tests the resourceVersion", async () => {
    seed();
    assert.equal(await step("read", 1), OLD);
    await step("stage", 1, NEW);
    const writes = () => world.requests.filter((r) => r.method === "PATCH");
    assert.equal(writes().length, 1);
    await step("stage", 1, NEW);
    assert.equal(writes().length, 1, "staged by an earlier run: nothing written");
    assert.equal(decoded("new"), NEW);
    await step("commit", 1, NEW);
    assert.equal(world.secret.metadata.annotations[SECRET_ANNOTATIONS.committed], "1");
    await step("promote", 1, NEW);
    assert.equal(decoded("current"), NEW);
    assert.equal(decoded("previous"), OLD);
    assert.equal(decoded("new"), undefined);
    assert.deepEqual(world.secret.metadata.annotations, {
        [SECRET_ANNOTATIONS.current]: "1",
        [SECRET_ANNOTATIONS.previous]: "0",
        [SECRET_ANNOTATIONS.committed]: "1",
    });
    for (const w of writes()) assert.deepEqual(JSON.parse(w.body)[0], { op: "test", path: "/metadata/resourceVersion", value: JSON.parse(w.body)[0].value });
    assert.ok(world.requests.every((r) => r.auth === `Bearer ${TOKEN}` && !r.path.includes(TOKEN)));
    assert.equal(await step("read", 1), OLD, "read again after promotion (state lost): the secret in use before");
    assert.deepEqual(await kubernetesSecretStore.values(store() as never, "app-redis"), { current: NEW, previous: OLD, staged: undefined });
    await assert.rejects(step("guard", 1), /rollback refused: revocation of the previous secret started at generation 1 .*kubernetes Secret team\/app-redis/);
    await step("guard", 2);
    assertClean();
});

test("a writer between a phase's read and its write is refused by check-and-set, naming the Secret; nothing is written", async () => {
    seed();
    const before = JSON.stringify(world.secret.data);
    const msg = await refusal(step("stage", 1, NEW, { beforeWrite: async () => touch() }));
    assert.match(
        msg,
        /^kubernetes Secret team\/app-redis at https:\/\/127\.0\.0\.1:\d+: changed behind this rotation's back: resourceVersion \d+ is the one this phase read, but another writer has written the Secret since \(now resourceVersion \d+; check-and-set refused: HTTP 422: .*test failed\)\. Nothing was written; find out who changed it, then bin\/rotate resume --stack prod --yes\.$/,
    );
    assert.equal(JSON.stringify(world.secret.data), before);
});

test("a write from outside between stage and gate stops the gate by check-and-set, whatever it changed; nothing is committed; the next run goes on", async () => {
    seed();
    await step("stage", 1, NEW);
    touch(); // a label: the staged copy and the secret in use are intact
    const msg = await refusal(step("commit", 1, NEW));
    assert.match(
        msg,
        /team\/app-redis .*changed behind this rotation's back: resourceVersion \d+ is the one this rotation's stage left it at, but another writer has written the Secret since \(now resourceVersion \d+; check-and-set refused/,
    );
    assert.match(msg, /Nothing was revoked; the old secret still works everywhere\.$/);
    assert.equal(world.secret.metadata.annotations[SECRET_ANNOTATIONS.committed], undefined, "not committed");
    await step("commit", 1, NEW);
    assert.equal(world.secret.metadata.annotations[SECRET_ANNOTATIONS.committed], "1", "resumed: the gate reads afresh");
});

test("the gate refuses a staged copy or a secret in use changed behind the rotation's back, and stages a missing copy again (still refusing)", async () => {
    seed();
    await step("stage", 2, NEW);
    world.secret.data.new = Buffer.from(OTHER).toString("base64");
    touch();
    assert.match(await refusal(step("commit", 2, NEW)), /key "new" holds another secret than generation 2 \(resourceVersion \d+: written behind/);
    seed({ current: OTHER, new: NEW }, { [SECRET_ANNOTATIONS.staged]: "2" });
    assert.match(
        await refusal(step("commit", 2, NEW)),
        /key "current" no longer holds the secret in use .*put the secret in use back there, then bin\/rotate resume --stack prod --yes\. Nothing was revoked/,
    );
    seed({ current: OLD });
    assert.match(await refusal(step("commit", 2, NEW)), /the staged copy of generation 2 \(key "new"\) was missing .*it was staged again/);
    assert.equal(decoded("new"), NEW);
    await step("commit", 2, NEW);
    assert.equal(world.secret.metadata.annotations[SECRET_ANNOTATIONS.committed], "2");
});

test("stage refuses a new secret equal to the one in use or the one before; unstage removes only its own copy", async () => {
    seed({ current: OLD, previous: OTHER });
    assert.match(await refusal(step("stage", 3, OLD)), /the new secret of generation 3 is the same as the secret in use/);
    assert.match(await refusal(step("stage", 3, OTHER)), /the same as key "previous" \(the secret before the one in use\)/);
    await step("stage", 3, NEW);
    await step("unstage", 3, "not-ours");
    assert.equal(decoded("new"), NEW);
    await step("unstage", 3, NEW);
    assert.equal(decoded("new"), undefined);
    assert.equal(world.secret.metadata.annotations[SECRET_ANNOTATIONS.staged], undefined);
});

test("ask: each verb the rotation needs is asked (SelfSubjectAccessReview); one refused is named with the resource, before anything is read or written", async () => {
    seed({ current: OLD }, { [SECRET_ANNOTATIONS.committed]: "4" });
    assert.deepEqual(await kubernetesAsk(store()), { committed: 4, exists: true });
    const reviews = world.requests.filter((r) => r.path.endsWith("selfsubjectaccessreviews")).map((r) => JSON.parse(r.body).spec.resourceAttributes);
    assert.deepEqual(
        reviews.sort((a, b) => a.verb.localeCompare(b.verb)),
        ["get", "patch"].map((verb) => ({ namespace: "team", verb, group: "", resource: "secrets", name: "app-redis" })),
    );
    world.allowed = new Set(["get"]);
    world.requests = [];
    try {
        const msg = await refusal(kubernetesAsk(store()));
        assert.match(
            msg,
            /user "system:serviceaccount:team:rotation" cannot patch resource "secrets" named "app-redis" in namespace "team" \(SelfSubjectAccessReview\)/,
        );
        assert.match(msg, /Nothing was changed\.$/);
        assert.ok(!world.requests.some((r) => r.path.includes("/secrets/")), "the Secret was not even read");
    } finally {
        world.allowed = new Set(["get", "patch"]);
    }
    world.secret = undefined;
    assert.match(await refusal(kubernetesAsk(store())), /team\/app-redis .*no such Secret: create it holding the secret in use as key "current"/);
});

test("a wrong token is named as such (its file, never its contents); an unreachable server names the address", async () => {
    seed();
    const wrong = path.join(dir, "wrong-token");
    fs.writeFileSync(wrong, "not-the-token");
    const s = { ...store(), auth: { method: "token" as const, tokenFile: wrong } };
    const msg = await refusal(kubernetesAsk(s));
    assert.match(msg, new RegExp(`the token in ${wrong} is not valid \\(wrong, expired or revoked\\): HTTP 401`));
    assert.ok(!msg.includes("not-the-token"));
    const closed = await refusal(kubernetesAsk({ ...store(), server: "https://127.0.0.1:1" }));
    assert.match(closed, /cannot reach https:\/\/127\.0\.0\.1:1 \(POST \/apis\/authorization\.k8s\.io\/v1\/selfsubjectaccessreviews\): connection refused/);
});
