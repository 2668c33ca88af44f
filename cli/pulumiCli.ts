/**
 * The Pulumi CLI as the console runs it: bin/pulumi (so the console and a
 * plain `bin/pulumi up` share one set of defaults) with the arguments and
 * environment the Automation API gave it (--non-interactive, --exec-kind
 * auto.local, PULUMI_AUTOMATION_API), and the engine's events read back from
 * its event log as they are written.
 *
 * Instead of the Automation API: loading @pulumi/pulumi/automation brings in
 * the SDK's whole runtime (an inline program's language host: TypeScript,
 * npm's arborist; 770 modules, 1-3 s under tsx), and its `up` asks for the
 * stack's outputs twice and its history once after the update, three more
 * CLI processes that each decrypt the stack with the passphrase; the console
 * uses none of that (issue 29). Every call is a phase of ROTATION_TRACE.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { StringDecoder } from "node:string_decoder";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { traced } from "./trace";

/** Config values as `config set-all` takes them. */
export type ConfigMap = Record<string, { value: string; secret?: boolean }>;

export interface UpOptions {
    onEvent?: (e: EngineEvent) => void;
    continueOnError?: boolean;
    /** URNs to replace although unchanged. */
    replace?: string[];
    color?: "always" | "never" | "raw" | "auto";
    /** The engine's own output (stdout), as it comes. */
    onOutput?: (s: string) => void;
}

/**
 * A CLI call that ended non-zero. The message has the Automation API's form
 * (`code: N`, ` stdout: ...`, ` stderr: ...`), which cli/run.ts and the
 * commands read for a lock or a refusal.
 */
export class PulumiError extends Error {
    override readonly name = "PulumiError";
    constructor(
        readonly code: number,
        readonly stdout: string,
        readonly stderr: string,
    ) {
        super(`code: ${code}\n stdout: ${stdout}\n stderr: ${stderr}`);
    }
}

/** A CLI call's subcommand, as the trace names it: `up`, `config set-all`, `stack ls` (never a value). */
const subcommand = (args: string[]) =>
    (["stack", "config"].includes(args[0]) && args[1] && !args[1].startsWith("-") ? args.slice(0, 2) : args.slice(0, 1)).join(" ");

/** The project's bin/pulumi, whatever project it acts on (ROTATION_PROJECT_DIR). */
export interface Cli {
    /** bin/pulumi of this checkout. */
    readonly command: string;
    /** Where it runs: the project. */
    readonly project: string;
    /** Variables added to this process's environment for every call. */
    readonly env: Record<string, string>;
}

/** Runs one CLI command to its end; non-zero throws PulumiError. */
export function run(cli: Cli, args: string[], onOutput?: (s: string) => void): Promise<{ stdout: string; stderr: string }> {
    const argv = [...args, "--non-interactive"];
    return traced(`pulumi ${subcommand(args)}`, () => {
        const child = spawn(cli.command, argv, {
            cwd: cli.project,
            env: {
                ...process.env,
                PULUMI_DEBUG_COMMANDS: "true",
                PULUMI_AUTOMATION_API: "true",
                ...cli.env,
                PATH: `${path.dirname(cli.command)}:${process.env.PATH ?? ""}`,
            },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (d: string) => {
            stdout += d;
            onOutput?.(d);
        });
        child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        return new Promise((resolve, reject) => {
            child.on("error", (e) => reject(new PulumiError(-2, "", e.message)));
            child.on("close", (code, signal) => {
                if (code === 0) resolve({ stdout, stderr });
                else reject(new PulumiError(code ?? -1, stdout, `${stderr}${signal ? `\nkilled by ${signal}` : ""}`));
            });
        });
    });
}

/**
 * Follows the engine's event log while it is written: each whole line is one
 * event, handed to `onEvent` in order. `stop` reads what is left and ends.
 */
function followEvents(file: string, onEvent: (e: EngineEvent) => void): { stop: () => void } {
    let fd: number | undefined;
    let rest = "";
    const text = new StringDecoder("utf8");
    // As the Automation API did: a line that is not an event, or one its handler fails on, is passed over, and the update goes on.
    const handle = (line: string) => {
        if (!line.trim()) return;
        try {
            onEvent(JSON.parse(line) as EngineEvent);
        } catch {
            // the update itself is the engine's; the view misses one event
        }
    };
    const buf = Buffer.alloc(1 << 16);
    const drain = () => {
        if (fd === undefined) {
            try {
                fd = fs.openSync(file, "r");
            } catch {
                return; // not written yet
            }
        }
        for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) {
            const lines = (rest + text.write(buf.subarray(0, n))).split("\n");
            rest = lines.pop()!;
            for (const line of lines) handle(line);
        }
    };
    const timer = setInterval(drain, 100);
    return {
        stop() {
            clearInterval(timer);
            drain();
            handle(rest);
            if (fd !== undefined) fs.closeSync(fd);
        },
    };
}

/** One stack of the project, as the console's commands use it. */
export class Stack {
    /** What the console needs of the project (resume names its URNs). */
    readonly workspace: { projectSettings: () => Promise<{ name: string }> };

    constructor(
        readonly name: string,
        readonly cli: Cli,
        projectName: () => string,
    ) {
        this.workspace = { projectSettings: async () => ({ name: projectName() }) };
    }

    private run(args: string[], onOutput?: (s: string) => void) {
        return run(this.cli, [...args, "--stack", this.name], onOutput);
    }

    async setAllConfig(config: ConfigMap, byPath?: boolean): Promise<void> {
        const values = Object.entries(config).flatMap(([k, v]) => [v.secret ? "--secret" : "--plaintext", `${k}=${v.value}`]);
        await this.run(["config", "set-all", ...(byPath ? ["--path"] : []), ...values]);
    }

    async removeAllConfig(keys: string[], byPath?: boolean): Promise<void> {
        await this.run(["config", "rm-all", ...(byPath ? ["--path"] : []), ...keys]);
    }

    /**
     * `pulumi up`, its events read back from an event log in a private
     * directory (0700, removed after): engine events hold no secret value
     * (the engine masks them), and nothing else is written there.
     */
    async up(opts: UpOptions = {}): Promise<void> {
        const args = ["up", "--yes", "--skip-preview"];
        for (const urn of opts.replace ?? []) args.push("--replace", urn);
        if (opts.continueOnError) args.push("--continue-on-error");
        if (opts.color) args.push("--color", opts.color);
        args.push("--exec-kind", "auto.local");
        if (!opts.onEvent) {
            await this.run(args, opts.onOutput);
            return;
        }
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rotation-events-"));
        const file = path.join(dir, "events.jsonl");
        const events = followEvents(file, opts.onEvent);
        try {
            await this.run([...args, "--event-log", file], opts.onOutput);
        } finally {
            try {
                events.stop();
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        }
    }

    /** `pulumi preview`, its output as it comes. */
    async preview(opts: { diff?: boolean; onOutput?: (s: string) => void } = {}): Promise<void> {
        await this.run(["preview", ...(opts.diff ? ["--diff"] : []), "--exec-kind", "auto.local"], opts.onOutput);
    }
}
