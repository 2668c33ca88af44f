/** What the console's commands share: the stack and its config, the secrets asked for, the audit log, the store's committed generation. */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Stack } from "./pulumiCli";
import { readAuditLog, type AuditLine } from "../adapters/auditLog";
import { NAME, type EnvironmentConfig, type SecretEntry } from "../lib/config";
import { storeOf } from "../stores";
import { lastCompleted, nextDue } from "../lib/schedule";
import type { RunSecret } from "./runRecord";
import { PROJECT, UsageError, openStack, projectName, readConfig, type StackConfig } from "./stack";
import { stackStored } from "./backend";

export interface Common {
    stack: string;
    json?: boolean;
}
export interface Mutating extends Common {
    yes?: boolean;
    plain?: boolean;
    engineOutput?: boolean;
}

/** A stack's last `bin/rotate check`, as cli/check.ts writes it and status and the run report read it. */
export interface LastCheck {
    time: string;
    ok: boolean;
    consumers: { secret: string; consumer: string; holds: string }[];
}

const lastCheckFile = (stack: string) => path.join(PROJECT, ".state", "checks", `${stack}.json`);

export function writeLastCheck(stack: string, result: LastCheck): void {
    fs.mkdirSync(path.dirname(lastCheckFile(stack)), { recursive: true, mode: 0o700 });
    fs.writeFileSync(lastCheckFile(stack), JSON.stringify(result, null, 2), { mode: 0o600 });
}

export function readLastCheck(stack: string): LastCheck | undefined {
    try {
        return JSON.parse(fs.readFileSync(lastCheckFile(stack), "utf8"));
    } catch {
        return undefined;
    }
}

/** Output for people goes to stdout, unless stdout carries the --json document. */
export const say = (o: Common, line: string) => (o.json ? process.stderr : process.stdout).write(`${line}\n`);
export const printJson = (doc: unknown) => process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);

export function checkStackName(o: Common): void {
    if (!o.stack) throw new UsageError("name the stack: --stack <name> (e.g. --stack dev)");
    if (!/^[A-Za-z0-9_.-]+$/.test(o.stack)) throw new UsageError(`invalid stack name "${o.stack}"`);
}

/** The named secrets, each checked to exist in the stack (all of them when none is named). */
export function pick(env: EnvironmentConfig, stack: string, names: string[] | undefined): string[] {
    for (const n of names ?? []) {
        if (!NAME.test(n)) throw new UsageError(`invalid secret name "${n}"`);
        if (!(n in env.secrets)) throw new UsageError(`stack ${stack} has no secret "${n}" (it has: ${Object.keys(env.secrets).join(", ")})`);
    }
    return names?.length ? names : Object.keys(env.secrets);
}

export function auditLogOf(env: EnvironmentConfig): string {
    return path.resolve(PROJECT, env.auditLog);
}

/** The audit log's lines, read once per command however many secrets ask. */
export function auditLines(env: EnvironmentConfig): AuditLine[] {
    return readAuditLog(auditLogOf(env));
}

/**
 * The generation of `n` whose revocation started, from its store: a file
 * store's marker, or a Vault secret's metadata (asked over the API).
 * Throws, naming the store's field, when the store cannot be asked.
 */
export async function committedOf(n: string, s: SecretEntry): Promise<number> {
    const store = structuredClone(s.store);
    const kind = storeOf(store.kind);
    const problems = kind.resolve(store, PROJECT, `secrets.${n}.store`);
    if (problems.length) throw new Error(problems.join("; "));
    return kind.localCommitted ? kind.localCommitted(store, n) : (await kind.ask!(store, n)).committed;
}

/** Each secret's schedule verdict from the audit log. */
export function dueInfo(env: EnvironmentConfig, lines: AuditLine[], name: string): { schedule?: string; due?: Date; last?: Date } {
    const s = env.secrets[name];
    const last = lastCompleted(lines, name);
    if (!s.schedule) return { last };
    return { schedule: s.schedule, last, due: nextDue(last, s.schedule, new Date()) };
}

export const isDue = (d: { due?: Date }) => d.due !== undefined && d.due.getTime() <= Date.now();

/** The secret as a run of the plan sees it: at generation `generation`, in `mode`. */
export function runSecret(env: EnvironmentConfig, name: string, generation: number, mode: RunSecret["mode"]): RunSecret {
    const s = env.secrets[name];
    const kinds = Object.fromEntries(s.consumers.flatMap((c) => (c.kind && c.kind !== "config-file" ? [[c.name, c.kind]] : [])));
    return {
        name,
        generation,
        mode,
        consumers: s.consumers.map((c) => c.name),
        ...(Object.keys(kinds).length ? { consumerKinds: kinds } : {}),
        after: s.after,
        ...(s.rollout.waves.length > 1 || s.rollout.waves[0] !== "100%" ? { waves: s.rollout.waves } : {}),
        ...(s.rollout.batch !== "auto" ? { batch: s.rollout.batch } : {}),
        reason: s.reason,
        ...(s.note ? { note: s.note } : {}),
        ...(s.approval ? { approval: { request: s.approval.request } } : {}),
    };
}

/** Opens the stack and reads its config; read-only commands never create a stack. */
export async function load(o: Common, mayCreate = false): Promise<{ stack: Stack; config: StackConfig }> {
    checkStackName(o);
    const stored = await stackStored(o.stack, projectName()).catch(() => undefined);
    const stack = await openStack(o.stack, mayCreate, stored);
    return { stack, config: await readConfig(stack) };
}
