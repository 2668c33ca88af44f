// The lab as tests and benchmarks see it: its description (lab.json), its
// control scripts, and direct checks against its real services (Redis AUTH,
// PostgreSQL login, SSH login, consumer /healthz).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { LAB_DIR, ROOT, WORK } from "./paths";

export interface LabHost {
    name: string;
    ip: string;
    hostKey: string;
    etcDir: string;
    logDir: string;
    /** Its journald's files (its /run/log/journal): `journalctl --directory` reads them from outside. */
    journalDir: string;
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
    const d = fs.mkdtempSync(path.join(WORK, "sshkey-"));
    try {
        fs.writeFileSync(path.join(d, "key"), privateKey.endsWith("\n") ? privateKey : `${privateKey}\n`, { mode: 0o600 });
        fs.writeFileSync(path.join(d, "kh"), `${l.target.ip} ${l.target.hostKey}\n`);
        const r = spawnSync(
            "ssh",
            [
                "-n",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                `UserKnownHostsFile=${d}/kh`,
                "-o",
                "ConnectTimeout=5",
                "-i",
                `${d}/key`,
                `${l.target.user}@${l.target.ip}`,
                "true",
            ],
            { encoding: "utf8" },
        );
        return r.status === 0;
    } finally {
        fs.rmSync(d, { recursive: true, force: true });
    }
}

/** pgbouncer on host3: which login it uses for the server side now. */
export function pgbouncerUser(): string {
    const l = lab();
    const r = spawnSync(
        "psql",
        [
            "-X",
            "-At",
            "-h",
            l.pgbouncer.ip,
            "-p",
            String(l.pgbouncer.port),
            "-U",
            l.pgbouncer.clientUser,
            "-d",
            l.pgbouncer.database,
            "-c",
            "select current_user",
        ],
        {
            env: { ...process.env, PGCONNECT_TIMEOUT: "5" },
            encoding: "utf8",
        },
    );
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
    if (acl.status !== 0) throw new Error(`redis-cli ACL LIST as ${l.redis.adminUser} failed: ${acl.stderr}`);
    const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : null);
    const configs = hosts().map((h) => [read(path.join(etcOf(h), "redis.yaml")), read(path.join(etcOf(h), "redis.yaml.bak"))]);
    const store = fs
        .readdirSync(l.storeDir)
        .filter((f) => f.startsWith(secret))
        .sort()
        .map((f) => `${f}=${fs.readFileSync(path.join(l.storeDir, f), "utf8")}`);
    return JSON.stringify({ acl: acl.stdout, configs, store });
}

/** sha256 of the secret a consumer app holds now, and whether it is healthy with it. */
export async function consumerState(host: LabHost, kind: "redis" | "pg" | "ssh"): Promise<{ healthy: boolean; fingerprint: string }> {
    const h = lab().hosts.find((x: any) => x.name === host.name);
    const base = h.apps[kind].url;
    const [health, fp] = await Promise.all([http(`${base}/healthz`), http(`${base}/secret-fingerprint`)]);
    return { healthy: health.status === 200, fingerprint: fp.body.trim() };
}

export const hosts = (): LabHost[] => lab().hosts;
