/**
 * Jobs for one host sent as one: the pre-flight, a batch's rollouts, the
 * gate's drift questions and log anchors and the verification each ask
 * every consumer of a host at once, one small job per consumer. Through the
 * agent (provider/agent.ts) each job costs about a dozen processes on the
 * host before its script runs (decoding, timeout, a shell, framing its
 * result under a lock); at a thousand consumers that, not the scripts, was
 * the rotation's time. Jobs that got their host's permit (provider/limits.ts,
 * at most JOBS_PER_HOST out at once) in the same turn of the event loop go as
 * one job whose script runs each part at once under its own `timeout`, and
 * returns every part's exit code and output; each caller gets its own result,
 * as if its job had run alone.
 *
 * A part's stdin (a consumer's new config: a secret) travels as the agent
 * sends any job's: base64 on the session's stdin, one line per part; on the
 * host it exists only in the combined script's memory and the part's stdin
 * pipe, never in an argv or a file. A part's script (never a secret) is in
 * the combined script's text, as the agent holds any job's script.
 */
import { shq } from "../lib/quote";
import type { Job, RunResult } from "./agent";

/** The combined job of `parts`, all at once, each under its own timeout; its stdin is combinedStdin(parts). */
export function combinedScript(parts: Job[]): string {
    const runs = parts.map((p, i) => `IFS= read -r in || in=; run ${i} ${Math.max(1, Math.ceil(p.timeoutSeconds))} ${shq(p.script)} "$in" &`).join("\n");
    const files = parts.map((_, i) => `"$d/${i}.out" "$d/${i}.err"`).join(" ");
    return `set -u
umask 077
d=$(mktemp -d /dev/shm/.rotation-parts.XXXXXX 2>/dev/null || mktemp -d /tmp/.rotation-parts.XXXXXX) || { echo "rotation: cannot create a private temporary directory" >&2; exit 90; }
trap 'rm -rf -- "$d"' EXIT
run() {
  if [ -n "$4" ]; then
    printf '%s' "$4" | base64 -d | timeout -k 2 "$2" bash -c "$3" >"$d/$1.out" 2>"$d/$1.err"
  else
    timeout -k 2 "$2" bash -c "$3" </dev/null >"$d/$1.out" 2>"$d/$1.err"
  fi
  echo $? >"$d/$1.rc"
}
${runs}
wait
for i in $(seq 0 ${parts.length - 1}); do rc=255; [ -s "$d/$i.rc" ] && read -r rc <"$d/$i.rc"; printf 'PART %s %s\\n' "$i" "$rc"; done
printf 'SIZES'; stat -c ' %s' -- ${files} | tr -d '\\n'; printf '\\n'
cat -- ${files} | base64 -w0
printf '\\n'
`;
}

/** The combined job's stdin: each part's stdin in base64, a line each (empty: none). */
export function combinedStdin(parts: Job[]): string {
    return parts.map((p) => `${Buffer.from(p.stdin, "utf8").toString("base64")}\n`).join("");
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

/**
 * A host's items cut into runs whose script (built by `build`) fits one job:
 * halved until each does. A script that grows by a line per item (the
 * pre-flight and the gate of a host's consumers) stays whole up to
 * hundreds; one whose items each bring a function of their own is cut.
 */
export function scriptChunks<T>(items: T[], build: (part: T[]) => string): { part: T[]; script: string }[] {
    const script = build(items);
    if (script.length <= MAX_SCRIPT || items.length === 1) return [{ part: items, script }];
    const half = Math.ceil(items.length / 2);
    return [...scriptChunks(items.slice(0, half), build), ...scriptChunks(items.slice(half), build)];
}

interface Waiting {
    job: Job;
    resolve: (r: RunResult) => void;
}

/**
 * Gathers one host's jobs during a turn of the event loop and sends those of
 * one kind (Job.kind) through `send` as one (a lone job goes as it is): a
 * combined job answers when its slowest part ends.
 */
export class Coalescer {
    private waiting: Waiting[] = [];

    constructor(private readonly send: (job: Job) => Promise<RunResult>) {}

    submit(job: Job): Promise<RunResult> {
        return new Promise((resolve) => {
            if (!this.waiting.length) setImmediate(() => this.flush());
            this.waiting.push({ job, resolve });
        });
    }

    private flush(): void {
        const kinds = new Map<string, Waiting[]>();
        for (const w of this.waiting) {
            const k = w.job.kind ?? "";
            kinds.set(k, [...(kinds.get(k) ?? []), w]);
        }
        this.waiting = [];
        for (const same of kinds.values()) this.sendKind(same);
    }

    /** Jobs of one kind: as few combined jobs as fit. */
    private sendKind(waiting: Waiting[]): void {
        // The agent runs a job's script as one argument of bash, which Linux caps at 128 KiB.
        let chunk: Waiting[] = [];
        let size = 0;
        for (const w of waiting) {
            // As the combined script holds it: quoted, with its line around it.
            const part = shq(w.job.script).length + 200;
            if (chunk.length && size + part > MAX_SCRIPT) {
                this.sendChunk(chunk);
                chunk = [];
                size = 0;
            }
            chunk.push(w);
            size += part;
        }
        if (chunk.length) this.sendChunk(chunk);
    }

    private sendChunk(batch: Waiting[]): void {
        if (batch.length === 1) {
            this.send(batch[0].job).then(batch[0].resolve);
            return;
        }
        const jobs = batch.map((w) => w.job);
        // As long as the slowest part, and a little for the framing.
        const timeoutSeconds = Math.max(...jobs.map((j) => Math.ceil(j.timeoutSeconds))) + 5;
        this.send({ script: combinedScript(jobs), stdin: combinedStdin(jobs), timeoutSeconds, kind: jobs[0].kind }).then((r) => {
            splitResults(jobs.length, r).forEach((x, i) => batch[i].resolve(x));
        });
    }
}
