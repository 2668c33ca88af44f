/**
 * One long-lived SSH session per host that runs every job the provider sends
 * it. Each session on a host costs a fixed price before its command runs:
 * sshd starts the user's login shell, which reads its rc files (on these
 * machines root's .bashrc runs `pyenv init`: ~100 processes and ~90 ms of
 * CPU per session). A 50-consumer rotation sends ~200 commands; a session
 * each made the hosts' CPUs the limit (30 s of sshd CPU for two rotations).
 * The agent pays that price once per host and update.
 *
 * Protocol (the wrapper below is the ssh command and holds no job data):
 * the provider writes three lines per job on the session's stdin, `<id>
 * <timeout>`, the script and the job's stdin, the last two base64, so a job's
 * secret is never in an argv (`ps`) or environment; on the host it exists
 * only in the wrapper's memory and the job's stdin pipe. Jobs run in
 * parallel; each result comes back as `RESULT <id> <rc> <stdout bytes>
 * <stderr bytes>` and the bytes, written under flock so results never
 * interleave. Outputs wait in a private 0700 directory (tmpfs where there is
 * one), removed when the session ends.
 */
import type { ChildProcessWithoutNullStreams } from "node:child_process";

/** What one job (or a local run, provider/exec.ts) returns. */
export interface RunResult {
    code: number | null;
    stdout: string;
    stderr: string;
    timedOut: boolean;
}

export const AGENT_WRAPPER = `set -u
umask 077
# Ends whatever a login script printed without a newline; the reader skips it.
printf '\\n'
d=$(mktemp -d /dev/shm/.rotation-agent.XXXXXX 2>/dev/null || mktemp -d /tmp/.rotation-agent.XXXXXX) || { echo "rotation: cannot create a private temporary directory" >&2; exit 90; }
trap 'rm -rf -- "$d"' EXIT
while IFS=' ' read -r id t && IFS= read -r sc && IFS= read -r in; do
  (
    printf '%s' "$in" | base64 -d | timeout -k 2 "$t" bash -c "$(printf '%s' "$sc" | base64 -d)" >"$d/$id.out" 2>"$d/$id.err"
    rc=$?
    exec 9>>"$d/lock"
    flock 9
    printf 'RESULT %s %s %s %s\\n' "$id" "$rc" "$(wc -c <"$d/$id.out")" "$(wc -c <"$d/$id.err")"
    cat -- "$d/$id.out" "$d/$id.err"
    rm -f -- "$d/$id.out" "$d/$id.err"
  ) &
done
wait
`;

export interface Job {
    script: string;
    stdin: string;
    timeoutSeconds: number;
    /**
     * Jobs of one kind only go together (provider/coalesce.ts): a combined
     * job answers when its slowest part ends, so a config's quick read must
     * not wait on another consumer's reload and health check. Unset: "".
     */
    kind?: string;
}

/** A job's lines on the agent's stdin. */
export function frameJob(id: number, job: Job): string {
    const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
    return `${id} ${Math.max(1, Math.ceil(job.timeoutSeconds))}\n${b64(job.script)}\n${b64(job.stdin)}\n`;
}

/** Reads `RESULT` frames from the agent's stdout as they arrive. */
export class ResultReader {
    private buf: Buffer = Buffer.alloc(0);

    constructor(private readonly onResult: (id: number, r: RunResult) => void) {}

    push(chunk: Buffer): void {
        this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
        for (;;) {
            const eol = this.buf.indexOf(0x0a);
            if (eol < 0) return;
            const m = /^RESULT (\d+) (\d+) (\d+) (\d+)$/.exec(this.buf.toString("utf8", 0, eol));
            if (!m) {
                // Not ours (a login script that prints): skip the line.
                this.buf = this.buf.subarray(eol + 1);
                continue;
            }
            const [id, rc, outLen, errLen] = m.slice(1).map(Number);
            const end = eol + 1 + outLen + errLen;
            if (this.buf.length < end) return;
            const timedOut = rc === 124 || rc === 137;
            this.onResult(id, {
                code: timedOut ? null : rc,
                stdout: this.buf.toString("utf8", eol + 1, eol + 1 + outLen),
                stderr: this.buf.toString("utf8", eol + 1 + outLen, end),
                timedOut,
            });
            this.buf = this.buf.subarray(end);
        }
    }
}

interface Pending {
    resolve: (r: RunResult) => void;
    timer: NodeJS.Timeout;
}

/**
 * The provider's side of one host's agent: sends jobs, matches results. If
 * the session ends (host unreachable, connection lost), every job in flight
 * fails with what ssh said, and the next job starts a new session.
 */
export class HostAgent {
    private child?: ChildProcessWithoutNullStreams;
    private stderr = "";
    private nextId = 1;
    private readonly pending = new Map<number, Pending>();

    constructor(private readonly start: () => ChildProcessWithoutNullStreams) {}

    run(job: Job): Promise<RunResult> {
        const child = this.session();
        const id = this.nextId++;
        return new Promise<RunResult>((resolve) => {
            // The host enforces the job's timeout; this one covers a host that stops answering.
            const timer = setTimeout(() => this.settle(id, { code: null, stdout: "", stderr: this.stderr, timedOut: true }), (job.timeoutSeconds + 15) * 1000);
            this.pending.set(id, { resolve, timer });
            child.stdin.write(frameJob(id, job));
        });
    }

    private settle(id: number, r: RunResult): void {
        const p = this.pending.get(id);
        if (!p) return;
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.resolve(r);
    }

    private session(): ChildProcessWithoutNullStreams {
        if (this.child) return this.child;
        const child = this.start();
        this.child = child;
        this.stderr = "";
        const reader = new ResultReader((id, r) => this.settle(id, r));
        child.stdout.on("data", (d: Buffer) => reader.push(d));
        child.stderr.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString("utf8")).slice(-4000)));
        child.stdin.on("error", () => undefined);
        const ended = (code: number | null) => {
            if (this.child !== child) return;
            this.child = undefined;
            for (const id of [...this.pending.keys()]) {
                this.settle(id, {
                    code: code === 0 || code === null ? 255 : code,
                    stdout: "",
                    stderr: this.stderr || "the connection to the host ended",
                    timedOut: false,
                });
            }
        };
        child.on("close", ended);
        child.on("error", (e) => {
            this.stderr += String(e);
            ended(255);
        });
        return child;
    }

    close(): void {
        this.child?.stdin.end();
        this.child?.kill("SIGTERM");
    }
}
