// A throwaway copy of the project for one real-engine scenario: its own
// stack config, its own file:// state, its own audit log. Runs the real
// pulumi CLI from .tools/bin and records everything it printed, its event
// log and (optionally) `ps` snapshots, for the order and leak checks.
import { execFile, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import yaml from "js-yaml";
import type { AuditLine } from "../../lib/auditLine";
import { parseEvents, type EngineEvent } from "./events";
import { environmentOf, secretEntryOf } from "./flatConfig";
import { ROOT, WORK } from "./paths";

const PULUMI = path.join(ROOT, ".tools", "bin", "pulumi");
/** What a project copy links back to: the program and its modules (a folder not in this checkout is left out). */
const LINKED = [
    "index.ts",
    "launch",
    "components",
    "lib",
    "provider",
    "adapters",
    "stores",
    "sources",
    "generators",
    "writers",
    "consumers",
    "node_modules",
    "package.json",
    "tsconfig.json",
];

export interface WorkspaceOptions {
    /** Another backend than the workspace's own file:// one (the lab's PostgreSQL, say). */
    backendUrl?: string;
    /** Variables added to (undefined: removed from) the environment of every command. */
    env?: Record<string, string | undefined>;
    /** How the stack comes to be: `stack init` with the passphrase (default) or this secrets provider, or not at all (joinStackOf). */
    init?: "passphrase" | { secretsProvider: string } | "none";
    /** Another stack of this workspace's project (same copy, state and passphrase): bin/rotate run-due over several stacks. */
    project?: Workspace;
}

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
    events: EngineEvent[];
    eventLogText: string;
    ps: string[];
    seconds: number;
}

/** Everything any run printed or wrote, for the leak scan. */
export const captured: { label: string; text: string }[] = [];

export class Workspace {
    readonly dir: string;
    readonly stateDir: string;
    readonly auditLog: string;
    readonly env: NodeJS.ProcessEnv;
    private runs = 0;

