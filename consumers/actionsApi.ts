/**
 * What the CI consumers (gitea-actions, github-actions) share: one HTTP
 * transport (the admin token read from its file in this process and sent in
 * a header, never on a command line; a private CA as a file), and the
 * rollout, drift answer and pre-flight of an Actions secret store, written
 * once against a dialect that says each API's paths and bodies.
 *
 * The flow is the runbook's row `{CI/CD pipeline} | {runner} | {secret ref}
 * | {re-trigger}`: write the secret (201 created / 204 updated), confirm it
 * is listed, write and read back the variables, then dispatch the workflow
 * and, when asked to, wait for that run's conclusion. A secret cannot be
 * read back from either API: its drift answer is `write-only`, never
 * `current`.
 */
import * as fs from "node:fs";
import { z } from "zod";
import { isTlsCode, type JsonReply, jsonRequest, type TransportError } from "../adapters/httpJson";
import { httpUrl, localPath, text, wholeNumber } from "../lib/fields";
import type { ApiCredential, ApiRolloutSpec, ConsumerHolding } from "./kind";

/** An Actions secret or variable name: uppercase letters, digits and `_`, not starting with a digit, GITHUB_ or GITEA_. */
export const actionsName = z
    .string()
    .regex(/^[A-Z_][A-Z0-9_]{0,99}$/, "must be 1-100 uppercase letters, digits or '_', not starting with a digit")
    .refine((n) => !/^(GITHUB_|GITEA_)/.test(n), "must not start with GITHUB_ or GITEA_ (reserved)");

/** `owner/name` of a repository. */
export const repoPath = z.string().regex(/^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/, "must be owner/name of a repository");

/** What to re-trigger after the write: a workflow by its file name, on a ref; `waitSeconds` > 0 waits for that run's conclusion. */
export const dispatchSchema = z.strictObject({
    workflow: z.string().regex(/^[A-Za-z0-9_.-]{1,200}\.ya?ml$/, "must be a workflow file name such as deploy.yml"),
    ref: text.default("main"),
    /** 0: the dispatch's acceptance (204) is the confirmation; otherwise wait up to this long for the run to succeed. */
    waitSeconds: wholeNumber().min(0, "must be 0-3600").max(3600, "must be 0-3600").default(0),
});

/** The fields both CI consumers have besides `name`, `kind` and `url`. */
export const actionsFields = {
    /** The Actions secret that receives the rotated secret. */
    secret: actionsName,
    /** A variable that receives the login of a postgres-role credential (read back after the write). */
    userVariable: actionsName.optional(),
    /** A variable that receives the generation number (read back after the write; `bin/rotate check` reports it). */
    generationVariable: actionsName.optional(),
    /** The admin token, alone in a file (0600) on the operator's machine. */
    tokenFile: localPath,
    /** The CA bundle that signs the API's certificate (https with a private CA); default: the system's CAs. */
    caFile: localPath.optional(),
    dispatch: dispatchSchema.optional(),
    timeoutSeconds: wholeNumber().min(1, "must be 1-300").max(300, "must be 1-300").default(15),
};

export { httpUrl };

/** A CI consumer as both kinds have it once resolved. */
export interface ActionsConsumer {
    name: string;
    url: string;
    repo?: string;
    org?: string;
    secret: string;
    userVariable?: string;
    generationVariable?: string;
    tokenFile: string;
    caFile?: string;
    dispatch?: z.output<typeof dispatchSchema>;
    timeoutSeconds: number;
}

/** An API's reply: its status and JSON body (of many shapes, read field by field with checks). */
export type Reply = JsonReply;

/** An API answered something else than the rollout needs, or could not be reached; the message names where and holds no secret. */
export class ConsumerApiError extends Error {
    override readonly name = "ConsumerApiError";
}

