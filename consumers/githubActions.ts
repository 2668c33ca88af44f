/**
 * The `github-actions` consumer: a GitHub repository's Actions secret. The
 * path layout is Gitea's (which copied GitHub's), plus sealing: the value is
 * encrypted with libsodium's `crypto_box_seal` under the repository's public
 * key (`GET .../actions/secrets/public-key`) and sent as `{encrypted_value,
 * key_id}`; only GitHub's runners can open it. Variables are PATCHed (or
 * POSTed when new) and read back; the dispatch asks for the run's details,
 * so `dispatch.waitSeconds` can wait for that run's conclusion. Secrets are
 * write-only here too.
 *
 * What is proven where (docs/kinds.md): the sealing for real in a unit test
 * (a box sealed here is opened with the key pair's secret key); the HTTP
 * contract against a local server that speaks these endpoints, not against
 * github.com, which the lab cannot reach.
 */
import { z } from "zod";
import { httpUrl } from "../lib/fields";
import { type ActionsConsumer, type ActionsDialect, type Caller, actionsFields, actionsMethods, refusal, repoPath } from "./actionsApi";
import { consumerName as name, defineApiConsumer } from "./kind";

/** `value` sealed to `publicKeyBase64` (crypto_box_seal), base64: what GitHub's secrets API takes. */
export async function sealForGitHub(value: string, publicKeyBase64: string): Promise<string> {
    const sodium = (await import("libsodium-wrappers")).default;
    await sodium.ready;
    const key = sodium.from_base64(publicKeyBase64, sodium.base64_variants.ORIGINAL);
    return sodium.to_base64(sodium.crypto_box_seal(sodium.from_string(value), key), sodium.base64_variants.ORIGINAL);
}

async function putSealed(call: Caller, c: ActionsConsumer, value: string) {
    const scope = github.scope(c);
    const pk = await call("GET", `${scope}/actions/secrets/public-key`);
    if (pk.status !== 200 || typeof pk.body?.key !== "string" || typeof pk.body?.key_id !== "string")
        throw refusal(c, `GET ${scope}/actions/secrets/public-key`, pk);
    const encrypted = await sealForGitHub(value, pk.body.key);
    return call("PUT", `${scope}/actions/secrets/${c.secret}`, { encrypted_value: encrypted, key_id: pk.body.key_id });
}

export const github: ActionsDialect = {
    api: "GitHub",
    prefix: "",
    headers: { Accept: "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "secret-rotation" },
    authorization: (token) => `Bearer ${token}`,
    scope: (c) => `/repos/${c.repo}`,
    putSecret: putSealed,
    async setVariable(call, c, variable, value) {
        const updated = await call("PATCH", `${github.scope(c)}/actions/variables/${variable}`, { name: variable, value });
        return updated.status === 404 ? call("POST", `${github.scope(c)}/actions/variables`, { name: variable, value }) : updated;
    },
    dispatch: (call, c, workflow, ref) =>
        call("POST", `/repos/${c.repo}/actions/workflows/${workflow}/dispatches`, { ref, inputs: {}, return_run_details: true }),
};

const schema = z.strictObject({
    name,
    kind: z.literal("github-actions"),
    /** The API's base URL: https://api.github.com, or a GitHub Enterprise Server's https://<host>/api/v3. */
    url: httpUrl().default("https://api.github.com"),
    /** `owner/name` of the repository whose Actions secret is written. */
    repo: repoPath,
    ...actionsFields,
});

export const githubActions = defineApiConsumer({
    kind: "github-actions",
    schema,
    rolloutParts: ["seal + put secret", "confirm", "dispatch"],
    describe: (c) => `GitHub Actions secret ${c.secret} of ${c.repo}`,
    ...actionsMethods(github),
});
