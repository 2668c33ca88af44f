// A fleet on the lab (the fleet test and bin/bench): for a size N, a Redis
// ACL user `fleetN`, a store secret `fleet-N` and N consumers as env files
// spread over the lab's three hosts, whose health command really
// authenticates to Redis with the file's password and logs AUTH_FAILED for
// the log check. Secret values stay in memory: they reach redis-cli only via
// stdin or REDISCLI_AUTH, and checks report what differs, never a value.
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { FileStorePart } from "../../stores/fileLayout";
import { lab } from "./lab";
import { storePath } from "./store";

export interface Fleet {
    /** Redis ACL user, e.g. fleet50. */
    user: string;
    /** Secret (store file) name, e.g. fleet-50. */
    secret: string;
    count: number;
}

export const fleetOf = (n: number): Fleet => ({ user: `fleet${n}`, secret: `fleet-${n}`, count: n });
export const runbookFleetOf = (n: number): Fleet => ({ user: `fleetrb${n}`, secret: `fleetrb-${n}`, count: n });

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
/** 32 letters and digits, like the project's generators (safe in an env line). */
const newPassword = () =>
    randomBytes(24)
        .toString("base64")
        .replace(/[^A-Za-z0-9]/g, "")
        .slice(0, 32)
        .padEnd(32, "x");

/** Consumer i lives on host1..host3 in turn. */
const hostOf = (i: number) => lab().hosts[i % lab().hosts.length];
export const consumerName = (f: Fleet, i: number) => `${f.user}-${i}`;
const remotePath = (f: Fleet, i: number) => `/etc/rotation-app/fleet/${consumerName(f, i)}.env`;
/** The same file seen from the root namespace. */
export const localPath = (f: Fleet, i: number) => path.join(hostOf(i).etcDir, "fleet", `${consumerName(f, i)}.env`);
/** One part of the fleet's secret in the lab's file store. */
export const storeFile = (f: Fleet, part: FileStorePart = "current") => storePath(f.secret, part);
const readStore = (f: Fleet) => fs.readFileSync(storeFile(f), "utf8");

/** Runs on the host: authenticates with the file's password, logs a failure for the log check. */
export function healthCommand(f: Fleet, i: number): string {
    const name = consumerName(f, i);
    const l = lab();
    return `p=$(sed -n 's/^REDIS_PASSWORD=//p' ${remotePath(f, i)}); if [ "$(REDISCLI_AUTH="$p" redis-cli --no-auth-warning -h ${l.redis.host} -p ${l.redis.port} --user ${f.user} PING 2>&1)" = PONG ]; then exit 0; else echo "AUTH_FAILED ${name} " >> /var/log/rotation-app/fleet.log; exit 1; fi`;
}

/** One consumer in the tests' flat form (flatConfig.ts turns it into a host and a consumer of rotation:secrets). */
export function consumerEntry(f: Fleet, i: number): Record<string, unknown> {
    const l = lab();
    const h = hostOf(i);
    return {
        name: consumerName(f, i),
        host: h.ip,
        user: "root",
        hostKeyFile: h.hostKeyFile,
        privateKeyFile: l.operatorKey,
        configPath: remotePath(f, i),
        write: { format: "env-line", key: "REDIS_PASSWORD" },
        reload: "sleep 1",
        health: { command: healthCommand(f, i) },
        retries: 3,
        retryDelaySeconds: 1,
        timeoutSeconds: 15,
        logCheck: { path: "/var/log/rotation-app/fleet.log", pattern: `AUTH_FAILED ${consumerName(f, i)} `, windowSeconds: 1 },
    };
}

/** The stack config without its consumers (the caller adds them inline or as a file). */
export function stackConfig(f: Fleet, generation: number): Record<string, unknown> {
    const l = lab();
    return {
        generation,
        secret: {
            name: f.secret,
            type: "password",
            generator: { kind: "command", length: 32 },
            reason: "scheduled",
            note: "fleet benchmark",
            operator: "bench",
        },
        store: { kind: "file", dir: l.storeDir },
        source: {
            kind: "redis-acl",
            host: l.redis.host,
            port: l.redis.port,
            user: f.user,
            adminUser: l.redis.adminUser,
            adminPasswordFile: l.redis.adminPasswordFile,
        },
    };
}

function adminRedis(commands: string): string {
    const l = lab();
    const r = spawnSync("redis-cli", ["--no-auth-warning", "-h", l.redis.host, "-p", String(l.redis.port), "--user", l.redis.adminUser], {
        input: commands,
        env: { ...process.env, REDISCLI_AUTH: fs.readFileSync(l.redis.adminPasswordFile, "utf8").trim() },
        encoding: "utf8",
    });
    return `${r.stdout}${r.stderr}`.trim();
}

/** Whether Redis accepts `password` for the fleet's user. */
export function authOk(f: Fleet, password: string): boolean {
    const l = lab();
    const r = spawnSync("redis-cli", ["--no-auth-warning", "-h", l.redis.host, "-p", String(l.redis.port), "--user", f.user, "PING"], {
        env: { ...process.env, REDISCLI_AUTH: password },
        encoding: "utf8",
    });
    return r.stdout.trim() === "PONG";
}

/**
 * Generation 0 of a fleet: the store file, and unless `storeOnly` (a preview
 * touches no host) the Redis user and every consumer file.
 */
export function setupFleet(f: Fleet, storeOnly = false): void {
    const password = newPassword();
    fs.mkdirSync(lab().storeDir, { recursive: true });
    fs.writeFileSync(storeFile(f), password, { mode: 0o600 });
    fs.chmodSync(storeFile(f), 0o600);
    if (storeOnly) return;
    // The hash travels on redis-cli's stdin; a fresh user holds exactly one password.
    const out = adminRedis(`ACL SETUSER ${f.user} reset on #${sha256(password)} ~* +@all\n`);
    if (out !== "OK") throw new Error(`creating Redis user ${f.user} failed: ${out}`);
    for (let i = 0; i < f.count; i++) {
        const file = localPath(f, i);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, `REDIS_PASSWORD=${password}\n`, { mode: 0o600 });
        fs.chmodSync(file, 0o600);
    }
    if (!authOk(f, password)) throw new Error(`Redis does not accept the initial password of ${f.user}`);
}

export const currentSecret = (f: Fleet) => readStore(f);

/**
 * After a rotation from `before`: the store moved on, every consumer file
 * holds the store's value, Redis rejects the old one and accepts the new one.
 * After a no-op (`before` equals the current value): nothing moved, files
 * still agree, the current one is accepted. Returns "ok" or what is wrong.
 */
export function verify(f: Fleet, before: string): string {
    const now = readStore(f);
    const rotated = now !== before;
    const problems: string[] = [];
    if (fs.existsSync(storeFile(f, "staged"))) problems.push(`a staged copy is left in the store (${storeFile(f, "staged")})`);
    let stale = 0;
    let first = "";
    for (let i = 0; i < f.count; i++) {
        const m = /^REDIS_PASSWORD=(.*)$/m.exec(fs.readFileSync(localPath(f, i), "utf8"));
        if (!m || m[1] !== now) {
            stale++;
            first ||= consumerName(f, i);
        }
    }
    if (stale) problems.push(`${stale} consumer file(s) differ from the store (first: ${first})`);
    if (!authOk(f, now)) problems.push("Redis rejects the store's current password");
    if (rotated && authOk(f, before)) problems.push("Redis still accepts the previous password");
    return problems.length ? problems.join("; ") : rotated ? "ok" : "ok (unchanged)";
}