/** How one API is spoken: its paths, its auth header, and how a secret is put. */
export interface ActionsDialect {
    /** "Gitea", "GitHub": how messages name the API. */
    readonly api: string;
    /** The path prefix of the API below `url` ("/api/v1" for Gitea). */
    readonly prefix: string;
    /** Headers every request carries besides the token. */
    readonly headers: Record<string, string>;
    /** `Authorization` for a token. */
    authorization(token: string): string;
    /** `/repos/o/r` or `/orgs/o`: where the secrets and variables live. */
    scope(c: ActionsConsumer): string;
    /** Puts the secret; answers the reply of the PUT. */
    putSecret(call: Caller, c: ActionsConsumer, value: string): Promise<Reply>;
    /** Creates or updates a variable (the API's verbs differ). */
    setVariable(call: Caller, c: ActionsConsumer, name: string, value: string): Promise<Reply>;
    /** Dispatches the workflow asking for the run's details (both APIs then answer 200 with `workflow_run_id`). */
    dispatch(call: Caller, c: ActionsConsumer, workflow: string, ref: string): Promise<Reply>;
}

export type Caller = (method: string, path: string, body?: unknown) => Promise<Reply>;

const TOKEN_MODE_MASK = 0o077;

/** The admin token, read in this process; never logged, never in argv. */
function tokenOf(c: ActionsConsumer, where: string): string {
    let t: string;
    try {
        t = fs.readFileSync(c.tokenFile, "utf8").trim();
    } catch (e) {
        throw new ConsumerApiError(`${where}: cannot read the admin token file ${c.tokenFile} (tokenFile): ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    if (!t) throw new ConsumerApiError(`${where}: the admin token file ${c.tokenFile} (tokenFile) is empty`);
    return t;
}

/** A caller of the consumer's API with its token and CA; `where` starts every error. */
export function caller(d: ActionsDialect, c: ActionsConsumer, where: string): Caller {
    const token = tokenOf(c, where);
    let ca: Buffer | undefined;
    if (c.caFile) {
        try {
            ca = fs.readFileSync(c.caFile);
        } catch (e) {
            throw new ConsumerApiError(`${where}: cannot read the CA file ${c.caFile} (caFile): ${(e as NodeJS.ErrnoException).code ?? e}`);
        }
    }
    const timeoutMs = c.timeoutSeconds * 1000;
    return (method, apiPath, body) => {
        const url = new URL(`${c.url.replace(/\/+$/, "")}${d.prefix}${apiPath}`);
        const headers: Record<string, string> = { Accept: "application/json", ...d.headers, Authorization: d.authorization(token) };
        const payload = body === undefined ? undefined : JSON.stringify(body);
        if (payload !== undefined) headers["Content-Type"] = "application/json";
        return jsonRequest(url, { method, headers, payload, timeoutMs, tls: ca ? { ca } : undefined }).catch((e: TransportError) => {
            if (e.response) throw new ConsumerApiError(`${where}: ${method} ${url.pathname}: ${e.message}`);
            const why =
                e.code === "ECONNREFUSED"
                    ? "connection refused"
                    : e.code === "ETIMEDOUT"
                      ? `no answer within ${c.timeoutSeconds}s`
                      : isTlsCode(e.code)
                        ? `TLS: ${e.code} (is caFile the CA that signed the server's certificate?)`
                        : (e.code ?? e.message);
            throw new ConsumerApiError(`${where}: cannot reach ${d.api} at ${c.url}: ${why}`);
        });
    };
}

/** The API's own words on a refusal, one short line (both answer `{"message": ...}`). */
export function said(r: Reply): string {
    const m = typeof r.body?.message === "string" ? r.body.message : "";
    return m ? `: ${m.replace(/\s+/g, " ").slice(0, 200)}` : "";
}

/** Why a status is refused, in words an operator acts on. */
export function refusal(c: ActionsConsumer, what: string, r: Reply): ConsumerApiError {
    const hint =
        r.status === 401
            ? ` (the admin token in ${c.tokenFile} is refused)`
            : r.status === 403
              ? ` (the token in ${c.tokenFile} may not do this: it needs admin rights on ${c.repo ?? c.org})`
              : r.status === 404
                ? ` (no ${c.repo ? `repository ${c.repo}` : `organization ${c.org}`} the token can see, or the API lacks this endpoint)`
                : "";
    return new ConsumerApiError(`${what} answered HTTP ${r.status}${said(r)}${hint}`);
}

