/**
 * `bin/rotate check`: which generation each consumer's config holds, proven
 * without reading the secret back (lib/scripts/check.ts on the host,
 * lib/drift.ts here), and whether the source still accepts the previous
 * secret. Read-only: it changes no stack, host, store or source.
 */
import * as fs from "fs";
import * as path from "path";
import type { RotationConfig } from "../lib/config";
import { freshNonce, hmacInput, hmacOf, holding, type Holding } from "../lib/drift";
import { resolveEnvironment, type ResolvedRotation } from "../lib/resolve";
import { driftCheckScript } from "../lib/scripts/check";
import { postgresLogin, sourceScripts } from "../lib/scripts/source";
import { vaultRead } from "../lib/vault";
import { hostKeyRefusal, pool, runAt } from "../provider/exec";
import { stdinFields } from "../lib/quote";
import { type Common, load, pick, printJson } from "./common";
import { EXIT } from "./run";
import { PROJECT } from "./stack";

export interface ConsumerCheck {
    secret: string;
    consumer: string;
    holds: Holding | "staged";
    detail?: string;
}

export interface SourceCheck {
    secret: string;
    /** undefined: the store keeps no previous secret to try. */
    previousAccepted?: boolean;
    currentAccepted?: boolean;
    detail?: string;
}

interface Values {
    current: string;
    previous?: string;
    staged?: string;
}

/** The store's current, previous and staged values (never printed). */
async function storeValues(config: RotationConfig): Promise<Values> {
    const st = config.store;
    if (st.kind === "file") {
        const read = (suffix: string) => {
            const f = path.join(st.dir, `${config.secret.name}${suffix}`);
            return fs.existsSync(f) ? fs.readFileSync(f, "utf8") : undefined;
        };
        const current = read("");
        if (current === undefined) throw new Error(`${config.secret.name}: the store has no current secret`);
        return { current, previous: read(".previous"), staged: read(".new") };
    }
    const { data } = await vaultRead(st);
    const str = (k: string) => (typeof data?.[k] === "string" ? (data[k] as string) : undefined);
    if (str("current") === undefined) throw new Error(`${config.secret.name}: the store has no current secret`);
    return { current: str("current")!, previous: str("previous"), staged: str("new") };
}

/** One consumer's answer, with a nonce of its own. */
async function checkConsumer(r: ResolvedRotation, c: RotationConfig["consumers"][number], v: Values): Promise<ConsumerCheck> {
    const { config } = r;
    const base = { secret: config.secret.name, consumer: c.name };
    const nonce = freshNonce();
    const target = { kind: "ssh" as const, host: c.host, port: c.port, user: c.user, hostKey: r.consumerHostKeys[c.name], privateKeyFile: c.privateKeyFile };
    const res = await runAt(target, driftCheckScript(c.configPath, c.write, nonce), "", c.timeoutSeconds);
    if (res.timedOut || res.code !== 0) {
        const why = hostKeyRefusal(target, res.stderr) ?? (res.timedOut ? `no answer within ${c.timeoutSeconds}s` : res.stderr.trim().split("\n").pop() ?? `exit ${res.code}`);
        return { ...base, holds: "unreachable", detail: why };
    }
    const login = (g: number) => (config.source.kind === "postgres-role" ? postgresLogin(config.source, g) : undefined);
    const mac = (value: string, g: number) => hmacOf(nonce, hmacInput(c.write, value, login(g)));
    const g = config.generation;
    const verdict = holding(res.stdout, { current: mac(v.current, g), ...(v.previous !== undefined ? { previous: mac(v.previous, g - 1) } : {}) });
    // During a rotation a consumer already on the staged secret is where it should be.
    if (verdict.holds === "unknown" && v.staged !== undefined && holding(res.stdout, { current: mac(v.staged, g) }).holds === "current") return { ...base, holds: "staged" };
    return { ...base, ...verdict };
}

/** Whether the source accepts the previous secret (and the current one), by its verify script. */
async function checkSource(r: ResolvedRotation, v: Values): Promise<SourceCheck> {
    const { config } = r;
    const base = { secret: config.secret.name };
    if (v.previous === undefined) return { ...base, detail: "the store keeps no previous secret to try" };
    const scripts = sourceScripts(config.source, { generation: config.generation, secretName: config.secret.name }, r.sourceHostKey);
    const res = await runAt({ kind: "local" }, scripts.verify, stdinFields(v.previous, v.current), 60);
    if (res.code === 0) return { ...base, previousAccepted: false, currentAccepted: true };
    const said = res.stderr.trim().split("\n").pop() ?? "";
    if (/still accepted/.test(said)) return { ...base, previousAccepted: true, currentAccepted: true, detail: said };
    if (/is rejected/.test(said)) return { ...base, currentAccepted: false, detail: said };
    return { ...base, detail: `the source could not be asked: ${said || `exit ${res.code}`}` };
}

export async function check(o: Common & { secret?: string[] }): Promise<number> {
    const t0 = Date.now();
    const { config } = await load(o);
    const names = pick(config.env, o.stack, o.secret);
    const rotations = resolveEnvironment(o.stack, config.env, PROJECT, config.inventory).filter((r) => names.includes(r.config.secret.name));
    const consumers: ConsumerCheck[] = [];
    const sources: SourceCheck[] = [];
    try {
        await Promise.all(rotations.map(async (r) => {
            const v = await storeValues(r.config);
            const [mine, src] = await Promise.all([Promise.all(r.config.consumers.map((c) => checkConsumer(r, c, v))), checkSource(r, v)]);
            consumers.push(...mine);
            sources.push(src);
        }));
    } finally {
        pool.close();
    }
    const order = (x: { secret: string }) => names.indexOf(x.secret);
    consumers.sort((a, b) => order(a) - order(b));
    sources.sort((a, b) => order(a) - order(b));
    const drift = consumers.filter((c) => c.holds !== "current");
    const stillAccepted = sources.filter((s) => s.previousAccepted || s.currentAccepted === false);
    const ok = !drift.length && !stillAccepted.length;
    const result = { stack: o.stack, time: new Date(t0).toISOString(), seconds: (Date.now() - t0) / 1000, ok, consumers, sources };
    const dir = path.join(PROJECT, ".state", "checks");
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(dir, `${o.stack}.json`), JSON.stringify(result, null, 2), { mode: 0o600 });
    if (o.json) printJson(result);
    else {
        const w = Math.max(8, ...consumers.map((c) => `${c.secret} ${c.consumer}`.length));
        console.log(`stack ${o.stack}: ${consumers.length} consumers checked in ${result.seconds.toFixed(1)}s`);
        for (const c of consumers) console.log(`  ${`${c.secret} ${c.consumer}`.padEnd(w)}  ${c.holds}${c.detail ? `: ${c.detail}` : ""}`);
        for (const s of sources) {
            const what = s.previousAccepted === undefined ? (s.detail ?? "not checked") : s.previousAccepted ? `the previous secret is STILL ACCEPTED (${s.detail})` : s.currentAccepted === false ? `the current secret is REJECTED (${s.detail})` : "previous rejected, current accepted";
            console.log(`  ${s.secret} source: ${what}`);
        }
        console.log(ok ? "rotate: check: every consumer holds the current secret" : `rotate: check: drift: ${[...drift.map((c) => `${c.secret} ${c.consumer} ${c.holds}`), ...stillAccepted.map((s) => `${s.secret} source`)].join(", ")}`);
    }
    return ok ? EXIT.done : 1;
}