    constructor(
        readonly name: string,
        readonly stack = "e2e",
        opts: WorkspaceOptions = {},
    ) {
        this.dir = opts.project?.dir ?? path.join(WORK, name);
        if (!opts.project) {
            fs.rmSync(this.dir, { recursive: true, force: true });
            fs.mkdirSync(path.join(this.dir, "stacks"), { recursive: true });
            for (const f of LINKED) if (fs.existsSync(path.join(ROOT, f))) fs.symlinkSync(path.join(ROOT, f), path.join(this.dir, f));
            fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(this.dir, "Pulumi.yaml"));
        }
        this.stateDir = path.join(this.dir, ".state");
        this.auditLog = path.join(this.stateDir, "audit.log");
        fs.mkdirSync(this.stateDir, { recursive: true });
        this.env = opts.project
            ? { ...opts.project.env }
            : {
                  ...process.env,
                  PATH: `${path.dirname(PULUMI)}:${process.env.PATH}`,
                  // As bin/pulumi makes any file:// URL: no metadata files beside the checkpoint (a kill could tear them).
                  PULUMI_BACKEND_URL: `file://${this.stateDir}?metadata=skip`,
                  PULUMI_CONFIG_PASSPHRASE: `e2e-passphrase-${name}`,
                  PULUMI_HOME: path.join(WORK, ".pulumi-home"),
                  PULUMI_SKIP_UPDATE_CHECK: "true",
                  PULUMI_DEBUG_COMMANDS: "true",
                  // The project's defaults, as bin/pulumi sets them.
                  PULUMI_PARALLEL: process.env.PULUMI_PARALLEL ?? "512",
                  NODE_OPTIONS: `--require "${path.join(ROOT, "launch", "preload.cjs")}" ${process.env.NODE_OPTIONS ?? ""}`.trim(),
                  PULUMI_CONTINUE_ON_ERROR: "true",
              };
        delete this.env.PULUMI_CONFIG_PASSPHRASE_FILE;
        if (opts.backendUrl) this.env.PULUMI_BACKEND_URL = opts.backendUrl;
        for (const [k, v] of Object.entries(opts.env ?? {})) {
            if (v === undefined) delete this.env[k];
            else this.env[k] = v;
        }
        const init = opts.init ?? "passphrase";
        if (init === "none") return;
        const provider = typeof init === "object" ? ["--secrets-provider", init.secretsProvider] : [];
        const r = spawnSync(PULUMI, ["stack", "init", stack, ...provider, "--non-interactive"], { cwd: this.dir, env: this.env, encoding: "utf8" });
        if (r.status !== 0) throw new Error(`stack init failed: ${r.stderr}`);
    }

    /** A second checkout of `other`'s stack (another operator's working directory): its stack file, as git would bring it. */
    joinStackOf(other: Workspace): void {
        fs.copyFileSync(other.stackFile, this.stackFile);
        this.flats = structuredClone(other.flats);
        this.extra = { ...other.extra };
    }

    get stackFile(): string {
        return path.join(this.dir, "stacks", `Pulumi.${this.stack}.yaml`);
    }

    /** The secrets of the stack in the tests' flat form (flatConfig.ts), and keys beside them. */
    private flats: Record<string, any>[] = [];
    private extra: Record<string, unknown> = {};

    /** Replaces the stack's `rotation:` config by one secret in the flat form (keeps the encryption salt). */
    setConfig(flat: Record<string, unknown>): void {
        this.setSecrets([flat]);
    }

    /**
     * Replaces the stack's `rotation:` config by these secrets. A flat form's
     * `consumersFile` (a YAML list of flat consumers) becomes an inventory file
     * (rotation:inventoryFile) with the hosts and consumers in the product's form.
     */
    setSecrets(flats: Record<string, unknown>[], extra: Record<string, unknown> = {}): void {
        this.flats = structuredClone(flats);
        this.extra = { ...extra };
        this.write();
    }

    /** Changes some keys of the first secret's flat form (e.g. generation, mode, consumers), keeping the others. */
    patchConfig(patch: Record<string, unknown>): void {
        this.patchSecret(this.flats[0].secret.name, patch);
    }

    /** Changes some keys of one secret's flat form. */
    patchSecret(name: string, patch: Record<string, unknown>): void {
        const flat = this.flats.find((f) => f.secret.name === name);
        if (!flat) throw new Error(`no secret ${name} in this workspace`);
        Object.assign(flat, structuredClone(patch));
        this.write();
    }

    /** The stack config as the product reads it, under `rotation:` keys. */
    private write(): void {
        const doc = (fs.existsSync(this.stackFile) ? yaml.load(fs.readFileSync(this.stackFile, "utf8")) : {}) as Record<string, unknown>;
        const inventory: { hosts: Record<string, unknown>; consumers: Record<string, unknown> } = { hosts: {}, consumers: {} };
        let inventoryFile: string | undefined;
        const inline = this.flats.map((flat) => {
            if (!flat.consumersFile) return flat;
            const { consumersFile, ...rest } = flat;
            const list = yaml.load(fs.readFileSync(consumersFile, "utf8")) as Record<string, unknown>[];
            const { hosts, entry } = secretEntryOf({ ...rest, consumers: list }, inventory.hosts);
            Object.assign(inventory.hosts, hosts);
            inventory.consumers[flat.secret.name] = entry.consumers;
            inventoryFile = path.join(path.dirname(consumersFile), `${path.basename(consumersFile, ".yaml")}.inventory.yaml`);
            return { ...rest, consumers: undefined };
        });
        const env = environmentOf(...inline);
        for (const s of Object.values(env.secrets as Record<string, Record<string, unknown>>)) if (s.consumers === undefined) delete s.consumers;
        if (inventoryFile) {
            fs.writeFileSync(inventoryFile, yaml.dump(inventory, { lineWidth: -1, skipInvalid: true }));
            env.inventoryFile = inventoryFile;
        }
        const cfg: Record<string, unknown> = {};
        for (const [k, v] of Object.entries({ ...env, ...this.extra })) cfg[`rotation:${k}`] = v;
        if (!("auditLog" in env) && !("auditLog" in this.extra)) cfg["rotation:auditLog"] = this.auditLog;
        doc.config = cfg;
        fs.writeFileSync(this.stackFile, yaml.dump(doc, { lineWidth: -1, skipInvalid: true }));
    }

    /** Runs `pulumi <args>` to completion; `up`/`preview` get an event log. */
    async pulumi(
        args: string[],
        opts: { sampleProcesses?: boolean; onEvent?: (e: EngineEvent, child: ReturnType<typeof spawn>) => void } = {},
    ): Promise<RunResult> {
        const n = ++this.runs;
        const eventLog = path.join(this.stateDir, `events-${n}.jsonl`);
        const withLog = ["up", "preview", "destroy", "refresh"].includes(args[0]) ? [...args, "--event-log", eventLog] : args;
        const t0 = Date.now();
        const child = spawn(PULUMI, [...withLog, "--stack", this.stack, "--non-interactive"], { cwd: this.dir, env: this.env, detached: true });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const ps: string[] = [];
        let sampler: NodeJS.Timeout | undefined;
        if (opts.sampleProcesses) {
            sampler = setInterval(() => execFile("ps", ["-eo", "pid,args", "--no-headers"], (_e, out) => ps.push(out)), 150);
        }
        let watcher: NodeJS.Timeout | undefined;
        if (opts.onEvent) {
            let seen = 0;
            watcher = setInterval(() => {
                const events = readEvents(eventLog);
                for (const e of events.slice(seen)) opts.onEvent!(e, child);
                seen = events.length;
            }, 100);
        }
        const code = await new Promise<number>((resolve) => child.on("close", (c, sig) => resolve(c ?? (sig ? 137 : 1))));
        if (sampler) clearInterval(sampler);
        if (watcher) clearInterval(watcher);
        const eventLogText = fs.existsSync(eventLog) ? fs.readFileSync(eventLog, "utf8") : "";
        const result = { code, stdout, stderr, events: parseEvents(eventLogText), eventLogText, ps, seconds: (Date.now() - t0) / 1000 };
        captured.push({ label: `${this.name} pulumi ${args[0]} #${n} stdout`, text: stdout });
        captured.push({ label: `${this.name} pulumi ${args[0]} #${n} stderr`, text: stderr });
        captured.push({ label: `${this.name} pulumi ${args[0]} #${n} events`, text: eventLogText });
        captured.push({ label: `${this.name} pulumi ${args[0]} #${n} ps`, text: ps.join("\n") });
        return result;
    }

    /** Runs the operator CLI (bin/rotate) on this workspace's project copy; its output joins the leak scan. */
    rotate(args: string[]): RunResult {
        const n = ++this.runs;
        const t0 = Date.now();
        const r = spawnSync(path.join(ROOT, "bin", "rotate"), [...args, "--stack", this.stack], {
            cwd: this.dir,
            env: { ...this.env, ROTATION_PROJECT_DIR: this.dir },
            encoding: "utf8",
            timeout: 600_000,
        });
        const stdout = r.stdout ?? "";
        const stderr = r.stderr ?? "";
        captured.push({ label: `${this.name} bin/rotate ${args[0]} #${n} stdout`, text: stdout });
        captured.push({ label: `${this.name} bin/rotate ${args[0]} #${n} stderr`, text: stderr });
        return { code: r.status ?? 1, stdout, stderr, events: [], eventLogText: "", ps: [], seconds: (Date.now() - t0) / 1000 };
    }

    /** bin/rotate as `rotate` runs it, with `ps` snapshots of every process while it runs (for the leak scan). */
    async rotateSampled(args: string[]): Promise<RunResult> {
        const n = ++this.runs;
        const t0 = Date.now();
        const child = spawn(path.join(ROOT, "bin", "rotate"), [...args, "--stack", this.stack], {
            cwd: this.dir,
            env: { ...this.env, ROTATION_PROJECT_DIR: this.dir },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const ps: string[] = [];
        const sampler = setInterval(() => execFile("ps", ["-eo", "pid,args", "--no-headers"], (_e, out) => ps.push(out)), 150);
        const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? 1)));
        clearInterval(sampler);
        captured.push({ label: `${this.name} bin/rotate ${args[0]} #${n} stdout`, text: stdout });
        captured.push({ label: `${this.name} bin/rotate ${args[0]} #${n} stderr`, text: stderr });
        captured.push({ label: `${this.name} bin/rotate ${args[0]} #${n} ps`, text: ps.join("\n") });
        return { code, stdout, stderr, events: [], eventLogText: "", ps, seconds: (Date.now() - t0) / 1000 };
    }

    /** bin/rotate over the whole project (run-due: no --stack), in the background; its output joins the leak scan. */
    async rotateProject(args: string[]): Promise<RunResult> {
        const n = ++this.runs;
        const t0 = Date.now();
        const child = spawn(path.join(ROOT, "bin", "rotate"), args, { cwd: this.dir, env: { ...this.env, ROTATION_PROJECT_DIR: this.dir } });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? 1)));
        captured.push({ label: `${this.name} bin/rotate ${args[0]} #${n} stdout`, text: stdout });
        captured.push({ label: `${this.name} bin/rotate ${args[0]} #${n} stderr`, text: stderr });
        return { code, stdout, stderr, events: [], eventLogText: "", ps: [], seconds: (Date.now() - t0) / 1000 };
    }

    /** The stack file as the product reads it (after bin/rotate changed it, say). */
    stackConfig(): Record<string, any> {
        return (yaml.load(fs.readFileSync(this.stackFile, "utf8")) as { config: Record<string, any> }).config;
    }

    /** Every file of the state backend, concatenated (encrypted secrets stay encrypted). */
    stateText(): string {
        const parts: string[] = [];
        const walk = (d: string) => {
            for (const e of fs.readdirSync(d, { withFileTypes: true })) {
                const p = path.join(d, e.name);
                if (e.isDirectory()) walk(p);
                else if (!e.name.startsWith("events-")) parts.push(fs.readFileSync(p, "utf8"));
            }
        };
        if (fs.existsSync(path.join(this.stateDir, ".pulumi"))) walk(path.join(this.stateDir, ".pulumi"));
        return parts.join("\n");
    }

    /** The workspace's audit log, every line parsed: unlike the product's reader, a line that is not JSON fails the test. */
    auditLines(): AuditLine[] {
        if (!fs.existsSync(this.auditLog)) return [];
        return fs
            .readFileSync(this.auditLog, "utf8")
            .trim()
            .split("\n")
            .filter(Boolean)
            .map((l) => JSON.parse(l));
    }
}

/** The events of the log at `file` so far (none before it exists). */
export function readEvents(file: string): EngineEvent[] {
    return fs.existsSync(file) ? parseEvents(fs.readFileSync(file, "utf8")) : [];
}