/** The names of the secrets at the consumer's scope (both list `{name}` objects; GitHub wraps them). */
async function secretNames(d: ActionsDialect, call: Caller, c: ActionsConsumer, where: string): Promise<string[]> {
    const path = `${d.scope(c)}/actions/secrets?per_page=100&limit=50`;
    const r = await call("GET", path);
    if (r.status !== 200) throw refusal(c, `${where}: GET ${path}`, r);
    const list = Array.isArray(r.body) ? r.body : Array.isArray(r.body?.secrets) ? r.body.secrets : [];
    return list.map((s: { name?: unknown }) => String(s.name ?? "").toUpperCase());
}

async function readVariable(d: ActionsDialect, call: Caller, c: ActionsConsumer, name: string): Promise<{ status: number; value?: string }> {
    const r = await call("GET", `${d.scope(c)}/actions/variables/${name}`);
    // Gitea answers `data`, GitHub `value`.
    const value = r.body?.data ?? r.body?.value;
    return { status: r.status, ...(r.status === 200 && typeof value === "string" ? { value } : {}) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The rollout of an Actions consumer: write, confirm, variables, dispatch and wait. */
export async function deliverActions(d: ActionsDialect, spec: ApiRolloutSpec<ActionsConsumer>, cred: ApiCredential): Promise<void> {
    const c = spec.consumer;
    const at = `${spec.label}: ${d.api} Actions secret ${c.secret} of ${c.repo ?? c.org}`;
    const call = caller(d, c, at);
    const put = await d.putSecret(call, c, cred.secret);
    if (put.status !== 201 && put.status !== 204) throw refusal(c, `${at}: PUT g${cred.generation}`, put);
    // The PUT's answer is the API's word; the list shows the secret is there under this name.
    if (!(await secretNames(d, call, c, at)).includes(c.secret)) throw new ConsumerApiError(`${at}: accepted (HTTP ${put.status}) but not listed afterwards`);
    const variables: [string, string][] = [];
    if (c.userVariable && cred.user !== undefined) variables.push([c.userVariable, cred.user]);
    if (c.generationVariable) variables.push([c.generationVariable, String(cred.generation)]);
    for (const [name, value] of variables) {
        const r = await d.setVariable(call, c, name, value);
        if (r.status !== 201 && r.status !== 204) throw refusal(c, `${at}: variable ${name}`, r);
        const back = await readVariable(d, call, c, name);
        if (back.value !== value)
            throw new ConsumerApiError(`${at}: variable ${name} reads back ${back.status === 200 ? "another value" : `HTTP ${back.status}`} after the write`);
    }
    if (c.dispatch) await dispatchAndWait(d, call, c, at);
}

/** Re-triggers the workflow; with `waitSeconds`, waits for the run it started to succeed. */
async function dispatchAndWait(d: ActionsDialect, call: Caller, c: ActionsConsumer, at: string): Promise<void> {
    const { workflow, ref, waitSeconds } = c.dispatch!;
    const r = await d.dispatch(call, c, workflow, ref);
    if (r.status !== 200 && r.status !== 201 && r.status !== 204) throw refusal(c, `${at}: dispatch of ${workflow} on ${ref}`, r);
    if (!waitSeconds) return;
    const id = r.body?.workflow_run_id;
    if (typeof id !== "number")
        throw new ConsumerApiError(`${at}: the dispatch of ${workflow} named no run to wait for (dispatch.waitSeconds needs its run's details)`);
    const deadline = Date.now() + waitSeconds * 1000;
    let status = "queued";
    while (Date.now() < deadline) {
        const run = await call("GET", `/repos/${c.repo}/actions/runs/${id}`);
        if (run.status !== 200) throw refusal(c, `${at}: run ${id} of ${workflow}`, run);
        status = String(run.body?.status ?? "unknown");
        if (status === "completed") {
            const conclusion = run.body?.conclusion;
            if (conclusion === "success") return;
            throw new ConsumerApiError(`${at}: run ${id} of ${workflow} ended ${conclusion ?? "without a conclusion"}`);
        }
        await sleep(Math.min(2000, Math.max(0, deadline - Date.now())));
    }
    throw new ConsumerApiError(
        `${at}: run ${id} of ${workflow} still ${status} after ${waitSeconds}s (dispatch.waitSeconds): is a runner picking up its jobs?`,
    );
}

/** The drift answer: the secret listed (its value cannot be read back: write-only), the login variable compared. */
export async function actionsHolds(
    d: ActionsDialect,
    c: ActionsConsumer,
    values: { currentUser?: string; previousUser?: string },
): Promise<{ holds: ConsumerHolding; detail?: string }> {
    const at = `${d.api} ${c.repo ?? c.org}`;
    try {
        const call = caller(d, c, at);
        if (!(await secretNames(d, call, c, at)).includes(c.secret)) return { holds: "missing", detail: `no Actions secret ${c.secret} in ${c.repo ?? c.org}` };
        const notes: string[] = [];
        if (c.userVariable && values.currentUser !== undefined) {
            const v = await readVariable(d, call, c, c.userVariable);
            if (v.value === values.previousUser) return { holds: "previous", detail: `variable ${c.userVariable} holds the previous login` };
            if (v.value !== values.currentUser) return { holds: "unknown", detail: `variable ${c.userVariable} holds neither login` };
        }
        if (c.generationVariable) {
            const v = await readVariable(d, call, c, c.generationVariable);
            notes.push(v.value !== undefined ? `variable ${c.generationVariable} says generation ${v.value}` : `no variable ${c.generationVariable}`);
        }
        return { holds: "write-only", detail: [`${d.api} cannot give an Actions secret back`, ...notes].join("; ") };
    } catch (e) {
        return { holds: "unreachable", detail: (e as Error).message };
    }
}

/** The pre-flight: the API answers, the token reaches the repository (or organization) and may list its secrets, the workflow exists. */
export async function actionsPreflight(d: ActionsDialect, c: ActionsConsumer): Promise<string[]> {
    const at = `${d.api} ${c.url}`;
    const problems: string[] = [];
    try {
        const mode = fs.statSync(c.tokenFile).mode;
        if (mode & TOKEN_MODE_MASK)
            problems.push(`the admin token file ${c.tokenFile} (tokenFile) is readable by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it`);
    } catch {
        return [`cannot read the admin token file ${c.tokenFile} (tokenFile)`];
    }
    try {
        const call = caller(d, c, at);
        const scope = d.scope(c);
        const r = await call("GET", scope);
        if (r.status !== 200) return [...problems, refusal(c, `${at}: GET ${scope}`, r).message];
        const s = await call("GET", `${scope}/actions/secrets`);
        if (s.status !== 200) problems.push(refusal(c, `${at}: GET ${scope}/actions/secrets (the token must manage its secrets)`, s).message);
        if (c.dispatch) {
            const w = await call("GET", `/repos/${c.repo}/actions/workflows/${c.dispatch.workflow}`);
            if (w.status !== 200) problems.push(refusal(c, `${at}: workflow ${c.dispatch.workflow} (dispatch.workflow)`, w).message);
        }
    } catch (e) {
        problems.push((e as Error).message);
    }
    return problems;
}

/**
 * What a CI consumer kind does, given its dialect: everything but its schema,
 * its parts and its label (consumers/giteaActions.ts, consumers/githubActions.ts).
 */
export function actionsMethods(d: ActionsDialect) {
    return {
        reach: "api" as const,
        resolve(c: ActionsConsumer, on: { file(field: string, p: string): string }) {
            c.tokenFile = on.file("tokenFile", c.tokenFile);
            if (c.caFile) c.caFile = on.file("caFile", c.caFile);
        },
        writesUser: (c: ActionsConsumer) => !!c.userVariable,
        howToWriteUser: "set userVariable",
        deliver: (spec: ApiRolloutSpec<ActionsConsumer>, cred: ApiCredential) => deliverActions(d, spec, cred),
        holds: (c: ActionsConsumer, v: { currentUser?: string; previousUser?: string }) => actionsHolds(d, c, v),
        preflight: (c: ActionsConsumer) => actionsPreflight(d, c),
    };
}
