// Measuring instruments of the benchmark that do not depend on the code
// under test: a Redis watcher that sees the dual-active window at the source
// itself, and a process-tree memory sampler.
import * as fs from "node:fs";
import * as net from "node:net";
import { lab } from "../lab/driver";
/** Minimal RESP2 reader: one reply from `b` at `i`, or undefined if incomplete. */
function readReply(b: Buffer, i: number): [unknown, number] | undefined {
    const eol = b.indexOf("\r\n", i);
    if (eol < 0) return undefined;
    const line = b.toString("utf8", i + 1, eol);
    let p = eol + 2;
    switch (String.fromCharCode(b[i])) {
        case "+":
            return [line, p];
        case "-":
            return [new Error(line), p];
        case ":":
            return [Number(line), p];
        case "$": {
            const n = Number(line);
            if (n < 0) return [null, p];
            return b.length < p + n + 2 ? undefined : [b.toString("utf8", p, p + n), p + n + 2];
        }
        case "*": {
            const n = Number(line);
            const items: unknown[] = [];
            for (let k = 0; k < n; k++) {
                const r = readReply(b, p);
                if (!r) return undefined;
                items.push(r[0]);
                p = r[1];
            }
            return [items, p];
        }
        default:
            throw new Error(`unexpected Redis reply: ${line.slice(0, 40)}`);
    }
}

/**
 * Watches a user's passwords at Redis every 100 ms over one admin
 * connection: the dual-active window as the source sees it (two passwords
 * valid), independent of the engine's 1 s event timestamps and of how the
 * rotation is done (engine or runbook).
 */
export class AclWatcher {
    private buf = Buffer.alloc(0);
    private timer?: NodeJS.Timeout;
    private waiting = false;
    private replied?: () => void;
    private ask?: () => void;
    private dualFrom?: number;
    private dualTo?: number;
    error?: string;

    private constructor(
        private readonly sock: net.Socket,
        readonly user: string,
    ) {}

    static start(user: string): Promise<AclWatcher> {
        const l = lab();
        const cmd = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
        return new Promise((resolve, reject) => {
            const sock = net.connect(l.redis.port, l.redis.host);
            const w = new AclWatcher(sock, user);
            let authed = false;
            sock.on("error", (e) => (authed ? (w.error = String(e)) : reject(e)));
            sock.on("data", (d) => {
                w.buf = Buffer.concat([w.buf, d]);
                for (let r = readReply(w.buf, 0); r; r = readReply(w.buf, 0)) {
                    w.buf = w.buf.subarray(r[1]);
                    if (!authed) {
                        if (r[0] !== "OK") return reject(new Error("Redis watcher: admin AUTH refused"));
                        authed = true;
                        w.ask = () => {
                            w.waiting = true;
                            sock.write(cmd("ACL", "GETUSER", user));
                        };
                        // One request in flight at a time, never a backlog.
                        w.timer = setInterval(() => w.waiting || w.ask!(), 100);
                        resolve(w);
                    } else w.onUser(r[0]);
                }
            });
            sock.write(cmd("AUTH", l.redis.adminUser, fs.readFileSync(l.redis.adminPasswordFile, "utf8").trim()));
        });
    }

    private onUser(reply: unknown): void {
        this.waiting = false;
        this.replied?.();
        if (!Array.isArray(reply)) return;
        const k = reply.indexOf("passwords");
        const n = k >= 0 && Array.isArray(reply[k + 1]) ? reply[k + 1].length : 0;
        const t = performance.now();
        if (n >= 2 && this.dualFrom === undefined) this.dualFrom = t;
        if (n < 2 && this.dualFrom !== undefined && this.dualTo === undefined) this.dualTo = t;
    }

    /**
     * Stops watching after one last look (a run may end milliseconds after
     * its revocation); seconds both passwords were valid (NaN if not seen).
     */
    async stop(): Promise<number> {
        clearInterval(this.timer);
        // The next reply, or give up after 2 s (a dead connection).
        const reply = () => Promise.race([new Promise<void>((resolve) => (this.replied = resolve)), new Promise((r) => setTimeout(r, 2000))]);
        if (!this.error) {
            if (this.waiting) await reply();
            const last = reply();
            this.ask!();
            await last;
        }
        this.sock.destroy();
        return this.dualFrom !== undefined && this.dualTo !== undefined ? (this.dualTo - this.dualFrom) / 1000 : NaN;
    }
}

/** Peak summed VmRSS of every descendant of this process (the pulumi tree), sampled every 100 ms. */
export class TreeMemory {
    peakBytes = 0;
    peakProcesses = 0;
    private timer = setInterval(() => this.sample(), 100);

    private sample(): void {
        const parent = new Map<number, number>();
        for (const d of fs.readdirSync("/proc")) {
            if (!/^\d+$/.test(d)) continue;
            try {
                // comm may hold spaces or parentheses: the fields start after the last ')'.
                const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
                parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
            } catch {
                // the process ended meanwhile
            }
        }
        const tree = new Set<number>([process.pid]);
        for (let grew = true; grew; ) {
            grew = false;
            for (const [pid, ppid] of parent) if (tree.has(ppid) && !tree.has(pid)) tree.add(pid), (grew = true);
        }
        tree.delete(process.pid);
        let kb = 0;
        for (const pid of tree) {
            try {
                kb += Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
            } catch {
                // gone
            }
        }
        if (kb * 1024 > this.peakBytes) (this.peakBytes = kb * 1024), (this.peakProcesses = tree.size);
    }

    stop(): void {
        this.sample();
        clearInterval(this.timer);
    }
}
