/**
 * Values a person types (generator kind "manual", generators/manual.ts): asked
 * on the terminal with echo off, typeahead discarded first, or read from
 * standard input when it is piped (one line per secret, in the order they are
 * named); checked against the generator's rules without being printed; then
 * served to this run's generate steps on a Unix socket in a private 0700
 * directory, named to the engine by ROTATION_ENTRY_SOCKET (a path, not a
 * value). Never in argv, the environment, a file or plaintext state; the
 * directory is removed when the run ends.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type * as tty from "node:tty";
import { ENTRY_SOCKET_ENV, enteredProblems, isEntered } from "../generators";
import type { EnvironmentConfig } from "../lib/config";
import { CONFIG_NAMESPACE } from "../lib/fields";
import { alreadyGenerated } from "../adapters/resolve";
import { UsageError } from "./stack";

/** A secret whose generation needs a typed value in this run. */
export interface Wanted {
    secret: string;
    generation: number;
}

/** The secrets of `names` (in that order) whose generation `generationOf(name)` needs a typed value: a manual generator, not generated yet. */
export function wantedEntries(env: EnvironmentConfig, stack: string, auditLog: string, names: string[], generationOf: (n: string) => number): Wanted[] {
    return names
        .filter((n) => isEntered(env.secrets[n].generator))
        .map((n) => ({ secret: n, generation: generationOf(n) }))
        .filter((w) => w.generation > 0 && !alreadyGenerated(auditLog, stack, w.secret, w.generation));
}

/** Discards what was typed before the prompt (tcflush TCIFLUSH on the terminal; perl's POSIX module is in every Debian). */
function discardTypeahead(): void {
    spawnSync("perl", ["-MPOSIX", "-e", "POSIX::tcflush(0, POSIX::TCIFLUSH())"], { stdio: ["inherit", "ignore", "ignore"] });
}

/** One line typed with echo off; Ctrl-C or Ctrl-D on an empty line gives up (nothing was changed). */
function promptHidden(question: string): Promise<string> {
    const stdin = process.stdin as tty.ReadStream;
    // Echo off first, then what was typed before is thrown away, and only then the question: nothing typed after it is ever echoed.
    stdin.setRawMode(true);
    discardTypeahead();
    process.stderr.write(question);
    stdin.resume();
    return new Promise((resolve, reject) => {
        let chars: string[] = [];
        const finish = () => {
            stdin.off("data", onData);
            stdin.setRawMode(false);
            stdin.pause();
            process.stderr.write("\n");
        };
        const onData = (buf: Buffer) => {
            for (const ch of buf.toString("utf8")) {
                if (ch === "\r" || ch === "\n" || (ch === "\u0004" && chars.length)) {
                    finish();
                    return resolve(chars.join(""));
                }
                if (ch === "\u0003" || ch === "\u0004") {
                    finish();
                    return reject(new UsageError("no value entered (interrupted); nothing was changed"));
                }
                if (ch === "\u007f" || ch === "\b") chars.pop();
                else if (ch === "\u0015") chars = [];
                else chars.push(ch);
            }
        };
        stdin.on("data", onData);
    });
}

/** Standard input when it is not a terminal: everything piped, as lines (a trailing line break dropped). */
function pipedLines(): string[] | undefined {
    let text: string;
    try {
        text = fs.readFileSync(0, "utf8");
    } catch {
        return undefined;
    }
    if (!text) return undefined;
    return text.replace(/\r?\n$/, "").split(/\r?\n/);
}

/** Each wanted secret's value: typed or piped, checked against its generator's rules (never printed). */
async function readValues(env: EnvironmentConfig, stack: string, wanted: Wanted[]): Promise<Map<string, string>> {
    const values = new Map<string, string>();
    const terminal = process.stdin.isTTY === true;
    const piped = terminal ? undefined : pipedLines();
    if (!terminal && !piped) {
        throw new UsageError(
            `${wanted.map((w) => w.secret).join(", ")}: generator kind "manual" needs the new value, and there is no terminal to ask on and nothing on standard input: ` +
                `run bin/rotate on a terminal, or pipe the value (one line per secret: ${wanted.map((w) => w.secret).join(", ")}); nothing was changed`,
        );
    }
    if (piped && piped.length !== wanted.length) {
        throw new UsageError(
            `standard input holds ${piped.length} line(s), but ${wanted.length} value(s) are needed, one line each in this order: ${wanted.map((w) => w.secret).join(", ")}; nothing was changed`,
        );
    }
    for (const [i, w] of wanted.entries()) {
        const g = env.secrets[w.secret].generator;
        const ask = "prompt" in g && g.prompt ? g.prompt : "the new value";
        const value = piped ? piped[i] : await promptHidden(`rotate: ${w.secret} generation ${w.generation}: type ${ask} (not shown), then Enter: `);
        const problems = enteredProblems(g, value);
        if (problems.length) {
            const at = `${CONFIG_NAMESPACE}:secrets.${w.secret}.generator`;
            throw new UsageError(
                `stack ${stack}: the value entered for ${w.secret} does not meet its rules: ${problems.map((p) => (/^[a-z]+[A-Za-z]*: /.test(p) ? `${at}.${p}` : `${at}: ${p}`)).join("; ")}; nothing was changed`,
            );
        }
        values.set(w.secret, value);
    }
    return values;
}

/** What serves the entered values during the run; `close` ends it and removes its directory. */
export interface Entry {
    close(): void;
}

/** Serves `values` (by secret, for its generation) on a socket in a fresh 0700 directory, and names it in ROTATION_ENTRY_SOCKET. */
export function serveEntered(values: Map<string, string>, wanted: Wanted[]): Promise<Entry> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rotation-entry-"));
    fs.chmodSync(dir, 0o700);
    const socket = path.join(dir, "s");
    const server = net.createServer((c) => {
        let line = "";
        c.on("error", () => undefined);
        c.on("data", (d: Buffer) => {
            line += d.toString("utf8");
            const nl = line.indexOf("\n");
            if (nl < 0) return;
            let ask: { secret?: unknown; generation?: unknown; probe?: unknown } = {};
            try {
                ask = JSON.parse(line.slice(0, nl));
            } catch {
                // answered below as not offered
            }
            const w = wanted.find((x) => x.secret === ask.secret && x.generation === ask.generation);
            const value = w && values.get(w.secret);
            if (value === undefined) c.end(`bin/rotate holds no value for ${String(ask.secret)} generation ${String(ask.generation)} in this run`);
            else c.end(ask.probe ? "ok\0" : `ok\0${value}`);
        });
    });
    return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(socket, () => {
            fs.chmodSync(socket, 0o600);
            process.env[ENTRY_SOCKET_ENV] = socket;
            resolve({
                close() {
                    delete process.env[ENTRY_SOCKET_ENV];
                    values.clear();
                    server.close();
                    fs.rmSync(dir, { recursive: true, force: true });
                },
            });
        });
    });
}

/**
 * Asks for (or reads) the typed value of every wanted secret, checks it, and
 * serves them for the run that follows; undefined when none is wanted.
 */
export async function enterValues(env: EnvironmentConfig, stack: string, wanted: Wanted[]): Promise<Entry | undefined> {
    if (!wanted.length) return undefined;
    return serveEntered(await readValues(env, stack, wanted), wanted);
}
