/**
 * The step provider: a Pulumi dynamic provider that runs one rotation step,
 * a bash script on the operator's machine or on a host over SSH (host key
 * pinned), with secrets only on stdin.
 *
 * Why not @pulumi/command: its provider plugin cannot be obtained on the
 * machines this project is built on (see toolchain/README.md). This provider
 * keeps the same contract (create/delete scripts, stdin, triggers replace,
 * logging off) and adds what rotation needs: retries with a budget, secret
 * redaction of every diagnostic, and audit lines per step outcome.
 *
 * Pulumi serializes these functions into the state and runs them in a
 * separate process, so everything they use is required inside them.
 */
import type * as pulumi from "@pulumi/pulumi";
import { rewriteConfig, type WriteSpec } from "../../lib/configFormats";

export type StepTarget =
    | { kind: "local" }
    | { kind: "ssh"; host: string; port: number; user: string; hostKey: string; privateKeyFile: string };

export interface AuditSpec {
    path: string;
    record: Record<string, string | number>;
}

export interface StepProps {
    /** What this step does, in the runbook's words; appears in errors. */
    title: string;
    target: StepTarget;
    /** "script" runs `script`; "write-config" rewrites `configPath` with the secret from stdin. */
    op: "script" | "write-config";
    script?: string;
    /** Runs when the step is deleted (e.g. withdraw a grant); gets the same stdin. */
    deleteScript?: string;
    /** Secret payload: NUL-terminated fields (see lib/quote.ts stdinFields). */
    stdin?: string;
    /** A change here re-runs the step (replace, create-before-delete). */
    triggers: (string | number)[];
    /** Keep stdout as a secret output (e.g. a generated secret). */
    captureStdout?: boolean;
    attempts: number;
    retryDelaySeconds: number;
    timeoutSeconds: number;
    audit?: AuditSpec;
    configPath?: string;
    write?: WriteSpec;
}

/** Inputs whose change re-records the step without running it again. */
const RECORDED_KEYS = ["title", "target", "op", "script", "deleteScript", "captureStdout", "attempts", "retryDelaySeconds", "timeoutSeconds", "audit", "configPath", "write"];

function splitFields(stdin: string | undefined): string[] {
    if (!stdin) return [];
    return stdin.split("\0").slice(0, -1);
}

/** Removes every secret from text that may reach a diagnostic. */
export function redact(text: string, secrets: string[]): string {
    let out = text;
    const sorted = secrets.filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
    for (const s of sorted) {
        out = out.split(s).join("[secret]");
        for (const line of s.split(/\r?\n/)) {
            if (line.trim().length >= 8) out = out.split(line).join("[secret]");
        }
    }
    return out;
}

