// The plan drawn by cli/planGraph.ts, checked on what Graphviz really
// renders (the SVG text: node groups, edge titles, cluster outlines), not on
// the DOT we hand it, so layout surprises (a node falling outside its
// cluster, a stray implicit node) fail here.
import assert from "node:assert/strict";
import { test } from "node:test";
import { instance } from "@viz-js/viz";
import { planDot, planSteps, planTable, renderPlanSvg } from "../../cli/planGraph";
import type { RunSecret } from "../../cli/runRecord";
import { rotationPlan } from "../../lib/plan";

const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`);
const secret = (name: string, mode: RunSecret["mode"], consumers: string[], after: string[] = [], generation = 6): RunSecret => ({
    name,
    generation,
    mode,
    consumers,
    after,
});

const REDIS = secret("app-redis", "rotate", names("web", 3));
const PG = secret("app-pg", "rollback", names("api", 2), [], 2);

/** Graphviz escapes ids and titles as XML (`-` as `&#45;`, `>` as `&gt;`). */
const decode = (s: string) =>
    s
        .replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d)))
        .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
        .replace(/&lt;/g, "<")
        .replace(/&gt;/g, ">")
        .replace(/&quot;/g, '"')
        .replace(/&apos;/g, "'")
        .replace(/&amp;/g, "&");

interface Box {
    x0: number;
    y0: number;
    x1: number;
    y1: number;
}

/** The box around every point a shape draws: polygon points, path coordinates, ellipses. */
function bounds(svg: string): Box {
    const xs: number[] = [];
    const ys: number[] = [];
    for (const m of svg.matchAll(/(?:points|d)="([^"]*)"/g)) {
        for (const p of m[1].matchAll(/(-?[\d.]+),(-?[\d.]+)/g)) {
            xs.push(Number(p[1]));
            ys.push(Number(p[2]));
        }
    }
    for (const e of svg.matchAll(/<ellipse[^>]*cx="([-\d.]+)" cy="([-\d.]+)" rx="([-\d.]+)" ry="([-\d.]+)"/g)) {
        const [cx, cy, rx, ry] = e.slice(1).map(Number);
        xs.push(cx - rx, cx + rx);
        ys.push(cy - ry, cy + ry);
    }
    assert.ok(xs.length, `no shape in ${svg.slice(0, 200)}`);
    return { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) };
}

const inside = (inner: Box, outer: Box) => inner.x0 >= outer.x0 && inner.x1 <= outer.x1 && inner.y0 >= outer.y0 && inner.y1 <= outer.y1;
const centre = (b: Box) => ({ x: (b.x0 + b.x1) / 2, y: (b.y0 + b.y1) / 2 });

interface Parsed {
    nodes: Map<string, { box: Box; texts: string[] }>;
    edges: [string, string][];
    /** By the cluster's title (`cluster_app-redis_dual`). */
    clusters: Map<string, { box: Box; texts: string[] }>;
}

function parseSvg(svg: string): Parsed {
    const texts = (body: string) => [...body.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => decode(t[1]));
    const nodes = new Map<string, { box: Box; texts: string[] }>();
    for (const m of svg.matchAll(/<g id="([^"]*)" class="node">\s*<title>([^<]*)<\/title>([\s\S]*?)<\/g>/g)) {
        const id = decode(m[1]);
        assert.equal(decode(m[2]), id, "a node's id attribute is its DOT name");
        assert.ok(!nodes.has(id), `node ${id} drawn twice`);
        nodes.set(id, { box: bounds(m[3]), texts: texts(m[3]) });
    }
    const edges = [...svg.matchAll(/<g id="[^"]*" class="edge">\s*<title>([^<]*)<\/title>/g)].map((m) => {
        const [from, to, ...rest] = decode(m[1]).split("->");
        assert.equal(rest.length, 0, `edge title ${m[1]}`);
        return [from, to] as [string, string];
    });
    const clusters = new Map<string, { box: Box; texts: string[] }>();
    for (const m of svg.matchAll(/<g id="[^"]*" class="cluster">\s*<title>([^<]*)<\/title>([\s\S]*?)<\/g>/g)) {
        clusters.set(decode(m[1]), { box: bounds(m[2]), texts: texts(m[2]) });
    }
    return { nodes, edges, clusters };
}

