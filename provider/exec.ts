/**
 * Runs a bash script on the operator's machine or on a host, with the secret
 * payload on stdin only (never in argv or the environment).
 *
 * SSH goes through one OpenSSH master connection per host (ControlMaster),
 * and over it one agent session that runs every command for that host
 * (provider/agent.ts): one handshake and one login shell per host and update.
 * Masters and agents are children of this process, in its process group:
 * when the provider ends, they end with it. Their sockets live in a private
 * 0700 directory, removed on exit.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { shq } from "../lib/quote";
import { AGENT_WRAPPER, HostAgent, type RunResult } from "./agent";
import { Coalescer } from "./coalesce";
import { JOBS_PER_HOST, Semaphore, processes } from "./limits";
import type { SshTarget, StepTarget } from "./types";

export type { RunResult };

function spawnAndWait(cmd: string, args: string[], stdin: string, timeoutSeconds: number): Promise<RunResult> {
    return new Promise((resolve) => {
        const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C.UTF-8" } });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
        }, timeoutSeconds * 1000);
        child.stdout.on("data", (d: Buffer) => out.push(d));
        child.stderr.on("data", (d: Buffer) => err.push(d));
        child.stdin.on("error", () => undefined);
        child.on("error", (e) => err.push(Buffer.from(String(e))));
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), timedOut });
        });
        child.stdin.end(stdin);
    });
}

const SSH_COMMON = [
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ServerAliveInterval=10",
];

interface Master {
    id: string;
    target: SshTarget;
    socket: string;
    ready: Promise<void>;
    agent: HostAgent;
    jobs: Semaphore;
    /** Jobs that got their permit together, sent as one (provider/coalesce.ts). */
    together: Coalescer;
}

/**
 * Per (user, host, port, key, pinned host key): one master connection and,
 * over it, one agent session that runs every job for that host
 * (provider/agent.ts), at most JOBS_PER_HOST at once.
 */
export class SshPool {
    private dir: string | undefined;
    private readonly masters = new Map<string, Master>();
    private readonly children: { kill(signal: NodeJS.Signals): boolean }[] = [];

    private privateDir(): string {
        if (!this.dir) {
            this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `rotation-ssh-${process.pid}-`));
            fs.chmodSync(this.dir, 0o700);
            process.once("exit", () => this.close());
        }
        return this.dir;
    }

    private args(id: string, t: SshTarget): string[] {
        const knownHosts = path.join(this.privateDir(), `${id}.known_hosts`);
        if (!fs.existsSync(knownHosts)) {
            const pattern = t.port === 22 ? t.host : `[${t.host}]:${t.port}`;
            fs.writeFileSync(knownHosts, `${pattern} ${t.hostKey}\n`, { mode: 0o600 });
        }
        return [...SSH_COMMON, "-o", `UserKnownHostsFile=${knownHosts}`, "-i", t.privateKeyFile, "-p", String(t.port), "-l", t.user];
    }

    private master(t: SshTarget): Master {
        const key = JSON.stringify([t.user, t.host, t.port, t.privateKeyFile, t.hostKey]);
        let m = this.masters.get(key);
        if (m) return m;
        const id = `m${this.masters.size}`;
        const socket = path.join(this.privateDir(), `${id}.sock`);
        const ready = new Promise<void>((resolve) => {
            const child = spawn("ssh", [...this.args(id, t), "-M", "-N", "-o", `ControlPath=${socket}`, "-o", "ControlPersist=no", "--", t.host], {
                stdio: ["ignore", "ignore", "ignore"],
            });
            this.children.push(child);
            child.unref();
            let done = false;
            const finish = () => {
                if (!done) {
                    done = true;
                    clearInterval(poll);
                    clearTimeout(giveUp);
                    resolve();
                }
            };
            // Ready once the socket exists; if the master fails, the agent connects
            // directly and reports the real error (e.g. connection refused).
            const poll = setInterval(() => fs.existsSync(socket) && finish(), 15);
            child.on("exit", finish);
            // Cleared once ready: a pending timer would keep a short-lived process (bin/rotate check) alive 12 s.
            const giveUp = setTimeout(finish, 12_000);
        });
        const agent = new HostAgent(() => {
            const child = spawn(
                "ssh",
                [...this.args(id, t), "-o", `ControlPath=${socket}`, "-o", "ControlMaster=no", "--", t.host, `bash -c ${shq(AGENT_WRAPPER)}`],
                { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C.UTF-8" } },
            );
            this.children.push(child);
            return child;
        });
        // A job takes its host's permit first, then goes with the others that got theirs in the same turn.
        const jobs = new Semaphore(JOBS_PER_HOST);
        const together = new Coalescer((job) => agent.run(job));
        m = { id, target: t, socket, ready, agent, jobs, together };
        this.masters.set(key, m);
        return m;
    }

    /** Runs `script` with bash on the host; stdin is the payload; `kind`: what it may go together with (Job.kind). */
    async run(t: SshTarget, script: string, stdin: string, timeoutSeconds: number, kind?: string): Promise<RunResult> {
        const m = this.master(t);
        await m.ready;
        const r = await m.jobs.run(() => m.together.submit({ script, stdin, timeoutSeconds, kind }));
        return r.code === 255 ? { ...r, stderr: hostKeyRefusal(t, r.stderr) ?? r.stderr } : r;
    }

    close(): void {
        for (const m of this.masters.values()) m.agent.close();
        for (const c of this.children) {
            try {
                c.kill("SIGTERM");
            } catch {
                // already gone
            }
        }
        if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
        this.dir = undefined;
        this.masters.clear();
    }
}

/** "SHA256:..." of an OpenSSH public key line, as ssh prints fingerprints. */
export function fingerprint(publicKey: string): string {
    const blob = Buffer.from(publicKey.trim().split(/\s+/)[1] ?? "", "base64");
    return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/**
 * ssh's own advice on a changed host key is to delete the pin (`ssh-keygen
 * -R` on a known_hosts file of ours that no longer exists). Say instead what
 * was pinned, what the host offered, and where the pin is kept.
 */
export function hostKeyRefusal(t: SshTarget, stderr: string): string | undefined {
    if (!/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/.test(stderr)) return undefined;
    const offered = /key sent by the remote host is\s+(SHA256:[A-Za-z0-9+/]+)/.exec(stderr)?.[1];
    return (
        `refused: ${t.host}:${t.port} offered ${offered ? `host key ${offered}` : "a host key"} but ${t.hostKey.split(" ")[0]} ${fingerprint(t.hostKey)} is pinned. ` +
        `Nothing was sent to that host. If it was rebuilt, check its new key out of band, then update this consumer's hostKey or hostKeyFile in the stack config; otherwise treat it as a man-in-the-middle.`
    );
}

export const pool = new SshPool();

/** Runs `script` with bash on the target; `kind`: which of the host's jobs it may go together with (Job.kind). */
export function runAt(target: StepTarget, script: string, stdin: string, timeoutSeconds: number, kind?: string): Promise<RunResult> {
    if (target.kind === "ssh") return pool.run(target, script, stdin, timeoutSeconds, kind);
    return processes.run(() => spawnAndWait("bash", ["-c", script], stdin, timeoutSeconds));
}

/** Where a step ran, for its error message. */
export function where(target: StepTarget): string {
    return target.kind === "ssh" ? ` on ${target.user}@${target.host}:${target.port}` : "";
}
