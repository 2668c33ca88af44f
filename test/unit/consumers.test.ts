// The consumer family (consumers/): an entry without `kind` is still the
// config-file consumer it always was; the CI consumers' config is refused
// with messages that name the field; gitea-actions and github-actions speak
// their APIs' contracts (against a local HTTP server that records every
// request: the real Gitea is the end-to-end test's); GitHub's sealing is
// proven for real by opening the sealed box with the key pair's secret key.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import sodium from "libsodium-wrappers";
import { parseEnvironment, secretRotation } from "../../lib/config";
import { apiConsumerOf, consumerOf, CONSUMERS } from "../../consumers";
import { sealForGitHub } from "../../consumers/githubActions";
import { apiRollout } from "../../provider/apiConsumer";
import { stdinFields } from "../../lib/quote";
import { rawEnvironment } from "./harness";
import { problemsOf } from "./configProblems";

type Obj = Record<string, any>;
interface Seen {
    method: string;
    url: string;
    auth?: string;
    body?: Obj;
}

let server: http.Server;
let base: string;
const seen: Seen[] = [];
/** The fake API's state and switches. */
const state = { secrets: new Map<string, Obj>(), variables: new Map<string, string>(), failPut: 0, runStatus: "queued" };
let tokenFile: string;
const TOKEN = "unit-admin-token-7f3a9c";
let keys: { publicKey: Uint8Array; privateKey: Uint8Array };

function json(res: http.ServerResponse, status: number, body?: unknown) {
    res.writeHead(status, { "content-type": "application/json" }).end(body === undefined ? undefined : JSON.stringify(body));
}

/** Gitea's (under /api/v1) and GitHub's (under /gh) Actions endpoints, as much as the consumers use. */
function route(req: http.IncomingMessage, body: Obj | undefined, res: http.ServerResponse) {
    const url = new URL(req.url!, "http://x");
    const p = url.pathname.replace(/^\/api\/v1|^\/gh/, "");
    const m = (re: RegExp) => re.exec(p);
    let x: RegExpExecArray | null;
    if (req.method === "GET" && p === "/repos/o/r") return json(res, 200, { full_name: "o/r" });
    if (req.method === "GET" && p === "/repos/o/r/actions/secrets/public-key")
        return json(res, 200, { key_id: "k1", key: sodium.to_base64(keys.publicKey, sodium.base64_variants.ORIGINAL) });
    if (req.method === "GET" && p === "/repos/o/r/actions/secrets") {
        const list = [...state.secrets.keys()].map((name) => ({ name }));
        return json(res, 200, url.pathname.startsWith("/gh") ? { total_count: list.length, secrets: list } : list);
    }
    if (req.method === "PUT" && (x = m(/^\/repos\/o\/r\/actions\/secrets\/([A-Z_0-9]+)$/))) {
        if (state.failPut) return json(res, state.failPut, { message: "server broke" });
        const created = !state.secrets.has(x[1]);
        state.secrets.set(x[1], body ?? {});
        return json(res, created ? 201 : 204);
    }
    if ((x = m(/^\/repos\/o\/r\/actions\/variables\/([A-Z_0-9]+)$/))) {
        const name = x[1];
        if (req.method === "GET")
            return state.variables.has(name) ? json(res, 200, { name, data: state.variables.get(name), value: state.variables.get(name) }) : json(res, 404);
        if (req.method === "POST") {
            if (state.variables.has(name)) return json(res, 409, { message: "exists" });
            state.variables.set(name, body!.value);
            return json(res, 201);
        }
        if (req.method === "PUT" || req.method === "PATCH") {
            if (!state.variables.has(name)) return json(res, 404);
            state.variables.set(name, body!.value);
            return json(res, 204);
        }
    }
    if (req.method === "POST" && p === "/repos/o/r/actions/variables") {
        state.variables.set(body!.name, body!.value);
        return json(res, 201);
    }
    if (req.method === "POST" && p === "/repos/o/r/actions/workflows/deploy.yml/dispatches") return json(res, 200, { workflow_run_id: 7 });
    if (req.method === "GET" && p === "/repos/o/r/actions/runs/7")
        return json(res, 200, { id: 7, status: state.runStatus, conclusion: state.runStatus === "completed" ? "failure" : null });
    return json(res, 404, { message: "not here" });
}

