// Backend benchmark (issue 14): the same rotation (the lab's Redis password,
// 3 consumers, `bin/rotate start --yes`, wall time of the whole command) on
// the file:// backend and on the PostgreSQL DIY backend, alternating run by
// run so both see the same machine, then the medians side by side.
//   bin/bench --backends [--runs 3]
// Needs root and the lab (reset here). The PostgreSQL runs use a table of
// their own in the lab's state database, dropped at the end.
import { stateClient } from "../cli/backend";
import { committedGeneration, lab, labCtl, redisAuthOk, redisStack, storeValue, Workspace } from "../lab/driver";

const i = process.argv.indexOf("--runs");
const runs = i >= 0 ? Number(process.argv[i + 1]) : 3;
if (!Number.isInteger(runs) || runs < 1) {
    console.error("usage: bin/bench --backends [--runs N]");
    process.exit(2);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const committed = () => committedGeneration("app-redis");

async function main(): Promise<void> {
    labCtl("up", "--reset");
    const l = lab();
    const table = `bench_backends_${process.pid}`;
    const env = { PGPASSFILE: l.stateBackend.passfile };
    const sides = [
        { name: "file://", ws: new Workspace("bench-file", "bench"), seconds: [] as number[] },
        { name: "postgres://", ws: new Workspace("bench-pg", "bench", { backendUrl: `${l.stateBackend.url}&table=${table}`, env }), seconds: [] as number[] },
    ];
    for (let run = 1; run <= runs; run++) {
        for (const side of sides) {
            side.ws.setConfig(redisStack(committed()));
            const r = side.ws.rotate(["start", "--secret", "app-redis", "--yes", "--plain"]);
            if (r.code !== 0 || !redisAuthOk(storeValue("app-redis")))
                throw new Error(`${side.name} run ${run} failed (exit ${r.code}): ${r.stderr.slice(-500)}`);
            side.seconds.push(r.seconds);
            console.log(`bench: run ${run} ${side.name.padEnd(11)} ${r.seconds.toFixed(1)} s (generation ${committed()})`);
        }
    }
    process.env.PGPASSFILE = l.stateBackend.passfile;
    const c = stateClient(l.stateBackend.url);
    await c.connect();
    await c.query(`DROP TABLE IF EXISTS ${table}`);
    await c.end();
    console.log("\nbackend       runs  median   each (s)");
    for (const s of sides)
        console.log(
            `${s.name.padEnd(13)} ${String(runs).padStart(4)}  ${median(s.seconds).toFixed(1).padStart(5)} s  ${s.seconds.map((x) => x.toFixed(1)).join(", ")}`,
        );
    const [f, p] = sides.map((s) => median(s.seconds));
    console.log(`postgres/file: ${(p / f).toFixed(2)}`);
}

main().catch((e) => {
    console.error(`bench: ${(e as Error).message}`);
    process.exit(1);
});