const planIds = (s: RunSecret) => rotationPlan({ mode: s.mode, consumers: s.consumers.map((name) => ({ name })) }).map((st) => `${s.name}/${st.id}`);
const planEdges = (s: RunSecret) =>
    rotationPlan({ mode: s.mode, consumers: s.consumers.map((name) => ({ name })) }).flatMap((st) =>
        st.dependsOn.map((d) => `${s.name}/${d}->${s.name}/${st.id}`),
    );
const edgeKeys = (p: Parsed) => p.edges.map(([a, b]) => `${a}->${b}`);

/** Whether `to` can be reached from a node without dependencies without passing `avoid`. */
function reachableAvoiding(p: Parsed, to: string, avoid: string): boolean {
    const targets = new Set(p.edges.map(([, b]) => b));
    const queue = [...p.nodes.keys()].filter((n) => !targets.has(n));
    const seen = new Set(queue);
    while (queue.length) {
        const n = queue.shift()!;
        if (n === to) return true;
        for (const [a, b] of p.edges) if (a === n && b !== avoid && !seen.has(b)) seen.add(b), queue.push(b);
    }
    return false;
}

test("the SVG draws exactly the plan: one node per step, the plan's edges, nothing else", async () => {
    const p = parseSvg(await renderPlanSvg([REDIS, PG]));
    assert.deepEqual([...p.nodes.keys()].sort(), [...planIds(REDIS), ...planIds(PG)].sort());
    assert.deepEqual(edgeKeys(p).sort(), [...planEdges(REDIS), ...planEdges(PG)].sort());
});

test("every rollout feeds the gate, and the revocation is reached only through the gate", async () => {
    const p = parseSvg(await renderPlanSvg([REDIS, PG]));
    const keys = new Set(edgeKeys(p));
    for (const c of REDIS.consumers) {
        assert.ok(keys.has(`app-redis/rollout/${c}->app-redis/gate`), `${c} -> gate`);
        assert.ok(!keys.has(`app-redis/rollout/${c}->app-redis/revoke`), `no ${c} -> revoke`);
    }
    assert.deepEqual(
        p.edges.filter(([, b]) => b === "app-redis/revoke").map(([a]) => a),
        ["app-redis/gate"],
    );
    assert.equal(reachableAvoiding(p, "app-redis/revoke", "app-redis/gate"), false);
    assert.equal(reachableAvoiding(p, "app-redis/revoke", "app-redis/stage"), true, "the reachability check itself works");
    // A rollback revokes nothing: its rollouts lead to the audit.
    assert.ok(![...p.nodes.keys()].some((n) => n.startsWith("app-pg/") && /revoke|gate/.test(n)));
    for (const c of PG.consumers) assert.ok(keys.has(`app-pg/rollout/${c}->app-pg/audit`));
});

test("the dual-active cluster encloses the grant, every rollout and the gate, and not the revocation", async () => {
    const p = parseSvg(await renderPlanSvg([REDIS, PG]));
    const dual = p.clusters.get("cluster_app-redis_dual");
    assert.ok(dual, `clusters: ${[...p.clusters.keys()].join(", ")}`);
    assert.ok(
        dual.texts.some((t) => t.startsWith("dual-active")),
        `label: ${dual.texts}`,
    );
    const enclosed = ["grant", "gate", ...REDIS.consumers.map((c) => `rollout/${c}`)];
    for (const id of planIds(REDIS)) {
        const node = p.nodes.get(id)!;
        const step = id.slice("app-redis/".length);
        if (enclosed.includes(step)) assert.ok(inside(node.box, dual.box), `${id} inside the dual-active cluster`);
        else {
            const c = centre(node.box);
            assert.ok(c.x < dual.box.x0 || c.x > dual.box.x1 || c.y < dual.box.y0 || c.y > dual.box.y1, `${id} outside the dual-active cluster`);
        }
    }
    // The rollback has none: nothing in it closes a window.
    assert.equal(p.clusters.has("cluster_app-pg_dual"), false);
    assert.deepEqual([...p.clusters.keys()].sort(), ["cluster_app-pg", "cluster_app-redis", "cluster_app-redis_dual"]);
    // And every step sits in its secret's cluster, titled with the generations.
    for (const s of [REDIS, PG]) {
        const box = p.clusters.get(`cluster_${s.name}`)!;
        for (const id of planIds(s)) assert.ok(inside(p.nodes.get(id)!.box, box.box), `${id} inside cluster_${s.name}`);
    }
    assert.ok(p.clusters.get("cluster_app-redis")!.texts.includes("app-redis g5 -> g6"));
    assert.ok(p.clusters.get("cluster_app-pg")!.texts.includes("app-pg: roll back g2"));
});