before(async () => {
    await sodium.ready;
    keys = sodium.crypto_box_keypair();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consumers-"));
    tokenFile = path.join(dir, "token");
    fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c) => chunks.push(c)).on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const body = text ? JSON.parse(text) : undefined;
            seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
            route(req, body, res);
        });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
after(() => server.close());

const giteaConsumer = (extra: Obj = {}) => ({
    name: "ci",
    kind: "gitea-actions" as const,
    url: base,
    repo: "o/r",
    secret: "REDIS_PASSWORD",
    tokenFile,
    timeoutSeconds: 5,
    ...extra,
});

const withConsumer = (c: Obj, overrides: Obj = {}) => {
    const env = rawEnvironment(overrides) as Obj;
    const secret = Object.values(env.secrets)[0] as Obj;
    secret.consumers.push(c);
    return env;
};

test("the registry: config-file first (the default), then the CI kinds; each says the parts of its rollout", () => {
    assert.deepEqual(
        CONSUMERS.map((k) => k.kind),
        ["config-file", "gitea-actions", "github-actions"],
    );
    assert.equal(consumerOf(undefined).kind, "config-file");
    assert.deepEqual(consumerOf(undefined).rolloutParts, ["deploy", "reload", "health", "log check"]);
    assert.equal(apiConsumerOf("gitea-actions").reach, "api");
});

test("an entry without kind is a config-file consumer, parsed exactly as before (no kind added); a gitea-actions entry beside it", () => {
    const env = parseEnvironment(
        "unit",
        withConsumer({ name: "ci", kind: "gitea-actions", url: "http://127.0.1.50:3000", repo: "lab/app", secret: "REDIS_PASSWORD", tokenFile: "t" }),
    );
    const r = secretRotation(env, "app-redis");
    assert.equal("kind" in r.consumers[0], false, "no kind key is added to an existing entry");
    assert.equal(r.consumers.length, 4);
    const ci = r.consumers[3] as Obj;
    assert.deepEqual(
        { kind: ci.kind, repo: ci.repo, timeoutSeconds: ci.timeoutSeconds, host: ci.host },
        { kind: "gitea-actions", repo: "lab/app", timeoutSeconds: 15, host: undefined },
    );
});

test("bad CI consumers are refused, naming the field", () => {
    const at = "rotation:secrets.app-redis.consumers[3]";
    assert.deepEqual(
        problemsOf(() => parseEnvironment("unit", withConsumer({ name: "ci", kind: "jenkins" }))),
        [`${at}.kind: unknown kind "jenkins": must be one of "config-file", "gitea-actions", "github-actions"`],
    );
    assert.deepEqual(
        problemsOf(() =>
            parseEnvironment(
                "unit",
                withConsumer({ name: "ci", kind: "gitea-actions", url: "http://g", repo: "o/r", org: "o", secret: "redis_password", tokenFile: "t" }),
            ),
        ),
        [`${at}.secret: must be 1-100 uppercase letters, digits or '_', not starting with a digit`, `${at}.repo: set exactly one of repo or org`],
    );
    const pg = {
        source: {
            kind: "postgres-role",
            host: "127.0.1.31",
            database: "app",
            group: "app",
            loginPrefix: "app_g",
            adminUser: "postgres",
            adminPasswordFile: "p",
        },
    };
    const env = withConsumer({ name: "ci", kind: "gitea-actions", url: "http://g", repo: "o/r", secret: "PGPASSWORD", tokenFile: "t" }, pg);
    for (const c of (Object.values(env.secrets)[0] as Obj).consumers.slice(0, 3)) c.write.userKey = "pg.user";
    assert.deepEqual(
        problemsOf(() => parseEnvironment("unit", env)),
        [`${at}: a postgres-role credential is a user and password pair: set userVariable`],
    );
});

