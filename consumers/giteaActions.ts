/**
 * The `gitea-actions` consumer: a pipeline that reads the secret from a
 * Gitea repository's (or organization's) Actions secrets. The rollout PUTs
 * the secret (`PUT /api/v1/repos/{owner}/{repo}/actions/secrets/{name}
 * {"data": ...}`: 201 created, 204 updated), checks it is listed, writes and
 * reads back its variables, then dispatches the workflow and, with
 * `dispatch.waitSeconds`, waits for that run to succeed
 * (consumers/actionsApi.ts). Gitea keeps secrets write-only: the drift
 * answer is `write-only`.
 */
import { z } from "zod";
import { httpUrl } from "../lib/fields";
import { type ActionsDialect, actionsFields, actionsMethods, repoPath } from "./actionsApi";
import { consumerName as name, defineApiConsumer } from "./kind";

const orgName = z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, "must be an organization name");

export const gitea: ActionsDialect = {
    api: "Gitea",
    prefix: "/api/v1",
    headers: {},
    authorization: (token) => `token ${token}`,
    scope: (c) => (c.repo ? `/repos/${c.repo}` : `/orgs/${c.org}`),
    putSecret: (call, c, value) => call("PUT", `${gitea.scope(c)}/actions/secrets/${c.secret}`, { data: value }),
    async setVariable(call, c, variable, value) {
        const path = `${gitea.scope(c)}/actions/variables/${variable}`;
        const created = await call("POST", path, { value });
        // An existing variable is updated instead (Gitea answers 409, older releases 400).
        return created.status === 409 || created.status === 400 ? call("PUT", path, { name: variable, value }) : created;
    },
    // Gitea answers 200 with the run's id when asked for its details (204 otherwise).
    dispatch: (call, c, workflow, ref) =>
        call("POST", `/repos/${c.repo}/actions/workflows/${workflow}/dispatches?return_run_details=true`, { ref, inputs: {} }),
};

const schema = z
    .strictObject({
        name,
        kind: z.literal("gitea-actions"),
        /** Gitea's base URL, e.g. http://127.0.1.50:3000 (the API is below /api/v1). */
        url: httpUrl(),
        /** `owner/name` of the repository whose Actions secret is written; or `org` for an organization's. */
        repo: repoPath.optional(),
        org: orgName.optional(),
        ...actionsFields,
    })
    .refine((c) => !!c.repo !== !!c.org, { message: "set exactly one of repo or org", path: ["repo"] })
    .refine((c) => !c.dispatch || !!c.repo, { message: "a dispatch needs repo (workflows belong to a repository)", path: ["dispatch"] });

export const giteaActions = defineApiConsumer({
    kind: "gitea-actions",
    schema,
    rolloutParts: ["put secret", "confirm", "dispatch"],
    describe: (c) => `Gitea Actions secret ${c.secret} of ${c.repo ?? c.org} at ${c.url}`,
    ...actionsMethods(gitea),
});