test("one row per consumer, top-down in the config's order, each naming the rollout's four parts", async () => {
    for (const s of [REDIS, PG]) {
        const p = parseSvg(await renderPlanSvg([s]));
        const rows = s.consumers.map((c) => p.nodes.get(`${s.name}/rollout/${c}`)!);
        rows.forEach((r, i) => {
            assert.deepEqual(r.texts, [s.consumers[i], "deploy", "reload", "health", "log check"]);
            assert.ok(Math.abs(centre(r.box).x - centre(rows[0].box).x) < 1, "one column");
            if (i) assert.ok(r.box.y0 >= rows[i - 1].box.y1, `${s.consumers[i]} below ${s.consumers[i - 1]}`);
        });
    }
});

test("`after` adds an edge from the other secret's audit to every step without dependencies", async () => {
    const cache = secret("app-cache", "rotate", ["w-1"], ["app-redis", "not-in-this-run"]);
    const p = parseSvg(await renderPlanSvg([REDIS, cache]));
    const crossing = p.edges.filter(([a, b]) => a.split("/")[0] !== b.split("/")[0]);
    assert.deepEqual(
        crossing.map(([a, b]) => `${a}->${b}`).sort(),
        ["app-redis/audit->app-cache/preflight"],
        "the pre-flight, the only step without dependencies",
    );
    assert.deepEqual([...p.nodes.keys()].sort(), [...planIds(REDIS), ...planIds(cache)].sort(), "no node for a secret outside the run");
    const steps = planSteps([REDIS, cache]);
    assert.deepEqual(steps.find((s) => s.id === "app-cache/preflight")?.dependsOn, ["app-redis/audit"]);
    assert.deepEqual(steps.find((s) => s.id === "app-cache/previous")?.dependsOn, ["app-cache/preflight"]);
    assert.deepEqual(steps.find((s) => s.id === "app-cache/stage")?.dependsOn, ["app-cache/secret", "app-cache/previous"]);
    assert.deepEqual(JSON.parse(JSON.stringify(steps)), steps, "JSON-able");
    assert.equal(steps.find((s) => s.id === "app-cache/rollout/w-1")?.consumer, "w-1");
});

test("the DOT renders without a Graphviz warning and the same every time", async () => {
    const dot = planDot([REDIS, PG, secret("app-cache", "rotate", ["w-1"], ["app-pg"])]);
    const viz = await instance();
    const result = viz.render(dot, { format: "svg", engine: "dot" });
    assert.equal(result.status, "success");
    assert.deepEqual(result.errors, []);
    assert.equal(await renderPlanSvg([REDIS, PG]), await renderPlanSvg([REDIS, PG]));
});

test("50 consumers: 50 rollout rows, 50 edges into the gate, in a few seconds", async () => {
    const fleet = secret("app-redis", "rotate", names("web", 50));
    const start = performance.now();
    const svg = await renderPlanSvg([fleet]);
    const ms = performance.now() - start;
    const p = parseSvg(svg);
    assert.equal([...p.nodes.keys()].filter((n) => n.startsWith("app-redis/rollout/")).length, 50);
    assert.equal(p.edges.filter(([a, b]) => a.startsWith("app-redis/rollout/") && b === "app-redis/gate").length, 50);
    assert.deepEqual(edgeKeys(p).sort(), planEdges(fleet).sort());
    const dual = p.clusters.get("cluster_app-redis_dual")!;
    for (const c of fleet.consumers) assert.ok(inside(p.nodes.get(`app-redis/rollout/${c}`)!.box, dual.box), c);
    console.log(`50 consumers: SVG ${Buffer.byteLength(svg)} bytes, rendered in ${ms.toFixed(0)} ms`);
    assert.ok(ms < 5000, `rendering took ${ms} ms`);
});