test("gitea-actions: PUT {data}, the secret listed, the variable created then updated and read back, the workflow dispatched; the token only in the header", async () => {
    seen.length = 0;
    state.secrets.clear();
    state.variables.clear();
    const spec = {
        label: "app-redis → consumer ci",
        generation: 3,
        consumer: giteaConsumer({ generationVariable: "REDIS_GENERATION", dispatch: { workflow: "deploy.yml", ref: "main", waitSeconds: 0 } }),
    };
    await apiRollout(spec, stdinFields("s3cret-value-g3"));
    assert.deepEqual(state.secrets.get("REDIS_PASSWORD"), { data: "s3cret-value-g3" });
    assert.equal(state.variables.get("REDIS_GENERATION"), "3");
    assert.deepEqual(
        seen.map((s) => `${s.method} ${s.url}`),
        [
            "PUT /api/v1/repos/o/r/actions/secrets/REDIS_PASSWORD",
            "GET /api/v1/repos/o/r/actions/secrets?per_page=100&limit=50",
            "POST /api/v1/repos/o/r/actions/variables/REDIS_GENERATION",
            "GET /api/v1/repos/o/r/actions/variables/REDIS_GENERATION",
            "POST /api/v1/repos/o/r/actions/workflows/deploy.yml/dispatches?return_run_details=true",
        ],
    );
    assert.ok(seen.every((s) => s.auth === `token ${TOKEN}`));
    // Again (a rollback's old value): the variable exists, so Gitea's 409 turns into an update.
    await apiRollout({ ...spec, generation: 2 }, stdinFields("s3cret-value-g2"));
    assert.deepEqual(state.secrets.get("REDIS_PASSWORD"), { data: "s3cret-value-g2" });
    assert.equal(state.variables.get("REDIS_GENERATION"), "2");
    const holds = await apiConsumerOf("gitea-actions").holds(spec.consumer, { current: "x" });
    assert.deepEqual(holds, { holds: "write-only", detail: "Gitea cannot give an Actions secret back; variable REDIS_GENERATION says generation 2" });
});

test("gitea-actions: a 500 fails the rollout, naming the consumer, the secret and the status; no value in the message", async () => {
    state.failPut = 500;
    try {
        await assert.rejects(
            apiRollout({ label: "app-redis → consumer ci", generation: 4, consumer: giteaConsumer() }, stdinFields("s3cret-value-g4")),
            (e: Error) => {
                assert.equal(e.message, "app-redis → consumer ci: Gitea Actions secret REDIS_PASSWORD of o/r: PUT g4 answered HTTP 500: server broke");
                return true;
            },
        );
    } finally {
        state.failPut = 0;
    }
});

test("gitea-actions: with dispatch.waitSeconds the run must succeed; a run that stays queued (no runner) fails, named", async () => {
    const spec = {
        label: "app-redis → consumer ci",
        generation: 5,
        consumer: giteaConsumer({ dispatch: { workflow: "deploy.yml", ref: "main", waitSeconds: 1 } }),
    };
    await assert.rejects(
        apiRollout(spec, stdinFields("v5-secret")),
        /run 7 of deploy.yml still queued after 1s \(dispatch.waitSeconds\): is a runner picking up its jobs\?/,
    );
    state.runStatus = "completed";
    try {
        await assert.rejects(apiRollout(spec, stdinFields("v5-secret")), /run 7 of deploy.yml ended failure/);
    } finally {
        state.runStatus = "queued";
    }
});

test("gitea-actions: the drift answer is missing without the secret, unreachable without the API, never current", async () => {
    state.secrets.clear();
    assert.equal((await apiConsumerOf("gitea-actions").holds(giteaConsumer(), { current: "x" })).holds, "missing");
    const gone = await apiConsumerOf("gitea-actions").holds(giteaConsumer({ url: "http://127.0.0.1:9" }), { current: "x" });
    assert.equal(gone.holds, "unreachable");
    assert.match(gone.detail!, /cannot reach Gitea at http:\/\/127.0.0.1:9: connection refused/);
});

