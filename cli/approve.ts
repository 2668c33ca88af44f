/**
 * The ceremony in the console (lib/ceremony.ts): `start` of a secret that
 * needs a second person records a signed request and stops; `approve`, run
 * by someone else with their own key, signs it; `start --request <id>` runs
 * it once both signatures, the plan digest and the expiry check out.
 */
import * as path from "node:path";
import type { Approval, EnvironmentConfig, Reason } from "../lib/configSchema";
import { type RequestedSecret, approveRequest, checkApproved, checkRequest, createRequest, governing, planDigest, readRequest } from "../lib/ceremony";
import { RotationRefusedError } from "../lib/errors";
import { SignatureError, signingKey } from "../adapters/sshsig";
import { type Common, load, printJson, say } from "./common";
import { EXIT } from "./run";
import { PROJECT, UsageError } from "./stack";

/** What a start changes in a secret's config before anything runs. */
export interface SecretChange {
    generation?: number;
    mode?: "rotate" | "rollback";
    reason?: Reason;
    note?: string;
}

/** The config as it will be after `changes` (a note of undefined clears it). */
export function envAfter(env: EnvironmentConfig, changes: Record<string, SecretChange>): EnvironmentConfig {
    const out = structuredClone(env);
    for (const [n, c] of Object.entries(changes)) {
        Object.assign(out.secrets[n], c);
        if ("note" in c && c.note === undefined) delete out.secrets[n].note;
    }
    return out;
}

const requested = (env: EnvironmentConfig, names: string[]): RequestedSecret[] =>
    names.map((n) => {
        const s = env.secrets[n];
        return { name: n, generation: s.generation, consumers: s.consumers.map((c) => c.name), reason: s.reason, ...(s.note ? { note: s.note } : {}) };
    });

const describe = (r: RequestedSecret) =>
    `${r.name} ${r.generation - 1} -> ${r.generation} on ${r.consumers.length} consumer(s) (${r.consumers.join(", ")}), reason ${r.reason}${r.note ? `, note "${r.note}"` : ""}`;

function key(o: { key?: string }): string {
    try {
        return signingKey(o.key);
    } catch (e) {
        if (e instanceof SignatureError) throw new UsageError(e.message);
        throw e;
    }
}

export type CeremonyVerdict =
    | { kind: "none" }
    | { kind: "approved"; approval: Approval }
    | { kind: "stop"; exitCode: number; request?: { id: string; expiresAt: string } };

/**
 * The ceremony step of `start`, after every check and before anything is
 * written: nothing to do, an approval verified (its witnesses go into the
 * config and so into every audit line), or a request recorded (with --yes)
 * and the start stops.
 */
export function ceremonyOfStart(o: Common & { yes?: boolean; request?: string; key?: string }, after: EnvironmentConfig, names: string[]): CeremonyVerdict {
    const g = governing(after, names, PROJECT);
    if (!g) {
        if (o.request) throw new UsageError(`--request: no secret of ${names.join(", ")} needs a ceremony on stack ${o.stack}`);
        return { kind: "none" };
    }
    const digest = planDigest(o.stack, after, names);
    if (o.request) {
        const { requester, approver } = checkApproved(readRequest(g.dir, o.request), { stack: o.stack, digest, approvers: g.approvers });
        say(o, `rotate: request ${o.request}: requested by ${requester.principal}, approved by ${approver.principal}; the plan is the one approved`);
        return { kind: "approved", approval: { request: o.request, requester: requester.principal, approver: approver.principal } };
    }
    const secrets = requested(after, names);
    if (!o.yes) {
        say(
            o,
            `rotate: ${names.join(", ")} need(s) a second person's approval (ceremony): with --yes this records a signed request for ${secrets.map(describe).join("; ")} and stops; nothing was changed`,
        );
        if (o.json) printJson({ stack: o.stack, command: "start", outcome: "not-confirmed", exitCode: 0, ceremony: { required: true, planDigest: digest } });
        return { kind: "stop", exitCode: EXIT.done };
    }
    const { request, file, requester } = createRequest({
        dir: g.dir,
        stack: o.stack,
        digest,
        secrets,
        validFor: g.validFor,
        approvers: g.approvers,
        key: key(o),
    });
    say(o, `rotate: ${names.join(", ")} need(s) a second person's approval; nothing was rotated.`);
    say(o, `rotate: request ${request.id} recorded by ${requester.principal}: ${file} (expires ${request.expiresAt})`);
    say(o, `rotate: next: another approver runs  bin/rotate approve --stack ${o.stack} --request ${request.id} --yes`);
    say(
        o,
        `rotate: then:                      bin/rotate start --stack ${o.stack} ${names.map((n) => `--secret ${n}`).join(" ")}${reasonArgs(secrets[0])} --request ${request.id} --yes`,
    );
    if (o.json)
        printJson({
            stack: o.stack,
            command: "start",
            outcome: "awaiting-approval",
            exitCode: EXIT.awaitingApproval,
            request: { id: request.id, file, requester: requester.principal, expiresAt: request.expiresAt, planDigest: digest, secrets },
        });
    return { kind: "stop", exitCode: EXIT.awaitingApproval, request: { id: request.id, expiresAt: request.expiresAt } };
}

