/**
 * `bin/rotate check`: which generation each consumer's config holds, proven
 * without reading the secret back (lib/scripts/check.ts on the host,
 * lib/drift.ts here), and whether the source still accepts the previous
 * secret. Read-only: it changes no stack, host, store or source.
 */
import type { RotationConfig } from "../lib/config";
import { type Holding, onCurrent } from "../lib/drift";
import { apiConsumerOf, isHostConsumer } from "../consumers";
import { consumerTarget, resolveEnvironment, type ResolvedRotation } from "../adapters/resolve";
import { sourceOf } from "../sources";
import { storeOf } from "../stores";
import { askHolding } from "../provider/drift";
import { pool, runAt } from "../provider/exec";
import { stdinFields } from "../lib/quote";
import { type Common, load, pick, printJson, writeLastCheck } from "./common";
import { EXIT } from "./run";
import { PROJECT } from "./stack";

export interface ConsumerCheck {
    secret: string;
    consumer: string;
    holds: Holding;
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
    const v = await storeOf(config.store.kind).values(config.store, config.secret.name);
    if (v.current === undefined) throw new Error(`${config.secret.name}: the store has no current secret`);
    return { ...v, current: v.current };
}

/** One consumer's answer (provider/drift.ts, as the gate asks it), with a nonce of its own. */
async function checkConsumer(r: ResolvedRotation, c: RotationConfig["consumers"][number], v: Values): Promise<ConsumerCheck> {
    const { config } = r;
    const login = (g: number) => sourceOf(config.source.kind).login?.(config.source, g);
    if (!isHostConsumer(c)) {
        // Behind an API: a CI secret store answers write-only (present, value unknowable), never current.
        const asked = { ...v, currentUser: login(config.generation), previousUser: login(config.generation - 1) };
        return { secret: config.secret.name, consumer: c.name, ...(await apiConsumerOf(c.kind).holds(c, asked)) };
    }
    const verdict = await askHolding(consumerTarget(r, c), c, v, { current: login(config.generation), previous: login(config.generation - 1) });
    return { secret: config.secret.name, consumer: c.name, ...verdict };
}

/** Whether the source accepts the previous secret (and the current one), by its verify script. */
async function checkSource(r: ResolvedRotation, v: Values): Promise<SourceCheck> {
    const { config } = r;
    const base = { secret: config.secret.name };
    if (v.previous === undefined) return { ...base, detail: "the store keeps no previous secret to try" };
    const scripts = sourceOf(config.source.kind).scripts(config.source, { generation: config.generation, secretName: config.secret.name }, r.sourceHostKey);
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
        await Promise.all(
            rotations.map(async (r) => {
                const v = await storeValues(r.config);
                const [mine, src] = await Promise.all([Promise.all(r.config.consumers.map((c) => checkConsumer(r, c, v))), checkSource(r, v)]);
                consumers.push(...mine);
                sources.push(src);
            }),
        );
    } finally {
        pool.close();
    }
    const order = (x: { secret: string }) => names.indexOf(x.secret);
    consumers.sort((a, b) => order(a) - order(b));
    sources.sort((a, b) => order(a) - order(b));
    const drift = consumers.filter((c) => !onCurrent(c.holds));
    const stillAccepted = sources.filter((s) => s.previousAccepted || s.currentAccepted === false);
    const ok = !drift.length && !stillAccepted.length;
    const result = { stack: o.stack, time: new Date(t0).toISOString(), seconds: (Date.now() - t0) / 1000, ok, consumers, sources };
    writeLastCheck(o.stack, result);
    if (o.json) printJson(result);
    else {
        const w = Math.max(8, ...consumers.map((c) => `${c.secret} ${c.consumer}`.length));
        console.log(`stack ${o.stack}: ${consumers.length} consumers checked in ${result.seconds.toFixed(1)}s`);
        for (const c of consumers) console.log(`  ${`${c.secret} ${c.consumer}`.padEnd(w)}  ${c.holds}${c.detail ? `: ${c.detail}` : ""}`);
        for (const s of sources) {
            const what =
                s.previousAccepted === undefined
                    ? (s.detail ?? "not checked")
                    : s.previousAccepted
                      ? `the previous secret is STILL ACCEPTED (${s.detail})`
                      : s.currentAccepted === false
                        ? `the current secret is REJECTED (${s.detail})`
                        : "previous rejected, current accepted";
            console.log(`  ${s.secret} source: ${what}`);
        }
        console.log(
            ok
                ? `rotate: check: every consumer holds the current secret${consumers.some((c) => c.holds === "write-only") ? " (a write-only one as far as its API can tell)" : ""}`
                : `rotate: check: drift: ${[...drift.map((c) => `${c.secret} ${c.consumer} ${c.holds}`), ...stillAccepted.map((s) => `${s.secret} source`)].join(", ")}`,
        );
    }
    return ok ? EXIT.done : 1;
}
