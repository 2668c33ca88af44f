/**
 * The gates the program keeps on its own, so a plain `pulumi up` is held to
 * them as `bin/rotate start` is: a rotation whose ceremony is required runs
 * only with an approval whose signatures verify, and a rotation starts
 * outside its window only with a leave that says who and why. Both concern a
 * generation not yet committed (its revocation not started), the one `up`
 * is about to move; a committed one has nothing left to approve.
 *
 * Checked before anything is registered: one refused secret stops the whole
 * program, since a program that left a secret out would have the engine
 * delete (withdraw) what that secret registered before.
 */
import { readAuditLog } from "../adapters/auditLog";
import type { AuditLine } from "./auditLine";
import { ceremonyOf, checkApproved, governing, planDigest, readRequest } from "./ceremony";
import type { EnvironmentConfig, Witnesses } from "./configSchema";
import { RotationRefusedError } from "./errors";
import type { ResolvedRotation } from "../adapters/resolve";
import { describeWindow, isOpen, nextOpening } from "./window";

export interface GateInput {
    stack: string;
    /** The environment as written (paths relative to the project): what a request's digest covers. */
    env: EnvironmentConfig;
    rotations: ResolvedRotation[];
    /** The project directory, against which ceremony paths are resolved. */
    project: string;
    now?: Date;
}

/** Whether the audit log shows this generation's rotation already under way (a step past the pre-flight done). */
export function startedIn(lines: AuditLine[], stack: string, secret: string, generation: number): boolean {
    return lines.some(
        (l) => l.stack === stack && l.secret === secret && l.generation === generation && l.mode === "rotate" && l.outcome === "ok" && l.phase !== "preflight",
    );
}

/**
 * Checks every rotation against its ceremony and window; sets the verified
 * witnesses (`config.approval`) on each rotation that has them. Throws one
 * RotationRefusedError naming every refused secret, why, and what to run.
 */
export function enforceGates(g: GateInput): void {
    const now = g.now ?? new Date();
    const refusals: string[] = [];
    const logs = new Map<string, AuditLine[]>();
    const linesOf = (file: string) => {
        if (!logs.has(file)) logs.set(file, readAuditLog(file));
        return logs.get(file)!;
    };
    for (const r of g.rotations) {
        const { config } = r;
        const name = config.secret.name;
        const entry = g.env.secrets[name];
        const ceremony = ceremonyOf(g.env, name);
        if (config.generation === 0 || config.mode !== "rotate" || (!ceremony && !config.window)) continue;
        const committed = r.committed ?? 0;
        const pending = committed < config.generation;
        const started = startedIn(linesOf(config.auditLog), g.stack, name, config.generation);
        const at = `stack ${g.stack}, secret ${name} generation ${config.generation}`;
        const putBack = `bin/pulumi --stack ${g.stack} config set --path rotation:secrets.${name}.generation ${committed}`;
        if (ceremony) {
            try {
                const w = entry.approval ? witnesses(g, entry.approval.request, name, config.generation, now, started || !pending) : undefined;
                if (w) config.approval = w;
                else if (pending) {
                    refusals.push(
                        `${at}: needs a second person's approval (its ceremony is required) and rotation:secrets.${name}.approval names no request. ` +
                            `Nothing was registered. Put the generation back (${putBack}) and run bin/rotate start --stack ${g.stack} --secret ${name} --yes: it records a signed request for an approver`,
                    );
                }
            } catch (e) {
                if (!(e instanceof RotationRefusedError)) throw e;
                // A committed generation has nothing left to approve: its lines carry no witnesses, and it goes on.
                if (pending) refusals.push(`${at}: ${e.message.replace(/\s*Nothing was changed\.?$/, "")}. Nothing was registered`);
            }
        }
        if (config.window && pending && !started && !isOpen(config.window, now) && !config.windowOverride) {
            const w = config.window;
            refusals.push(
                `${at}: outside its rotation window (${describeWindow(w)}; it next opens ${nextOpening(w, now).toISOString()}). Nothing was registered. ` +
                    `Rotate it then, or give leave for this generation: bin/rotate start --stack ${g.stack} --secret ${name} --outside-window "<why>" --yes ` +
                    `(after ${putBack}), or rotation:secrets.${name}.outsideWindow: {generation: ${config.generation}, by: <who>, why: <why>}`,
            );
        }
    }
    if (refusals.length) throw new RotationRefusedError(refusals.join("\n"));
}

/**
 * The witnesses of `request` for `name` at `generation`: the request names
 * it at that generation, both signatures verify against the approvers files,
 * two different people, the digest is the plan of the config as it is now,
 * and (unless the rotation already started) it has not expired.
 */
function witnesses(g: GateInput, id: string, name: string, generation: number, now: Date, started: boolean): Witnesses {
    const ceremony = governing(g.env, [name], g.project)!;
    const r = readRequest(ceremony.dir, id);
    const mine = r.request.secrets.find((s) => s.name === name);
    if (!mine) throw new RotationRefusedError(`request ${id} does not name ${name}`);
    if (mine.generation !== generation)
        throw new RotationRefusedError(`request ${id} is for generation ${mine.generation} of ${name}, the config says ${generation}`);
    const names = r.request.secrets.map((s) => s.name);
    const unknown = names.filter((n) => !(n in g.env.secrets));
    if (unknown.length) throw new RotationRefusedError(`request ${id} names ${unknown.join(", ")}, which stack ${g.stack} does not have`);
    const all = governing(g.env, names, g.project)!;
    const { requester, approver } = checkApproved(r, { stack: g.stack, digest: planDigest(g.stack, g.env, names), approvers: all.approvers, now, started });
    return { request: id, requester: requester.principal, approver: approver.principal };
}
