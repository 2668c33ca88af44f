/**
 * The rotations `up` would run, drawn from lib/plan.ts (never from the
 * resources, so the picture cannot disagree with the graph the components
 * realize): a Graphviz graph (DOT, or SVG through @viz-js/viz), a terminal
 * table, and a JSON step list for `--json`.
 *
 * The dual-active window (the new secret granted, the old one not yet
 * revoked) is marked on grant, every rollout and the gate, in rotate mode
 * only. A rollback has no such mark: it revokes nothing, and the new
 * generation's grant is withdrawn by Pulumi deleting it, which is no step
 * of the plan, so there is no step at which the window would be seen to close.
 */
import Table from "cli-table3";
import type { Viz } from "@viz-js/viz";
import type { PlanStep } from "../lib/plan";
import { consumerOf } from "../consumers";
import type { WaveEntry } from "../lib/waves";
import { type RunSecret, planOfRun } from "./runRecord";

/** One plan step of one secret, ids prefixed with the secret (`app-redis/rollout/web-1`). */
export interface PlanGraphStep {
    secret: string;
    id: string;
    phase: PlanStep["phase"];
    consumer?: string;
    /** A rollout's canary wave (1-based), when there are several. */
    wave?: number;
    /** Includes the `after` secrets' audit steps for the steps that wait on nothing else. */
    dependsOn: string[];
}

/** The phases inside the dual-active window (rotate mode). */
const DUAL_ACTIVE: ReadonlySet<PlanStep["phase"]> = new Set(["grant", "rollout", "gate"]);
const TABLE_WIDTH = 80;
/** Beyond this many consumers a row names only the first and the last. */
const LISTED_CONSUMERS = 6;

interface SecretPlan {
    secret: RunSecret;
    plan: PlanStep[];
}

const plans = (secrets: RunSecret[]): SecretPlan[] =>
    secrets.map((secret) => ({
        secret,
        plan: planOfRun(secret),
    }));

/** The `after` secrets that run in this run too; the others are not waited for (index.ts does the same). */
const afterInRun = (s: RunSecret, secrets: RunSecret[]) => s.after.filter((a) => a !== s.name && secrets.some((o) => o.name === a));

/** What a step does, in the runbook's words; a step lib/plan.ts adds later shows its id. */
function stepLabel(step: PlanStep, s: RunSecret): string {
    const next = `g${s.generation}`;
    const prev = `g${s.generation - 1}`;
    const labels: Record<string, string> =
        s.mode === "rollback"
            ? {
                  previous: `read ${prev} (to restore)`,
                  guard: "guard: revocation not started",
                  "grant-previous": `keep grant ${prev}`,
                  audit: "audit: rolled-back",
              }
            : {
                  preflight: `pre-flight: ${s.consumers.length} consumer${s.consumers.length === 1 ? "" : "s"}, source, store`,
                  previous: `read ${prev} (in use)`,
                  secret: `generate ${next}`,
                  stage: `stage ${next}`,
                  grant: `grant ${next}`,
                  gate: "gate: no rollback after",
                  revoke: `revoke ${prev}`,
                  promote: `promote ${next}`,
                  "verify/source": "verify source",
                  "verify/consumers": "verify consumers",
                  audit: "audit: completed",
              };
    return step.consumer ?? labels[step.id] ?? step.id;
}

export function planSteps(secrets: RunSecret[]): PlanGraphStep[] {
    return plans(secrets).flatMap(({ secret: s, plan }) => {
        const after = afterInRun(s, secrets).map((a) => `${a}/audit`);
        return plan.map((step) => ({
            secret: s.name,
            id: `${s.name}/${step.id}`,
            phase: step.phase,
            ...(step.consumer ? { consumer: step.consumer } : {}),
            ...(step.wave ? { wave: step.wave } : {}),
            dependsOn: step.dependsOn.length ? step.dependsOn.map((d) => `${s.name}/${d}`) : after,
        }));
    });
}

/** A DOT quoted string; labels and ids are escStrings, where a backslash is itself escaped. */
const q = (s: string) => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
const html = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const secretTitle = (s: RunSecret) => (s.mode === "rollback" ? `${s.name}: roll back g${s.generation}` : `${s.name} g${s.generation - 1} -> g${s.generation}`);

