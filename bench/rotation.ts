// Benchmark: K consecutive Redis rotations across the lab's three consumers
// through the real engine. Prints the wall time of each `pulumi up`, the
// dual-active window (grant done → revocation started, from event timestamps)
// and min/median/max. Needs the lab: bash lab/up.sh. Usage: bin/bench [K]
import { hosts, labCtl, redisStack } from "../test/e2e/lab";
import { stepTimeline, Workspace, type EngineEvent } from "../test/e2e/workspace";

const rounds = Number(process.argv[2] ?? "3");

function timestampOf(events: EngineEvent[], seq: number | undefined): number {
    const e = events.find((x) => x.sequence === seq) as { timestamp?: number } | undefined;
    return e?.timestamp ?? NaN;
}

const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return `min ${s[0].toFixed(1)}s  median ${s[Math.floor(s.length / 2)].toFixed(1)}s  max ${s[s.length - 1].toFixed(1)}s`;
};

async function main() {
    labCtl("up", "--reset");
    const ws = new Workspace("bench");
    ws.setConfig(redisStack(0));
    const walls: number[] = [];
    const windows: number[] = [];
    for (let g = 1; g <= rounds; g++) {
        ws.patchConfig({ generation: g });
        const r = await ws.pulumi(["up", "--yes", "--skip-preview"]);
        if (r.code !== 0) throw new Error(`rotation g${g} failed:\n${r.stdout.slice(-2000)}`);
        const grant = stepTimeline(r.events, `app-redis-grant-g${g}`);
        const revoke = stepTimeline(r.events, "app-redis-revoke");
        const window = timestampOf(r.events, revoke.start) - timestampOf(r.events, grant.end);
        walls.push(r.seconds);
        windows.push(window);
        console.log(`rotation g${g}: ${r.seconds.toFixed(1)}s wall (pulumi up), dual-active window ${window.toFixed(1)}s, ${hosts().length} consumers`);
    }
    console.log(`wall over ${rounds} rotations: ${stats(walls)}`);
    console.log(`dual-active window: ${stats(windows)}`);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
