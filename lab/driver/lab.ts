// The lab as the end-to-end tests see it: its description (lab.json), stack
// configs that rotate its secrets, and direct checks against its real
// services (Redis AUTH, PostgreSQL login, SSH login, consumer /healthz).
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { ROOT } from "./workspace";

export const LAB_DIR = path.join(ROOT, ".lab");

export interface LabHost {
    name: string;
    ip: string;
    hostKey: string;
    etcDir: string;
    logDir: string;
}

export function lab(): any {
    return JSON.parse(fs.readFileSync(path.join(LAB_DIR, "lab.json"), "utf8"));
}

export function labCtl(...args: string[]): void {
    const script = args[0] === "up" ? "up.sh" : args[0] === "down" ? "down.sh" : "ctl.sh";
    const rest = script === "ctl.sh" ? args : args.slice(1);
    const r = spawnSync("bash", [path.join(ROOT, "lab", script), ...rest], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`lab ${args.join(" ")} failed: ${r.stdout}\n${r.stderr}`);
}

export const storeValue = (name: string) => fs.readFileSync(path.join(LAB_DIR, "store", name), "utf8");
export const storeHas = (file: string) => fs.existsSync(path.join(LAB_DIR, "store", file));
/** The generation the lab's file store has committed for a secret (0 before its first rotation). */
export const committedGeneration = (name: string) => (storeHas(`${name}.committed`) ? Number(storeValue(`${name}.committed`).trim()) : 0);
export const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

export function redisAuthOk(password: string): boolean {
    const l = lab();
    const r = spawnSync("redis-cli", ["--no-auth-warning", "-h", l.redis.host, "-p", String(l.redis.port), "--user", l.redis.user, "PING"], {
        env: { ...process.env, REDISCLI_AUTH: password },
        encoding: "utf8",
    });
    return r.stdout.trim() === "PONG";
}

export function pgLoginOk(user: string, password: string): boolean {
    const l = lab();
    const r = spawnSync("psql", ["-X", "-At", "-h", l.postgres.host, "-p", String(l.postgres.port), "-U", user, "-d", l.postgres.database, "-c", "select 1"], {
        env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: "5" },
        encoding: "utf8",
    });
    return r.status === 0 && r.stdout.trim() === "1";
}

