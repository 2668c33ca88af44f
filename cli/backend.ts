/**
 * The state backend as the console needs it beyond the engine: who holds a
 * stack's lock, and removing a dead run's lock. Two kinds are known: the
 * file:// backend (bin/pulumi's default, .state/) and the PostgreSQL DIY
 * backend a team shares (postgres://...; Pulumi keeps every object, locks
 * included, as a row of one table, `pulumi_state` unless the URL's `table`
 * says otherwise). Any other backend's locks are the engine's to report.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Client, ClientConfig } from "pg";
import { LockedError, PROJECT, UsageError, filesUnder } from "./stack";

export interface LockInfo {
    pid: number;
    hostname: string;
    username?: string;
    timestamp?: string;
    /** The lock's file (file backend) or row key (postgres). */
    key: string;
    alive: boolean;
}

export type Backend = { kind: "file"; root: string } | { kind: "postgres"; url: string; table: string } | { kind: "other"; url: string };

/** The backend this checkout's commands use: PULUMI_BACKEND_URL, else bin/pulumi's default (.state/). */
export function backend(): Backend {
    const url = process.env.PULUMI_BACKEND_URL ?? `file://${path.join(PROJECT, ".state")}`;
    // The directory; a query (bin/pulumi adds metadata=skip) is the storage library's, not a part of it.
    if (url.startsWith("file://")) return { kind: "file", root: url.slice("file://".length).split("?")[0] };
    if (/^postgres(ql)?:\/\//.test(url)) {
        const u = new URL(url);
        const table = u.searchParams.get("table") ?? "pulumi_state";
        if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(table)) throw new UsageError(`PULUMI_BACKEND_URL: table "${table}" is not a plain SQL name`);
        u.searchParams.delete("table");
        return { kind: "postgres", url: u.toString(), table };
    }
    return { kind: "other", url: url.replace(/\/\/[^@/]*@/, "//***@") };
}

/** Whether the process that took a lock still runs: known only on the host that took it. */
function alive(info: { pid: number; hostname: string }): boolean {
    if (info.hostname !== os.hostname()) return true; // another host's lock: assume it lives
    try {
        process.kill(info.pid, 0);
        return true;
    } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM";
    }
}

/** A lock object's key or file belongs to `stack`: it is `[<prefix>/].pulumi/locks/<org>/<project>/<stack>/<id>.json`. */
const ofStack = (key: string, stack: string) => key.split(/[\\/]/).at(-2) === stack && key.endsWith(".json");

/**
 * A client of a PostgreSQL URL that holds no password: it comes from
 * PGPASSWORD or the PGPASSFILE / ~/.pgpass file, as for the Pulumi CLI, never
 * from a command line or the URL.
 */
export function stateClient(url: string): Client {
    // Loaded here, by the PostgreSQL backend only: node-postgres loads Node's fetch (undici) as it loads, a tenth of a second
    // of every command's start-up on the file backend (issue 29).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Client } = require("pg") as typeof import("pg");
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { parse } = require("pg-connection-string") as typeof import("pg-connection-string");
    // pgpass (libpq's password file, the package node-postgres itself uses) ships no types.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pgpass: (info: object, done: (password?: string) => void) => void = require("pgpass");
    // Parsed here, not passed as connectionString: that would set an empty password over the function below.
    const { password, ...conn } = parse(url);
    return new Client({
        ...(conn as ClientConfig),
        connectionTimeoutMillis: 10_000,
        // node-postgres calls it with the connection's parameters (host, port, database, user), which pgpass matches.
        password:
            password ||
            ((async (params: { user?: string; host?: string; port?: number; database?: string }) => {
                const found = process.env.PGPASSWORD || (await new Promise<string | undefined>((r) => pgpass(params, r)));
                if (!found)
                    throw new Error(
                        `no password for ${params.user}@${params.host}:${params.port}/${params.database}: set PGPASSFILE (a libpq password file, mode 0600) or PGPASSWORD`,
                    );
                return found;
            }) as unknown as () => Promise<string>),
    });
}

