/**
 * The two-person ceremony: a rotation of a secret whose `ceremony` is
 * required runs only with a second person's approval of exactly what will
 * run. The requester's `bin/rotate start` writes a request (what would run
 * and the digest of the plan) signed with their SSH key; an approver's
 * `bin/rotate approve` signs the same bytes with theirs; `start --request`
 * then checks both signatures against the team's allowed-signers file, that
 * the two people differ, that the plan is still the one approved and that
 * the request has not expired. Requests hold names, numbers and digests,
 * never a secret.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { isHostConsumer } from "../consumers";
import { sourceOf } from "../sources";
import type { CeremonyConfig, EnvironmentConfig } from "./configSchema";
import { RotationRefusedError } from "./errors";
import { durationMs } from "./schedule";
import { SignatureError, sign, verify, type Signer } from "../adapters/sshsig";

/** What a request asks for, one entry per secret. */
const requestedSecret = z.strictObject({
    name: z.string(),
    generation: z.number().int(),
    consumers: z.array(z.string()),
    reason: z.string(),
    note: z.string().optional(),
});
const requestSchema = z.strictObject({
    kind: z.literal("rotation-request"),
    version: z.literal(1),
    id: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/),
    stack: z.string(),
    requestedAt: z.iso.datetime(),
    expiresAt: z.iso.datetime(),
    planDigest: z.string().regex(/^[0-9a-f]{64}$/),
    secrets: z.array(requestedSecret).min(1),
});
export type RotationRequest = z.output<typeof requestSchema>;
export type RequestedSecret = z.output<typeof requestedSecret>;

/** The ceremony a secret's rotation needs: its own, else the stack's; none when not required. */
export function ceremonyOf(env: EnvironmentConfig, name: string): CeremonyConfig | undefined {
    const c = env.secrets[name].ceremony ?? env.ceremony;
    return c?.required ? c : undefined;
}

/**
 * The ceremony settings that govern a rotation of `names` together, merged:
 * every approvers file must vouch, the shortest validity wins. Paths are
 * resolved against `project`; undefined when none of them needs a ceremony.
 */
export function governing(env: EnvironmentConfig, names: string[], project: string): { approvers: string[]; dir: string; validFor: string } | undefined {
    const cs = names.map((n) => ceremonyOf(env, n)).filter((c) => c !== undefined);
    if (!cs.length) return undefined;
    const dirs = [...new Set(cs.map((c) => path.resolve(project, c.dir)))];
    if (dirs.length > 1)
        throw new RotationRefusedError(
            `the secrets ${names.join(", ")} keep their ceremony requests in different directories (${dirs.join(", ")}); rotate them one at a time`,
        );
    return {
        approvers: [...new Set(cs.map((c) => path.resolve(project, c.approvers)))],
        dir: dirs[0],
        validFor: cs.map((c) => c.validFor).sort((a, b) => durationMs(a) - durationMs(b))[0],
    };
}

/** JSON with keys sorted at every level: the same config gives the same bytes in every checkout. */
export function canonical(v: unknown): string {
    if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
    if (v && typeof v === "object") {
        return `{${Object.keys(v)
            .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
            .sort()
            .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
            .join(",")}}`;
    }
    return JSON.stringify(v);
}

/**
 * The digest of what a start of `names` will run, from the config as it will
 * be (generations bumped, reason and note set): each secret's entry, every
 * host it uses, the stack's ceremony. Paths are as written (relative to the
 * project), so two checkouts of one stack agree. The window verdict and the
 * approval itself are left out: they are about when and who, not what.
 */