export function sshLoginOk(privateKey: string): boolean {
    const l = lab();
    const d = fs.mkdtempSync(path.join(ROOT, ".test-work", "sshkey-"));
    try {
        fs.writeFileSync(path.join(d, "key"), privateKey.endsWith("\n") ? privateKey : privateKey + "\n", { mode: 0o600 });
        fs.writeFileSync(path.join(d, "kh"), `${l.target.ip} ${l.target.hostKey}\n`);
        const r = spawnSync("ssh", ["-n", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${d}/kh`,
            "-o", "ConnectTimeout=5", "-i", `${d}/key`, `${l.target.user}@${l.target.ip}`, "true"], { encoding: "utf8" });
        return r.status === 0;
    } finally {
        fs.rmSync(d, { recursive: true, force: true });
    }
}

/** pgbouncer on host3: which login it uses for the server side now. */
export function pgbouncerUser(): string {
    const l = lab();
    const r = spawnSync("psql", ["-X", "-At", "-h", l.pgbouncer.ip, "-p", String(l.pgbouncer.port), "-U", l.pgbouncer.clientUser, "-d", l.pgbouncer.database, "-c", "select current_user"], {
        env: { ...process.env, PGCONNECT_TIMEOUT: "5" },
        encoding: "utf8",
    });
    return r.status === 0 ? r.stdout.trim() : `error: ${r.stderr.trim()}`;
}

export async function http(url: string): Promise<{ status: number; body: string }> {
    try {
        const res = await fetch(url, { signal: AbortSignal.timeout(8000) });
        return { status: res.status, body: await res.text() };
    } catch (e) {
        return { status: 0, body: String(e) };
    }
}

/** sha256 of the secret a consumer app holds now, and whether it is healthy with it. */
/**
 * Everything a Redis rotation could change outside Pulumi's state: the
 * source's ACL LIST, the secret's files in the store, and each consumer's
 * redis.yaml and its .bak, byte for byte (read where `etcOf` says: by default
 * the lab's directory, or the host's own view under a tmpfs).
 */
export function redisWorld(secret: string, etcOf: (h: LabHost) => string = (h) => h.etcDir): string {
    const l = lab();
    const acl = spawnSync("redis-cli", ["--no-auth-warning", "-h", l.redis.host, "-p", String(l.redis.port), "--user", l.redis.adminUser, "ACL", "LIST"], {
        env: { ...process.env, REDISCLI_AUTH: fs.readFileSync(l.redis.adminPasswordFile, "utf8").trim() },
        encoding: "utf8",
    });
    assert.equal(acl.status, 0, acl.stderr);
    const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : null);
    const configs = hosts().map((h) => [read(path.join(etcOf(h), "redis.yaml")), read(path.join(etcOf(h), "redis.yaml.bak"))]);
    const store = fs.readdirSync(l.storeDir).filter((f) => f.startsWith(secret)).sort().map((f) => `${f}=${fs.readFileSync(path.join(l.storeDir, f), "utf8")}`);
    return JSON.stringify({ acl: acl.stdout, configs, store });
}

export async function consumerState(host: LabHost, kind: "redis" | "pg" | "ssh"): Promise<{ healthy: boolean; fingerprint: string }> {
    const h = lab().hosts.find((x: any) => x.name === host.name);
    const base = h.apps[kind].url;
    const [health, fp] = await Promise.all([http(`${base}/healthz`), http(`${base}/secret-fingerprint`)]);
    return { healthy: health.status === 200, fingerprint: fp.body.trim() };
}

export const hosts = (): LabHost[] => lab().hosts;

/** A consumer entry for one lab host's app. */
function consumer(h: LabHost, kind: "redis" | "pg" | "ssh", write: object, extra: object = {}) {
    const l = lab();
    const app = lab().hosts.find((x: any) => x.name === h.name).apps[kind];
    return {
        name: `${kind}-${h.name}`,
        host: h.ip,
        user: "root",
        hostKeyFile: `${l.labDir}/hosts/${h.name}/ssh_host_ed25519_key.pub`,
        privateKeyFile: l.operatorKey,
        configPath: app.config,
        write,
        reload: `kill -HUP "$(cat ${app.pidfile})"`,
        health: { url: `${app.url}/healthz`, expectStatus: 200 },
        retries: 4,
        retryDelaySeconds: 1,
        timeoutSeconds: 10,
        logCheck: { path: app.log, pattern: "AUTH_FAILED", windowSeconds: 1 },
        ...extra,
    };
}

const secretOf = (name: string, type = "password") => ({
    name,
    type,
    generator: { kind: "command", length: 32 },
    reason: "scheduled", note: "e2e scheduled rotation",
    operator: "e2e-tests",
});

export function redisStack(generation: number): Record<string, unknown> {
    const l = lab();
    return {
        generation,
        secret: secretOf("app-redis"),
        store: { kind: "file", dir: l.storeDir },
        source: { kind: "redis-acl", host: l.redis.host, port: l.redis.port, user: l.redis.user, adminUser: l.redis.adminUser, adminPasswordFile: l.redis.adminPasswordFile },
        consumers: hosts().map((h) => consumer(h, "redis", { format: "yaml-key", key: "redis.password" })),
    };
}

/** pgbouncer's config with the server credential as template placeholders. */
export function pgbouncerTemplate(): string {
    const l = lab();
    const host3 = hosts().find((h) => h.name === l.pgbouncer.host)!;
    const current = fs.readFileSync(path.join(host3.etcDir, "pgbouncer.ini"), "utf8");
    return current.replace(/^(app = .*?)user=\S+ password=\S+$/m, "$1user={{user}} password={{secret}}");
}

export function postgresStack(generation: number): Record<string, unknown> {
    const l = lab();
    const host3 = hosts().find((h) => h.name === l.pgbouncer.host)!;
    return {
        generation,
        secret: secretOf("app-pg"),
        store: { kind: "file", dir: l.storeDir },
        source: {
            kind: "postgres-role", host: l.postgres.host, port: l.postgres.port, database: l.postgres.database, group: l.postgres.group,
            loginPrefix: l.postgres.loginPrefix, initialLogin: l.postgres.initialLogin, adminUser: l.postgres.adminUser, adminPasswordFile: l.postgres.adminPasswordFile,
        },
        consumers: [
            ...hosts().map((h) => consumer(h, "pg", { format: "env-line", key: "PGPASSWORD", userKey: "PGUSER" })),
            {
                ...consumer(host3, "pg", { format: "template", template: pgbouncerTemplate() }),
                name: "pgbouncer-host3",
                configPath: l.pgbouncer.config,
                reload: `kill -HUP "$(cat ${l.pgbouncer.pidfile})"`,
                health: { command: `psql -X -At -h ${l.pgbouncer.ip} -p ${l.pgbouncer.port} -U ${l.pgbouncer.clientUser} -d ${l.pgbouncer.database} -c 'select 1' | grep -qx 1` },
                logCheck: undefined,
            },
        ],
    };
}

export function sshKeyStack(generation: number): Record<string, unknown> {
    const l = lab();
    return {
        generation,
        secret: { ...secretOf("app-deploy-key", "ssh-key") },
        store: { kind: "file", dir: l.storeDir },
        source: {
            kind: "ssh-authorized-key", host: l.target.ip, port: l.target.port, user: l.target.user, hostKeyFile: l.target.hostKeyFile,
            privateKeyFile: l.operatorKey, authorizedKeysFile: l.target.authorizedKeysFile, loginUser: l.target.user,
        },
        consumers: hosts().map((h) => consumer(h, "ssh", { format: "template", template: "{{secret}}\n" })),
    };
}

// ---- Inside a lab host (its mount namespace, entered through its sshd): the disk-full faults.

export const sshdPid = (h: LabHost) => fs.readFileSync(path.join(LAB_DIR, "run", `${h.name}-sshd.pid`), "utf8").trim();

/** Runs bash in a lab host's mount namespace. */
export function inHost(h: LabHost, script: string, ...args: string[]): void {
    const r = spawnSync("nsenter", ["-t", sshdPid(h), "-m", "--", "bash", "-c", `set -euo pipefail\n${script}`, "bash", ...args], { encoding: "utf8" });
    assert.equal(r.status, 0, `on ${h.name}: ${r.stderr}`);
}

/** Whether the disk-full row's tmpfs sits over the host's /etc/rotation-app (which is itself a bind mount). */
export function tmpfsOn(h: LabHost): boolean {
    // By its source name: inside lab/netns.sh a tmpfs of the namespace's own lies under the host's bind mount too.
    const r = spawnSync("nsenter", ["-t", sshdPid(h), "-m", "--", "findmnt", "-n", "-o", "SOURCE", "--mountpoint", "/etc/rotation-app"], { encoding: "utf8" });
    return r.stdout.split("\n").includes("rotation-fault");
}

/** The small tmpfs of the disk-full row: its files go back to the host's real directory, then it is unmounted. */
export function unmountTmpfs(h: LabHost): void {
    if (!tmpfsOn(h)) return;
    inHost(h, `rm -f /etc/rotation-app/.filler
cp -a /etc/rotation-app/. "$1"/
umount /etc/rotation-app`, h.etcDir);
}

/** A full disk under the host's configs: a 1 MiB tmpfs over /etc/rotation-app holding a copy of its files, then a filler to the last byte. */
export function fillConfigDir(h: LabHost): void {
    inHost(h, `mount -t tmpfs -o size=1m,mode=755 rotation-fault /etc/rotation-app
cp -a "$1"/. /etc/rotation-app/
dd if=/dev/zero of=/etc/rotation-app/.filler bs=4k 2>/dev/null || true`, h.etcDir);
}