/** One row per consumer: its name over the parts its rollout step runs, as its kind says (consumers/). */
function rolloutLabel(consumer: string, kind?: string): string {
    const { rolloutParts } = consumerOf(kind);
    const parts = rolloutParts.map((p) => `<td>${html(p)}</td>`).join("");
    return (
        `<<table border="0" cellborder="1" cellspacing="0" cellpadding="4" bgcolor="white">` +
        `<tr><td colspan="${rolloutParts.length}"><b>${html(consumer)}</b></td></tr><tr>${parts}</tr></table>>`
    );
}

export function planDot(secrets: RunSecret[]): string {
    const out = [
        "digraph plan {",
        "  rankdir=LR; nodesep=0.12; ranksep=0.35;",
        '  graph [fontname="Helvetica", fontsize=12];',
        '  node [fontname="Helvetica", fontsize=10, shape=box, style="rounded,filled", fillcolor=white, height=0.3];',
        '  edge [color="#555555", arrowsize=0.7];',
    ];
    const node = (s: RunSecret, step: PlanStep, indent: string) => {
        const id = `${s.name}/${step.id}`;
        const attrs = step.consumer
            ? `shape=plain, label=${rolloutLabel(step.consumer, s.consumerKinds?.[step.consumer])}`
            : `label=${q(stepLabel(step, s))}${step.phase === "revoke" ? ', color="#b03030", fontcolor="#b03030"' : ""}`;
        out.push(`${indent}${q(id)} [id=${q(id)}, ${attrs}];`);
    };
    // With rankdir=LR dot puts what is declared first at the bottom: secrets and consumers are declared
    // last first, so they read top-down in the config's order. One row per consumer: rollouts share a rank.
    // Canary waves: each wave a column of its own (it waits for the one before), boxed and labelled.
    const stacked = (s: RunSecret, rollouts: PlanStep[], indent: string) => {
        if (!rollouts.length) return;
        const waves = [...new Set(rollouts.map((st) => st.wave ?? 0))];
        for (const w of waves) {
            const members = rollouts.filter((st) => (st.wave ?? 0) === w);
            if (w)
                out.push(
                    `${indent}subgraph ${q(`cluster_${s.name}_wave${w}`)} {`,
                    `${indent}  id=${q(`${s.name}/wave-${w}`)}; label=${q(`wave ${w} (${members.length})`)}; style="dashed,rounded"; color="#8a6d00"; fontsize=10;`,
                );
            out.push(`${indent}{ rank=same;`);
            for (const step of [...members].reverse()) node(s, step, `${indent}  `);
            out.push(`${indent}}`);
            if (w) out.push(`${indent}}`);
        }
    };
    for (const { secret: s, plan } of plans(secrets).reverse()) {
        out.push(`  subgraph ${q(`cluster_${s.name}`)} {`, `    id=${q(s.name)}; label=${q(secretTitle(s))}; labeljust=l; color="#888888";`);
        const dual = s.mode === "rotate" ? plan.filter((st) => DUAL_ACTIVE.has(st.phase)) : [];
        for (const step of plan) if (!dual.includes(step) && !step.consumer) node(s, step, "    ");
        if (dual.length) {
            out.push(
                `    subgraph ${q(`cluster_${s.name}_dual`)} {`,
                `      id=${q(`${s.name}/dual-active`)}; label="dual-active: old and new secret both valid";`,
                '      style="filled,rounded"; fillcolor="#fff4cc"; color="#d9a400"; fontsize=10;',
            );
            for (const step of dual) if (!step.consumer) node(s, step, "      ");
            stacked(
                s,
                dual.filter((st) => st.consumer),
                "      ",
            );
            out.push("    }");
        } else {
            stacked(
                s,
                plan.filter((st) => st.consumer),
                "    ",
            );
        }
        out.push("  }");
    }
    // Edges last and outside every cluster: an edge statement inside a subgraph would make its ends members.
    for (const step of planSteps(secrets)) {
        for (const d of step.dependsOn) {
            const crossing = !d.startsWith(`${step.secret}/`);
            out.push(`  ${q(d)} -> ${q(step.id)}${crossing ? " [style=dashed]" : ""};`);
        }
    }
    out.push("}");
    return `${out.join("\n")}\n`;
}

let viz: Promise<Viz> | undefined;

/** Loaded on first use: the table and `--json` need no Graphviz (1 MB of WebAssembly). */
async function graphviz(): Promise<Viz> {
    viz ??= import("@viz-js/viz")
        .then((m) => m.instance())
        .catch((e) => {
            viz = undefined; // a failed load is tried again next time, not cached
            throw e;
        });
    return viz;
}

export async function renderPlanSvg(secrets: RunSecret[]): Promise<string> {
    return (await graphviz()).renderString(planDot(secrets), { format: "svg", engine: "dot" });
}

