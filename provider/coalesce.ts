/**
 * Jobs for one host sent as one: the pre-flight, the gate's drift and log
 * anchors, the verification and a batch's config reads each ask every
 * consumer of a host at once, one small job per consumer. Through the agent
 * (provider/agent.ts) each job costs about a dozen processes on the host
 * before its script runs (decoding, timeout, a shell, framing its result
 * under a lock); at a thousand consumers that, not the scripts, was the
 * rotation's time. Jobs submitted for a host in the same turn of the event
 * loop, without stdin, go as one job whose script runs each part under its
 * own `timeout`, at most `limit` at once, and returns every part's exit code
 * and output; each caller gets its own result, as if its job had run alone.
 *
 * Only jobs without stdin are combined: a job whose stdin is a secret (a
 * rollout's new config) keeps the agent's path, where the secret exists only
 * in a pipe. A part's script is in the combined script's text, as the agent
 * holds it today.
 */
import { shq } from "../lib/quote";
import type { Job, RunResult } from "./agent";

/** The combined job of `parts` (none with stdin), each under its own timeout, at most `limit` running at once. */
export function combinedScript(parts: Job[], limit: number): string {
    const runs = parts
        .map(
            (p, i) =>
                `run ${i} ${Math.max(1, Math.ceil(p.timeoutSeconds))} ${shq(p.script)} &\nn=$((n + 1)); if [ "$n" -ge ${limit} ]; then wait -n; n=$((n - 1)); fi`,
        )
        .join("\n");
    const files = parts.map((_, i) => `"$d/${i}.out" "$d/${i}.err"`).join(" ");
    return `set -u
umask 077
d=$(mktemp -d /dev/shm/.rotation-parts.XXXXXX 2>/dev/null || mktemp -d /tmp/.rotation-parts.XXXXXX) || { echo "rotation: cannot create a private temporary directory" >&2; exit 90; }
trap 'rm -rf -- "$d"' EXIT
run() {
  timeout -k 2 "$2" bash -c "$3" </dev/null >"$d/$1.out" 2>"$d/$1.err"
  echo $? >"$d/$1.rc"
}
n=0
${runs}
wait
for i in $(seq 0 ${parts.length - 1}); do rc=255; [ -s "$d/$i.rc" ] && read -r rc <"$d/$i.rc"; printf 'PART %s %s\\n' "$i" "$rc"; done
printf 'SIZES'; stat -c ' %s' -- ${files} | tr -d '\\n'; printf '\\n'
cat -- ${files} | base64 -w0
printf '\\n'
`;
}

/** Each part's result from the combined job's: its exit code, its stdout and stderr cut from the shared bytes. */
export function splitResults(count: number, r: RunResult): RunResult[] {
    const failedWhole = (): RunResult[] => Array.from({ length: count }, () => ({ ...r }));
    if (r.code !== 0 || r.timedOut) return failedWhole();
    const codes = new Map<number, number>();
    for (const m of r.stdout.matchAll(/^PART (\d+) (\d+)$/gm)) codes.set(Number(m[1]), Number(m[2]));
    const sizes = /^SIZES((?: \d+)*)$/m.exec(r.stdout)?.[1].trim().split(" ").map(Number);
    const body = /^SIZES.*\n([A-Za-z0-9+/=]*)$/m.exec(r.stdout)?.[1];
    if (codes.size !== count || !sizes || sizes.length !== 2 * count || body === undefined) {
        return failedWhole().map((x) => ({ ...x, code: 255, stderr: `rotation: the host's combined answer was cut short${r.stderr ? `: ${r.stderr}` : ""}` }));
    }
    const bytes = Buffer.from(body, "base64");
    let at = 0;
    const next = (n: number) => {
        const s = bytes.toString("utf8", at, at + n);
        at += n;
        return s;
    };
    return Array.from({ length: count }, (_, i) => {
        const rc = codes.get(i)!;
        const timedOut = rc === 124 || rc === 137;
        const stdout = next(sizes[2 * i]);
        const stderr = next(sizes[2 * i + 1]);
        return { code: timedOut ? null : rc, stdout, stderr, timedOut };
    });
}

/** Scripts per combined job, in characters: well under the 128 KiB Linux allows one argument. */
const MAX_SCRIPT = 96 * 1024;

interface Waiting {
    job: Job;
    resolve: (r: RunResult) => void;
}

/**
 * Gathers one host's jobs without stdin during a turn of the event loop and
 * sends them through `send` as one (a lone job goes as it is).
 */
export class Coalescer {
    private waiting: Waiting[] = [];

    constructor(
        private readonly send: (job: Job) => Promise<RunResult>,
        private readonly limit: number,
    ) {}

    submit(job: Job): Promise<RunResult> {
        return new Promise((resolve) => {
            if (!this.waiting.length) setImmediate(() => this.flush());
            this.waiting.push({ job, resolve });
        });
    }

    private flush(): void {
        // The agent runs a job's script as one argument of bash, which Linux caps at 128 KiB.
        let chunk: Waiting[] = [];
        let size = 0;
        for (const w of this.waiting) {
            if (chunk.length && size + w.job.script.length > MAX_SCRIPT) {
                this.sendChunk(chunk);
                chunk = [];
                size = 0;
            }
            chunk.push(w);
            size += w.job.script.length + 200;
        }
        this.waiting = [];
        if (chunk.length) this.sendChunk(chunk);
    }

    private sendChunk(batch: Waiting[]): void {
        if (batch.length === 1) {
            this.send(batch[0].job).then(batch[0].resolve);
            return;
        }
        const jobs = batch.map((w) => w.job);
        // As long as the slowest part, times the rounds the limit makes.
        const rounds = Math.ceil(jobs.length / this.limit);
        const timeoutSeconds = rounds * (Math.max(...jobs.map((j) => Math.ceil(j.timeoutSeconds))) + 3) + 5;
        this.send({ script: combinedScript(jobs, this.limit), stdin: "", timeoutSeconds }).then((r) => {
            splitResults(jobs.length, r).forEach((x, i) => batch[i].resolve(x));
        });
    }
}