test("gitea-actions pre-flight: the repository answers, the token may list its secrets; a token file others can read is named", async () => {
    assert.deepEqual(await apiConsumerOf("gitea-actions").preflight(giteaConsumer()), []);
    fs.chmodSync(tokenFile, 0o644);
    try {
        const problems = await apiConsumerOf("gitea-actions").preflight(giteaConsumer({ repo: "o/none" }));
        assert.equal(problems[0], `the admin token file ${tokenFile} (tokenFile) is readable by others (mode 644): chmod 600 it`);
        assert.match(problems[1], /GET \/repos\/o\/none answered HTTP 404: not here \(no repository o\/none the token can see/);
    } finally {
        fs.chmodSync(tokenFile, 0o600);
    }
});

test("github-actions: the value sealed to the repository's public key opens with its secret key (crypto_box_seal, for real)", async () => {
    const sealed = await sealForGitHub("S3cr3t 'quoted' $(x) é", sodium.to_base64(keys.publicKey, sodium.base64_variants.ORIGINAL));
    const opened = sodium.crypto_box_seal_open(sodium.from_base64(sealed, sodium.base64_variants.ORIGINAL), keys.publicKey, keys.privateKey);
    assert.equal(sodium.to_string(opened), "S3cr3t 'quoted' $(x) é");
    assert.notEqual(
        await sealForGitHub("x", sodium.to_base64(keys.publicKey, sodium.base64_variants.ORIGINAL)),
        await sealForGitHub("x", sodium.to_base64(keys.publicKey, sodium.base64_variants.ORIGINAL)),
    );
});

test("github-actions: public key, then PUT {encrypted_value, key_id} that opens to the secret; Bearer token; variable PATCHed or POSTed", async () => {
    seen.length = 0;
    state.secrets.clear();
    state.variables.clear();
    const consumer = {
        name: "ci",
        kind: "github-actions" as const,
        url: `${base}/gh`,
        repo: "o/r",
        secret: "REDIS_PASSWORD",
        tokenFile,
        timeoutSeconds: 5,
        generationVariable: "REDIS_GENERATION",
    };
    await apiRollout({ label: "app-redis → consumer gh", generation: 6, consumer }, stdinFields("gh-secret-g6"));
    const put = state.secrets.get("REDIS_PASSWORD")!;
    assert.equal(put.key_id, "k1");
    const opened = sodium.crypto_box_seal_open(sodium.from_base64(put.encrypted_value, sodium.base64_variants.ORIGINAL), keys.publicKey, keys.privateKey);
    assert.equal(sodium.to_string(opened), "gh-secret-g6");
    assert.ok(!JSON.stringify(seen).includes("gh-secret-g6"), "the value never travels unsealed");
    assert.deepEqual(
        seen.map((s) => `${s.method} ${s.url}`),
        [
            "GET /gh/repos/o/r/actions/secrets/public-key",
            "PUT /gh/repos/o/r/actions/secrets/REDIS_PASSWORD",
            "GET /gh/repos/o/r/actions/secrets?per_page=100&limit=50",
            "PATCH /gh/repos/o/r/actions/variables/REDIS_GENERATION",
            "POST /gh/repos/o/r/actions/variables",
            "GET /gh/repos/o/r/actions/variables/REDIS_GENERATION",
        ],
    );
    assert.ok(seen.every((s) => s.auth === `Bearer ${TOKEN}`));
    assert.equal((await apiConsumerOf("github-actions").holds(consumer, { current: "x" })).holds, "write-only");
});

test("the plan picture draws each consumer's rollout with its kind's parts", async () => {
    const { planDot } = await import("../../cli/planGraph");
    const dot = planDot([{ name: "app-redis", generation: 2, mode: "rotate", consumers: ["web-1", "ci"], consumerKinds: { ci: "gitea-actions" }, after: [] }]);
    assert.match(dot, /<b>web-1<\/b><\/td><\/tr><tr><td>deploy<\/td><td>reload<\/td><td>health<\/td><td>log check<\/td>/);
    assert.match(dot, /<b>ci<\/b><\/td><\/tr><tr><td>put secret<\/td><td>confirm<\/td><td>dispatch<\/td>/);
});
