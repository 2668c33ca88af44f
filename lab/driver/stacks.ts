// Stack configs that rotate the lab's secrets (Redis, PostgreSQL with
// pgbouncer, the SSH deploy key) to every lab host's consumer app, in the
// tests' flat form (flatConfig.ts).
import * as fs from "node:fs";
import * as path from "node:path";
import { hosts, lab, type LabHost } from "./lab";

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
    reason: "scheduled",
    note: "e2e scheduled rotation",
    operator: "e2e-tests",
});

export function redisStack(generation: number): Record<string, unknown> {
    const l = lab();
    return {
        generation,
        secret: secretOf("app-redis"),
        store: { kind: "file", dir: l.storeDir },
        source: {
            kind: "redis-acl",
            host: l.redis.host,
            port: l.redis.port,
            user: l.redis.user,
            adminUser: l.redis.adminUser,
            adminPasswordFile: l.redis.adminPasswordFile,
        },
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
            kind: "postgres-role",
            host: l.postgres.host,
            port: l.postgres.port,
            database: l.postgres.database,
            group: l.postgres.group,
            loginPrefix: l.postgres.loginPrefix,
            initialLogin: l.postgres.initialLogin,
            adminUser: l.postgres.adminUser,
            adminPasswordFile: l.postgres.adminPasswordFile,
        },
        consumers: [
            ...hosts().map((h) => consumer(h, "pg", { format: "env-line", key: "PGPASSWORD", userKey: "PGUSER" })),
            {
                ...consumer(host3, "pg", { format: "template", template: pgbouncerTemplate() }),
                name: "pgbouncer-host3",
                configPath: l.pgbouncer.config,
                reload: `kill -HUP "$(cat ${l.pgbouncer.pidfile})"`,
                health: {
                    command: `psql -X -At -h ${l.pgbouncer.ip} -p ${l.pgbouncer.port} -U ${l.pgbouncer.clientUser} -d ${l.pgbouncer.database} -c 'select 1' | grep -qx 1`,
                },
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
            kind: "ssh-authorized-key",
            host: l.target.ip,
            port: l.target.port,
            user: l.target.user,
            hostKeyFile: l.target.hostKeyFile,
            privateKeyFile: l.operatorKey,
            authorizedKeysFile: l.target.authorizedKeysFile,
            loginUser: l.target.user,
        },
        consumers: hosts().map((h) => consumer(h, "ssh", { format: "template", template: "{{secret}}\n" })),
    };
}