const reasonArgs = (s: RequestedSecret) =>
    (s.reason !== "scheduled" ? ` --reason ${s.reason}` : "") + (s.note ? ` --note '${s.note.replace(/'/g, "'\\''")}'` : "");

/** `bin/rotate approve`: shows what the request would run, and with --yes signs it as its approver. */
export async function approve(o: Common & { request: string; yes?: boolean; key?: string }): Promise<number> {
    const { config } = await load(o);
    const { env } = config;
    // The request names its secrets; this checkout's config must agree with it, or the digest will not match.
    const first = readRequest(dirOf(env), o.request);
    const names = first.request.secrets.map((s) => s.name);
    for (const n of names)
        if (!(n in env.secrets))
            throw new RotationRefusedError(`request ${first.request.id} names secret ${n}, which stack ${o.stack} does not have here. Nothing was changed`);
    const after = envAfter(
        env,
        Object.fromEntries(
            first.request.secrets.map((s) => [
                s.name,
                { generation: env.secrets[s.name].generation + 1, mode: "rotate" as const, reason: s.reason as Reason, note: s.note },
            ]),
        ),
    );
    const g = governing(after, names, PROJECT);
    if (!g)
        throw new RotationRefusedError(
            `request ${first.request.id}: none of ${names.join(", ")} needs a ceremony on stack ${o.stack}; there is nothing to approve`,
        );
    const x = { stack: o.stack, digest: planDigest(o.stack, after, names), approvers: g.approvers };
    const lines = first.request.secrets.map((s) => `rotate:   ${describe(s)}`);
    if (!o.yes) {
        const requester = checkRequest(first, x);
        say(
            o,
            `rotate: request ${first.request.id} by ${requester.principal} (key ${requester.key}), made ${first.request.requestedAt}, expires ${first.request.expiresAt}; stack ${o.stack}:\n${lines.join("\n")}`,
        );
        say(
            o,
            `rotate: its plan digest ${x.digest.slice(0, 12)}… matches this checkout's config. Re-run with --yes to approve it with your key; nothing was changed`,
        );
        if (o.json)
            printJson({ stack: o.stack, command: "approve", outcome: "not-confirmed", exitCode: 0, request: first.request, requester: requester.principal });
        return EXIT.done;
    }
    const { requester, approver } = approveRequest(first, { ...x, key: key(o) });
    say(o, `rotate: request ${first.request.id} by ${requester.principal} approved by ${approver.principal}:\n${lines.join("\n")}`);
    say(o, `rotate: ${first.files.approvalSig} written; the requester may now run start with --request ${first.request.id} (until ${first.request.expiresAt})`);
    if (o.json)
        printJson({
            stack: o.stack,
            command: "approve",
            outcome: "approved",
            exitCode: 0,
            request: first.request.id,
            requester: requester.principal,
            approver: approver.principal,
        });
    return EXIT.done;
}

/** Where a stack keeps its requests: the stack's ceremony dir, else the first secret's that has one. */
function dirOf(env: EnvironmentConfig): string {
    const c = env.ceremony ?? Object.values(env.secrets).find((s) => s.ceremony)?.ceremony;
    return path.resolve(PROJECT, c?.dir ?? ".state/ceremony");
}