/** "3 consumers: web-1, web-2, web-3", or "web-1 ... web-50 (50)" for long lists. */
function consumerList(names: string[]): string {
    if (names.length > LISTED_CONSUMERS) return `${names[0]} ... ${names[names.length - 1]} (${names.length})`;
    return `${names.length} consumer${names.length === 1 ? "" : "s"}: ${names.join(", ")}`;
}

/**
 * The rollout's waves as they fall on this fleet (`in 3 waves of 1, 2, 6
 * consumers`), with the entries they come from when those say something else
 * (`(configured 1, 30%, 100%)`): a percentage or a repeated last entry only
 * shows its size once resolved. Nothing for a single wave.
 */
function wavesOf(rollouts: PlanStep[], configured: readonly WaveEntry[] = []): string {
    const sizes = [...new Set(rollouts.map((st) => st.wave ?? 0))].map((w) => rollouts.filter((st) => (st.wave ?? 0) === w).length);
    if (sizes.length < 2) return "";
    const config = configured.join(", ");
    return ` in ${sizes.length} waves of ${sizes.join(", ")} consumers${config !== sizes.join(", ") ? ` (configured ${config})` : ""}, each after the one before`;
}

/** How many resources carry the rollouts when consumers are batched (rollout.batch): `, by 16 resources of up to 63`. */
function batchesOf(rollouts: PlanStep[]): string {
    const sizes = new Map<number, number>();
    for (const st of rollouts) if (st.batch) sizes.set(st.batch, (sizes.get(st.batch) ?? 0) + 1);
    return sizes.size ? `, by ${sizes.size} resources of up to ${Math.max(...sizes.values())} consumers each` : "";
}

/** One row per phase: what it runs, which phases it waits for, and whether it lies in the dual-active window. */
function phaseRows(s: RunSecret, plan: PlanStep[], all: PlanGraphStep[]): string[][] {
    const phaseOf = new Map<string, string>(all.map((st) => [st.id, st.secret === s.name ? st.phase : `${st.secret} audit`]));
    return [...new Set(plan.map((st) => st.phase))].map((phase) => {
        const mine = plan.filter((st) => st.phase === phase);
        const what =
            phase === "rollout"
                ? `${consumerList(mine.map((st) => st.consumer!))}${wavesOf(mine, s.waves)}${batchesOf(mine)}`
                : mine.length > 1
                  ? mine.map((st) => st.id.replace(`${phase}/`, "")).join(", ")
                  : stepLabel(mine[0], s);
        const deps = all.filter((st) => st.secret === s.name && st.phase === phase).flatMap((st) => st.dependsOn);
        const waits = [...new Set(deps.map((d) => phaseOf.get(d)!))].join(", ") || "-";
        return [phase, what, waits, s.mode === "rotate" && DUAL_ACTIVE.has(phase) ? "yes" : ""];
    });
}

/** One compact table per secret, titled like the graph's cluster, the columns aligned across tables. */
export function planTable(secrets: RunSecret[], opts: { color?: boolean } = {}): string {
    const all = planSteps(secrets);
    const head = ["phase", "steps", "waits for", "dual-active"];
    const tables = plans(secrets).map(({ secret, plan }) => ({ title: secretTitle(secret), rows: phaseRows(secret, plan, all) }));
    const cells = [head, ...tables.flatMap((t) => t.rows)];
    const widest = (i: number, split: (c: string) => string[]) => Math.max(...cells.flatMap((r) => split(r[i]).map((w) => w.length))) + 2;
    const widths = head.map((_, i) => widest(i, (c) => [c]));
    // Borders take one column each. To fit, "waits for" wraps first (down to its longest word), then "steps".
    let excess = widths.reduce((a, b) => a + b, 0) + widths.length + 1 - TABLE_WIDTH;
    for (const i of [2, 1]) {
        const cut = Math.max(0, Math.min(excess, widths[i] - widest(i, (c) => c.split(" "))));
        widths[i] -= cut;
        excess -= cut;
    }
    const style = { compact: true, ...(opts.color === false ? { head: [], border: [] } : {}) };
    return tables
        .map(({ title, rows }) => {
            // cli-table3 takes a spanning cell as a heading too; its types only say string.
            const heading = { content: title, colSpan: head.length } as unknown as string;
            const table = new Table({ head: [heading], colWidths: widths, wordWrap: true, style });
            table.push(head, ...rows);
            return table.toString();
        })
        .join("\n");
}