/** The table's body rows as [phase, steps, waits for, dual-active], continuation lines folded in. */
function tableRows(text: string): string[][] {
    const rows: string[][] = [];
    for (const line of text.split("\n")) {
        const cells = line
            .split("│")
            .slice(1, -1)
            .map((c) => c.trim());
        if (cells.length !== 4 || cells[0] === "phase") continue;
        if (cells[0]) rows.push(cells);
        else cells.forEach((c, i) => c && (rows[rows.length - 1][i] += ` ${c}`));
    }
    return rows;
}

test("the table lists every phase in order, marks the dual-active rows and fits 80 columns", () => {
    const text = planTable([REDIS, PG], { color: false });
    assert.doesNotMatch(text, /\x1b\[/, "no colour codes");
    for (const line of text.split("\n")) assert.ok(line.length <= 80, `too wide: ${line}`);
    assert.match(text, /app-redis g5 -> g6/);
    assert.match(text, /app-pg: roll back g2/);
    const rows = tableRows(text);
    const phases = (s: RunSecret) => [...new Set(rotationPlan({ mode: s.mode, consumers: s.consumers.map((name) => ({ name })) }).map((st) => st.phase))];
    assert.deepEqual(
        rows.map((r) => r[0]),
        [...phases(REDIS), ...phases(PG)],
    );
    const redis = rows.slice(0, phases(REDIS).length);
    assert.deepEqual(
        redis.filter((r) => r[3] === "yes").map((r) => r[0]),
        ["grant", "rollout", "gate"],
    );
    assert.ok(
        rows.slice(redis.length).every((r) => r[3] === ""),
        "a rollback has no dual-active rows",
    );
    assert.equal(redis.find((r) => r[0] === "rollout")![1], "3 consumers: web-1, web-2, web-3");
    assert.equal(redis.find((r) => r[0] === "revoke")![2], "gate");
    assert.equal(redis.find((r) => r[0] === "stage")![2], "generate, read-previous");
});

test("the table abbreviates 50 consumers and names the secret a step waits for", () => {
    const text = planTable([secret("app-redis", "rotate", names("web", 50)), secret("app-pg", "rotate", ["api-1"], ["app-redis"])], { color: false });
    const rows = tableRows(text);
    assert.equal(
        rows.find((r) => r[0] === "rollout")![1],
        "web-1 ... web-50 (50), by 13 resources of up to 4 consumers each",
        "50 consumers roll out in batches",
    );
    assert.doesNotMatch(text, /web-2\b/);
    assert.deepEqual(
        rows.filter((r) => r[2].includes("app-redis audit")).map((r) => r[0]),
        ["preflight"],
    );
});

test("the table gives the waves' sizes on this fleet, and the configured entries when they differ", () => {
    const rollout = (consumers: number, waves: RunSecret["waves"]) =>
        tableRows(planTable([{ ...secret("app-redis", "rotate", names("web", consumers)), waves }], { color: false })).find((r) => r[0] === "rollout")![1];
    assert.equal(rollout(9, [1, "30%", "100%"]), "web-1 ... web-9 (9) in 3 waves of 1, 2, 6 consumers (configured 1, 30%, 100%), each after the one before");
    assert.equal(
        rollout(6, [1, 2, "100%"]),
        "6 consumers: web-1, web-2, web-3, web-4, web-5, web-6 in 3 waves of 1, 2, 3 consumers (configured 1, 2, 100%), each after the one before",
    );
    assert.equal(
        rollout(5, [1, 2]),
        "5 consumers: web-1, web-2, web-3, web-4, web-5 in 3 waves of 1, 2, 2 consumers (configured 1, 2), each after the one before",
        "the last entry repeats",
    );
    assert.equal(
        rollout(3, [1, 2]),
        "3 consumers: web-1, web-2, web-3 in 2 waves of 1, 2 consumers, each after the one before",
        "nothing to add when the entries are the sizes",
    );
    assert.equal(rollout(3, ["100%"]), "3 consumers: web-1, web-2, web-3", "one wave: no mention");
});