async function withDb<T>(b: Extract<Backend, { kind: "postgres" }>, f: (c: Client) => Promise<T>): Promise<T> {
    const c = stateClient(b.url);
    try {
        await c.connect();
    } catch (e) {
        throw new UsageError(
            `the PostgreSQL state backend (${b.url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@")}) cannot be reached: ${(e as Error).message}`,
        );
    }
    try {
        return await f(c);
    } finally {
        await c.end().catch(() => undefined);
    }
}

/** The backend's locks of the stack (one per running update), each with whether its process lives. */
export async function stackLocks(stack: string): Promise<LockInfo[]> {
    const b = backend();
    const lockOf = (key: string, text: string): LockInfo[] => {
        try {
            let info = JSON.parse(text);
            // The postgres backend keeps each object as {"data": <base64 of its bytes>}.
            if (typeof info?.data === "string") info = JSON.parse(Buffer.from(info.data, "base64").toString("utf8"));
            return [{ pid: info.pid, hostname: info.hostname, username: info.username, timestamp: info.timestamp, key, alive: alive(info) }];
        } catch {
            return [];
        }
    };
    if (b.kind === "file") {
        return filesUnder(path.join(b.root, ".pulumi", "locks"), (p) => ofStack(p, stack)).flatMap((f) => lockOf(f, fs.readFileSync(f, "utf8")));
    }
    if (b.kind === "postgres") {
        return withDb(b, async (c) => {
            const exists = await c.query("SELECT to_regclass($1) IS NOT NULL AS t", [b.table]);
            if (!exists.rows[0].t) return [];
            const r = await c.query(`SELECT key, data::text AS data FROM ${b.table} WHERE key LIKE '%.pulumi/locks/%'`);
            return r.rows.filter((row) => ofStack(row.key, stack)).flatMap((row) => lockOf(row.key, row.data));
        });
    }
    return [];
}

/**
 * Whether the backend holds the stack, read from its own objects:
 * `[<prefix>/].pulumi/stacks/<project>/<stack>.json` (or `.json.gz`; a
 * backend of before projects: `.pulumi/stacks/<stack>.json`). Undefined where
 * none is found or the backend is another kind: then only the CLI can tell
 * (`stack ls`), and it lists the stacks there are.
 */
export async function stackStored(stack: string, project: string): Promise<true | undefined> {
    const b = backend();
    const names = [`${project}/${stack}.json`, `${project}/${stack}.json.gz`, `${stack}.json`, `${stack}.json.gz`].map((n) => `.pulumi/stacks/${n}`);
    if (b.kind === "file") return names.some((n) => fs.existsSync(path.join(b.root, n))) || undefined;
    if (b.kind === "postgres") {
        return withDb(b, async (c) => {
            const exists = await c.query("SELECT to_regclass($1) IS NOT NULL AS t", [b.table]);
            if (!exists.rows[0].t) return undefined;
            const r = await c.query(`SELECT key FROM ${b.table} WHERE key LIKE '%.pulumi/stacks/%'`);
            return r.rows.some((row) => names.some((n) => row.key === n || row.key.endsWith(`/${n}`))) || undefined;
        });
    }
    return undefined;
}

/** Removes one lock (a dead run's): its file, or its row. */
export async function removeLock(lock: LockInfo): Promise<void> {
    const b = backend();
    if (b.kind === "file") fs.rmSync(lock.key);
    else if (b.kind === "postgres") await withDb(b, (c) => c.query(`DELETE FROM ${b.table} WHERE key = $1`, [lock.key]));
}

/** Refuses (LockedError) when another update holds the stack, naming it and what to do. */
export async function assertUnlocked(stack: string): Promise<void> {
    const [lock] = await stackLocks(stack);
    if (!lock) return;
    const who = `process ${lock.pid}${lock.username ? ` of ${lock.username}` : ""} on ${lock.hostname}`;
    if (lock.alive)
        throw new LockedError(
            `stack ${stack} is being changed by ${who} since ${lock.timestamp ?? "an unknown time"}; nothing was changed. Wait for it to finish.`,
        );
    throw new LockedError(
        `stack ${stack} holds the lock of a run that no longer exists (${who}, since ${lock.timestamp ?? "an unknown time"}); nothing was changed. Run: bin/rotate unlock --stack ${stack}, then resume`,
    );
}