export function planDigest(stack: string, env: EnvironmentConfig, names: string[]): string {
    const secrets: Record<string, unknown> = {};
    const hosts = new Set<string>();
    for (const n of [...names].sort()) {
        const { outsideWindow: _o, approval: _a, ...entry } = env.secrets[n];
        void [_o, _a];
        secrets[n] = entry;
        for (const c of entry.consumers) if (isHostConsumer(c)) hosts.add(c.host);
        for (const h of sourceOf(entry.source.kind).hostRefs?.(entry.source) ?? []) hosts.add(h);
    }
    const used = Object.fromEntries([...hosts].sort().map((h) => [h, env.hosts[h]]));
    return createHash("sha256")
        .update(canonical({ stack, secrets, hosts: used, ceremony: env.ceremony }))
        .digest("hex");
}

/** A request's three files: the request, the requester's signature, the approver's. */
export function requestFiles(dir: string, id: string) {
    return { request: path.join(dir, `${id}.json`), requesterSig: path.join(dir, `${id}.json.sig`), approvalSig: path.join(dir, `${id}.approval.sig`) };
}

function writeNew(file: string, data: string): void {
    fs.writeFileSync(`${file}.tmp`, data, { mode: 0o644 });
    fs.renameSync(`${file}.tmp`, file);
}

/** Verifies a signature against every allowed-signers file that governs the request; all must name the same signer. */
function signerOf(bytes: Buffer, signature: string, approvers: string[], who: string, id: string): Signer {
    let signer: Signer | undefined;
    for (const a of approvers) {
        try {
            const s = verify(bytes, signature, a);
            if (signer && signer.principal !== s.principal) throw new SignatureError(`${a} names the key ${s.principal}, another file ${signer.principal}`);
            signer = s;
        } catch (e) {
            if (e instanceof SignatureError)
                throw new RotationRefusedError(`request ${id}: the ${who}'s signature is refused: ${e.message}. Nothing was changed`);
            throw e;
        }
    }
    return signer!;
}

/**
 * Writes a new request for `secrets` and signs it with the requester's key.
 * The requester must be an allowed signer: an approval of a request nobody
 * on the team can vouch for would witness nothing.
 */
export function createRequest(a: {
    dir: string;
    stack: string;
    digest: string;
    secrets: RequestedSecret[];
    validFor: string;
    approvers: string[];
    key: string;
    now?: Date;
}): { request: RotationRequest; file: string; requester: Signer } {
    const now = a.now ?? new Date();
    const id = `${a.stack}-${now.toISOString().replace(/[-:]|\.\d+/g, "")}-${randomBytes(3).toString("hex")}`;
    const request: RotationRequest = {
        kind: "rotation-request",
        version: 1,
        id,
        stack: a.stack,
        requestedAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + durationMs(a.validFor)).toISOString(),
        planDigest: a.digest,
        secrets: a.secrets,
    };
    const bytes = Buffer.from(`${JSON.stringify(request, null, 2)}\n`);
    let signature: string;
    try {
        signature = sign(bytes, a.key);
    } catch (e) {
        throw new RotationRefusedError(`${(e as Error).message}; no request was written`);
    }
    const requester = signerOf(bytes, signature, a.approvers, "requester", id);
    fs.mkdirSync(a.dir, { recursive: true, mode: 0o755 });
    const files = requestFiles(a.dir, id);
    writeNew(files.requesterSig, signature);
    writeNew(files.request, bytes.toString());
    return { request, file: files.request, requester };
}

/** A request as stored: its exact bytes (what both signatures cover) and its parsed form. */
export function readRequest(dir: string, idOrFile: string): { bytes: Buffer; request: RotationRequest; files: ReturnType<typeof requestFiles> } {
    const byPath = idOrFile.endsWith(".json");
    const id = byPath ? path.basename(idOrFile, ".json") : idOrFile;
    if (!/^[A-Za-z0-9_.-]{1,100}$/.test(id)) throw new RotationRefusedError(`"${idOrFile}" is not a request id. Nothing was changed`);
    const files = requestFiles(byPath ? path.dirname(idOrFile) : dir, id);
    let bytes: Buffer;
    try {
        bytes = fs.readFileSync(files.request);
    } catch {
        throw new RotationRefusedError(`no request ${id} in ${path.dirname(files.request)}. Nothing was changed`);
    }
    let parsed: ReturnType<typeof requestSchema.safeParse> | undefined;
    try {
        parsed = requestSchema.safeParse(JSON.parse(bytes.toString()));
    } catch {
        parsed = undefined;
    }
    if (!parsed?.success || parsed.data.id !== id)
        throw new RotationRefusedError(`${files.request} is not a rotation request (it was changed, or is some other file). Nothing was changed`);
    return { bytes, request: parsed.data, files };
}

