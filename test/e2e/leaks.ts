// The leak scan: every secret value a scenario handled must be absent from
// everything the engine and the tool printed or wrote.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { secretsSeen } from "./checks";
import * as path from "node:path";
import { captured, hosts, lab, ROOT, type Workspace } from "../../lab/driver";

/** Every lab host's journal, every field of every entry (messages, command lines), as journalctl exports it. */
function journals(): { label: string; text: string }[] {
    return hosts().map((h) => {
        const r = spawnSync("journalctl", ["--directory", h.journalDir, "-o", "export", "-q", "--no-pager"], { encoding: "utf8", maxBuffer: 256 << 20 });
        assert.equal(r.status, 0, `journalctl --directory ${h.journalDir}: ${r.stderr}`);
        assert.match(r.stdout, /^_SYSTEMD_UNIT=/m, `${h.name}'s journal holds its units' entries`);
        return { label: `${h.name}'s journal (${h.journalDir})`, text: r.stdout };
    });
}

/** The secret itself, and for multi-line secrets (SSH keys) each substantial line. */
function needles(secret: string): string[] {
    const lines = secret
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l.length >= 20 && !l.startsWith("-----"));
    return [secret, ...lines];
}

/** What the lab's notification receiver recorded (nothing before a lab has one). */
function receiverDeliveries(): string {
    const file = lab().notifyrx?.deliveries as string | undefined;
    return file && fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
}

/** `extra`: what else the scenario's servers wrote (a CI server's database, logs and work dir). */
export function scanForLeaks(ws: Workspace, extra: { label: string; text: string }[] = []): void {
    assert.ok(secretsSeen.size >= 2, "the scan knows the secrets it looks for");
    const outputs = spawnSync(path.join(ROOT, ".tools/bin/pulumi"), ["stack", "output", "--json", "--show-secrets", "--stack", ws.stack], {
        cwd: ws.dir,
        env: ws.env,
        encoding: "utf8",
    });
    assert.equal(outputs.status, 0, outputs.stderr);
    assert.ok(outputs.stdout.includes("generation"), "stack outputs were read");
    const haystacks: { label: string; text: string }[] = [
        ...captured,
        ...extra,
        { label: `${ws.name} state backend files`, text: ws.stateText() },
        { label: `${ws.name} audit log`, text: fs.existsSync(ws.auditLog) ? fs.readFileSync(ws.auditLog, "utf8") : "" },
        { label: `${ws.name} stack outputs (--show-secrets)`, text: outputs.stdout },
        // Every notification the lab's receiver got (rotation:notify): webhook, Slack and PagerDuty payloads.
        { label: "the notification receiver's deliveries", text: receiverDeliveries() },
        ...journals(),
        // bin/rotate's run reports, plan pictures, ceremony requests and approvals.
        ...["reports", "plans", "ceremony"].flatMap((d) => {
            const dir = path.join(ws.stateDir, d);
            return fs.existsSync(dir)
                ? fs.readdirSync(dir).map((f) => ({ label: `${ws.name} ${d}/${f}`, text: fs.readFileSync(path.join(dir, f), "utf8") }))
                : [];
        }),
    ];
    assert.ok(
        captured.some((c) => c.label.endsWith(" ps") && c.text.length > 0),
        "ps snapshots were taken during rollouts",
    );
    for (const secret of secretsSeen) {
        for (const needle of needles(secret)) {
            for (const h of haystacks) {
                assert.ok(!h.text.includes(needle), `a secret value appears in ${h.label}`);
            }
        }
    }
}