function shellWord(value: string | number): string {
    return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

interface RunResult {
    code: number | null;
    stdout: string;
    stderr: string;
    timedOut: boolean;
}

async function runOnce(target: StepTarget, script: string, stdin: string, timeoutSeconds: number): Promise<RunResult> {
    const cp = require("child_process") as typeof import("child_process");
    const fs = require("fs") as typeof import("fs");
    const os = require("os") as typeof import("os");
    const path = require("path") as typeof import("path");
    let cmd: string;
    let args: string[];
    let knownHostsDir: string | undefined;
    if (target.kind === "local") {
        cmd = "bash";
        args = ["-c", script];
    } else {
        knownHostsDir = fs.mkdtempSync(path.join(os.tmpdir(), "rotation-kh-"));
        const knownHosts = path.join(knownHostsDir, "known_hosts");
        const hostPattern = target.port === 22 ? target.host : `[${target.host}]:${target.port}`;
        fs.writeFileSync(knownHosts, `${hostPattern} ${target.hostKey}\n`, { mode: 0o600 });
        cmd = "ssh";
        args = [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", `UserKnownHostsFile=${knownHosts}`,
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes",
            "-o", "ConnectTimeout=10",
            "-o", "LogLevel=ERROR",
            "-i", target.privateKeyFile,
            "-p", String(target.port),
            "-l", target.user,
            "--", target.host,
            `bash -c ${shellWord(script)}`,
        ];
    }
    try {
        return await new Promise<RunResult>((resolve) => {
            const child = cp.spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C.UTF-8" } });
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
    } finally {
        if (knownHostsDir) fs.rmSync(knownHostsDir, { recursive: true, force: true });
    }
}

function appendAudit(audit: AuditSpec | undefined, outcome: string, detail?: string): void {
    if (!audit) return;
    const fs = require("fs") as typeof import("fs");
    const path = require("path") as typeof import("path");
    fs.mkdirSync(path.dirname(audit.path), { recursive: true, mode: 0o700 });
    const line = JSON.stringify({ time: new Date().toISOString(), ...audit.record, outcome, ...(detail ? { detail } : {}) });
    fs.appendFileSync(audit.path, line + "\n", { mode: 0o600 });
}

/** Runs the step's script with retries; throws a redacted, titled error on failure. */
async function runScript(props: StepProps, script: string, alsoRedact: string[] = []): Promise<string> {
    const secrets = [...splitFields(props.stdin), ...alsoRedact];
    let last: RunResult | undefined;
    for (let attempt = 1; attempt <= Math.max(1, props.attempts); attempt++) {
        last = await runOnce(props.target, script, props.stdin ?? "", props.timeoutSeconds);
        if (last.code === 0 && !last.timedOut) return last.stdout;
        if (attempt < props.attempts) await new Promise((r) => setTimeout(r, props.retryDelaySeconds * 1000));
    }
    const where = props.target.kind === "ssh" ? ` on ${props.target.user}@${props.target.host}:${props.target.port}` : "";
    const why = last!.timedOut ? `timed out after ${props.timeoutSeconds}s` : `exited with code ${last!.code}`;
    const tail = redact(last!.stderr.trim().split("\n").slice(-5).join(" | "), secrets);
    const tries = props.attempts > 1 ? ` after ${props.attempts} attempts` : "";
    throw new Error(`${props.title}: ${why}${where}${tries}${tail ? `: ${tail}` : ""}`);
}

const WRITE_SCRIPT = (configPath: string) => `set -eu
f=${shellWord(configPath)}
d=$(dirname -- "$f")
tmp=$(mktemp "$d/.rotation-write.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
chmod 600 "$tmp"
chown --reference="$f" "$tmp" 2>/dev/null || true
if cmp -s "$tmp" "$f"; then exit 0; fi
cp -p -- "$f" "$f.bak.rotation-tmp"
chmod 600 "$f.bak.rotation-tmp"
mv -f -- "$f.bak.rotation-tmp" "$f.bak"
mv -f -- "$tmp" "$f"
trap - EXIT
`;

async function writeConfig(props: StepProps): Promise<void> {
    const secrets = splitFields(props.stdin);
    const [secret, user] = secrets;
    const readProps: StepProps = { ...props, stdin: "", title: `${props.title} (read ${props.configPath})` };
    const current = await runScript(readProps, `cat -- ${shellWord(props.configPath!)}`);
    let next: string;
    try {
        next = rewriteConfig(props.write!, current, secret, user);
    } catch (e) {
        throw new Error(`${props.title}: cannot update ${props.configPath}: ${redact(String((e as Error).message), secrets)}`);
    }
    if (next === current) return;
    // stdin is now the whole file; redact the credential itself, not the file.
    await runScript({ ...props, stdin: next, attempts: 1, title: `${props.title} (write ${props.configPath})` }, WRITE_SCRIPT(props.configPath!), secrets);
}

async function perform(props: StepProps): Promise<string | undefined> {
    try {
        if (props.op === "write-config") {
            await writeConfig(props);
            appendAudit(props.audit, "ok");
            return undefined;
        }
        const stdout = await runScript(props, props.script ?? "true");
        appendAudit(props.audit, "ok");
        return props.captureStdout ? stdout : undefined;
    } catch (e) {
        appendAudit(props.audit, "failed", String((e as Error).message).split("\n")[0]);
        throw e;
    }
}

export const stepProvider: pulumi.dynamic.ResourceProvider = {
    async diff(_id: string, olds: StepProps, news: StepProps) {
        if (JSON.stringify(olds.triggers) !== JSON.stringify(news.triggers)) {
            return { changes: true, replaces: ["triggers"], deleteBeforeReplace: false };
        }
        const changed = RECORDED_KEYS.filter((k) => JSON.stringify((olds as any)[k]) !== JSON.stringify((news as any)[k]));
        return { changes: changed.length > 0 };
    },
    async create(inputs: StepProps) {
        const stdout = await perform(inputs);
        const crypto = require("crypto") as typeof import("crypto");
        return { id: crypto.randomUUID(), outs: { ...inputs, ...(stdout !== undefined ? { stdout } : {}) } };
    },
    async update(_id: string, olds: StepProps & { stdout?: string }, news: StepProps) {
        return { outs: { ...news, ...(olds.stdout !== undefined ? { stdout: olds.stdout } : {}) } };
    },
    async delete(_id: string, props: StepProps) {
        if (!props.deleteScript) return;
        await runScript({ ...props, title: `${props.title} (undo)`, attempts: Math.max(1, props.attempts) }, props.deleteScript);
    },
};