export interface Expected {
    stack: string;
    digest: string;
    approvers: string[];
    now?: Date;
    /** The rotation it approved has already started (a resume): the request's expiry no longer applies. */
    started?: boolean;
}

/** The checks both `approve` and `start --request` make before anything else: who asked, for which stack and plan, still in time. */
export function checkRequest(r: ReturnType<typeof readRequest>, x: Expected): Signer {
    const { request, files, bytes } = r;
    const id = request.id;
    if (!fs.existsSync(files.requesterSig))
        throw new RotationRefusedError(`request ${id} has no requester's signature (${files.requesterSig}). Nothing was changed`);
    const requester = signerOf(bytes, fs.readFileSync(files.requesterSig, "utf8"), x.approvers, "requester", id);
    if (request.stack !== x.stack) throw new RotationRefusedError(`request ${id} is for stack ${request.stack}, not ${x.stack}. Nothing was changed`);
    const now = x.now ?? new Date();
    if (!x.started && now.getTime() > Date.parse(request.expiresAt))
        throw new RotationRefusedError(
            `request ${id} expired at ${request.expiresAt}; make a new one (bin/rotate start without --request). Nothing was changed`,
        );
    if (request.planDigest !== x.digest) {
        throw new RotationRefusedError(
            `request ${id} is for another plan (digest ${request.planDigest.slice(0, 12)}…, the plan now is ${x.digest.slice(0, 12)}…): the inventory, a generation, the reason or the note changed since it was made; make a new request. Nothing was changed`,
        );
    }
    return requester;
}

/** Signs a checked request as its approver; refuses the requester themselves and a second approval. */
export function approveRequest(r: ReturnType<typeof readRequest>, x: Expected & { key: string }): { requester: Signer; approver: Signer } {
    const requester = checkRequest(r, x);
    const id = r.request.id;
    if (fs.existsSync(r.files.approvalSig)) throw new RotationRefusedError(`request ${id} is already approved (${r.files.approvalSig}). Nothing was changed`);
    let signature: string;
    try {
        signature = sign(r.bytes, x.key);
    } catch (e) {
        throw new RotationRefusedError(`${(e as Error).message}; request ${id} is not approved`);
    }
    const approver = signerOf(r.bytes, signature, x.approvers, "approver", id);
    refuseSelfApproval(id, requester, approver);
    writeNew(r.files.approvalSig, signature);
    return { requester, approver };
}

function refuseSelfApproval(id: string, requester: Signer, approver: Signer): void {
    if (requester.principal === approver.principal || requester.key === approver.key) {
        throw new RotationRefusedError(
            `request ${id} was made by ${requester.principal}; its approval must come from another person (the approving key is ${approver.principal}'s). Nothing was changed`,
        );
    }
}

/** `start --request`: the request checked, its approval verified and from someone else. */
export function checkApproved(r: ReturnType<typeof readRequest>, x: Expected): { requester: Signer; approver: Signer } {
    const requester = checkRequest(r, x);
    const id = r.request.id;
    if (!fs.existsSync(r.files.approvalSig)) {
        throw new RotationRefusedError(
            `request ${id} is not approved yet: a second person runs bin/rotate approve --stack ${x.stack} --request ${id} --yes. Nothing was changed`,
        );
    }
    const approver = signerOf(r.bytes, fs.readFileSync(r.files.approvalSig, "utf8"), x.approvers, "approver", id);
    refuseSelfApproval(id, requester, approver);
    return { requester, approver };
}
