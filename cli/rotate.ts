/**
 * The operator's console: `bin/rotate <command> --stack <env> [options]`.
 * A stack is an environment; it holds many secrets (rotation:secrets), each
 * rotated on its own. `bin/rotate --help` and `bin/rotate <command> --help`
 * list the commands, options and exit codes.
 *
 * It runs the stack through the Pulumi Automation API (cli/stack.ts) and adds
 * the runbook's guard rails, a picture of the plan, live progress and a
 * report of every run. `bin/pulumi preview` and `bin/pulumi up` stay what
 * they are; this adds to them.
 *
 * Commander parses the arguments: it gives each command its own --help and
 * refuses unknown options, which the hand-rolled parser before it did not.
 */
import { Command, CommanderError, Option } from "commander";
import { ConfigError, RotationRefusedError } from "../lib/errors";
import { REASONS } from "../lib/configSchema";
import { approve } from "./approve";
import { resume, rollback, start } from "./change";
import { check } from "./check";
import { preflight } from "./preflight";
import { checkStackName } from "./common";
import { STEPS, confirm } from "./confirm";
import { auditVerify, due, plan, preview, status } from "./inspect";
import { EXIT, EXIT_CODES_HELP } from "./run";
import { LockedError, UsageError } from "./stack";
import { unlock } from "./unlock";
import { RUN_DUE_EXIT_HELP, runDue } from "./runDue";
import { mark, traceCpu } from "./trace";

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** What holds however the stack is run, and what only this console adds (docs/operating.md: "What the program enforces"). */
const ENFORCED_HELP = `The program itself (so a plain \`bin/pulumi up\` too) refuses a new generation whose ceremony has no
verified approval or whose window is closed without leave (rotation:secrets.<s>.outsideWindow), runs
each rotation's pre-flight before anything changes, and writes who ran each step in the audit log.
This console adds: bumping the generation for you, the ceremony's request and approval, naming the
next window opening, automatic rollback (rollout.onFailure), live progress, the report, and
putting the stack file back when nothing ran.`;

/** The program: one subcommand per runbook action, each with its own --help. */
function program(run: (p: Promise<number>) => void): Command {
    const cli = new Command("bin/rotate")
        .description(
            "Rotates the secrets of a stack (an environment) with zero downtime: dual-active, every consumer verified before the old secret is revoked.",
        )
        .addHelpText(
            "after",
            `\nWithout --yes, start, resume and rollback change nothing: they say what they would do.\n\n${ENFORCED_HELP}\n\n${EXIT_CODES_HELP}`,
        )
        .showHelpAfterError("(bin/rotate <command> --help for its options)")
        .exitOverride();
    const stackOption = () => new Option("-s, --stack <name>", "the stack (environment), e.g. dev").env("PULUMI_STACK").makeOptionMandatory();
    const json = () => new Option("--json", "print one JSON document on stdout (progress goes to stderr)");
    const mutating = (c: Command) =>
        c
            .addOption(stackOption())
            .option("-y, --yes", "really do it (without: say what would happen, change nothing)")
            .addOption(json())
            .option("--plain", "progress as timestamped lines, also on a terminal")
            .option("--engine-output", "show Pulumi's own output instead of the console's progress")
            .addHelpText("after", `\n${EXIT_CODES_HELP}`);

    cli.command("status")
        .description("every secret: generation, mode, committed, last completed, next due, last outcome")
        .addOption(stackOption())
        .option("--secret <name>", "only this secret (repeatable)", collect)
        .addOption(json())
        .action((o) => run(status(o)));
    cli.command("plan")
        .description("the plan `start` would run, as a table and an SVG picture (changes nothing)")
        .addOption(stackOption())
        .option("--secret <name>", "only this secret (repeatable)", collect)
        .option("--out <file.svg>", "where to write the picture (default .state/plans/<stack>-plan.svg)")
        .addOption(json())
        .action((o) => run(plan(o)));
    cli.command("check")
        .description(
            "which generation each consumer holds (current, previous, unknown, missing, unreachable; write-only for a CI secret store, which cannot give a secret back), proven by an HMAC under a fresh nonce; and whether the source still accepts the previous secret. Exit 0 all current, 1 drift",
        )
        .addOption(stackOption())
        .option("--secret <name>", "only this secret (repeatable)", collect)
        .addOption(json())
        .action((o) => run(check(o)));
    cli.command("preflight")
        .description(
            "the checks of every rotation's first step, on their own: every consumer's host, config file and key, reload program and free space; the source's admin credential; the store. Nothing changes. Exit 0 all clear, 1 problems",
        )
        .addOption(stackOption())
        .option("--secret <name>", "only this secret (repeatable)", collect)
        .addOption(json())
        .action((o) => run(preflight(o)));
    cli.command("preview")
        .description("the engine's own preview of the stack (pulumi preview --diff); changes nothing")
        .addOption(stackOption())
        .action((o) => run(preview(o)));
    mutating(
        cli
            .command("start")
            .description("bump the named secrets' generations, then rotate them")
            .option("--secret <name>", "rotate this secret (repeatable)", collect)
            .option("--due", "every secret whose schedule says so (and say which)")
            .option("--all", "every secret of the stack")
            .option(
                "--outside-window <why>",
                "start even where a secret's rotation window is closed: why, recorded with who you are in every audit line of the generation",
            )
            .addOption(new Option("--reason <reason>", "why, for the audit log (default: scheduled)").choices(REASONS))
            .option("--note <text>", "a note for the audit log, e.g. the incident's ticket (one line)")
            .option("--request <id>", "the ceremony: run this request, approved by a second person (bin/rotate approve)")
            .option("--key <file>", "the ceremony: the SSH private key that signs a new request (default: $ROTATION_SIGNING_KEY, ~/.ssh/id_ed25519)"),
    ).action((o) => run(start(o)));
    cli.command("approve")
        .description("the ceremony: a second person approves a rotation request with their own SSH key (without --yes: show what it would run)")
        .addOption(stackOption())
        .requiredOption("--request <id>", "the request's id (or its .json file)")
        .option("--key <file>", "your SSH private key (default: $ROTATION_SIGNING_KEY, ~/.ssh/id_ed25519)")
        .option("-y, --yes", "really approve")
        .addOption(json())
        .addHelpText("after", `\n${EXIT_CODES_HELP}`)
        .action((o) => run(approve(o)));
    mutating(
        cli
            .command("resume")
            .description("run the stack again after a failure or a kill: unfinished rotations continue, steps that succeeded are not repeated")
            .option("--secret <name>", "the secret you mean to finish (the whole stack runs)")
            .option(
                "--redeploy <consumer>",
                "deploy the secret to this consumer again although its rollout succeeded (its config was reverted; the gate named it); repeatable, needs --secret",
                collect,
            ),
    ).action((o) => run(resume(o)));
    mutating(
        cli
            .command("confirm")
            .description(
                "a step only a person can do (a manual source's grant, revocation or withdrawal) was done: record who and when in the audit log, then resume",
            )
            .requiredOption("--secret <name>", "the secret whose step was done")
            .addOption(new Option("--step <step>", "which step (default: the one the secret waits for)").choices(STEPS))
            .option("--note <text>", "a note for the audit line, e.g. the vendor's ticket (one line)"),
    ).action((o) => run(confirm(o)));
    mutating(
        cli
            .command("rollback")
            .description("before revocation only: every consumer gets the old secret back, the new one is withdrawn")
            .option("--secret <name>", "the secret to roll back (required when the stack has several)"),
    ).action((o) => run(rollback(o)));
    cli.command("due")
        .description("exit 0 if a secret is due (names them), 1 if none")
        .addOption(stackOption())
        .option("--secret <name>", "only this secret (repeatable)", collect)
        .action((o) => run(due(o)));
    cli.command("run-due")
        .description(
            "the unattended run (systemd timer, cron, CI schedule): start --due in every stack of the project (or those named), each in its own process under its own lock; a stack that fails, is locked or awaits approval leaves the others to go on",
        )
        .option("--stacks <a,b>", "only these stacks (default: every stacks/Pulumi.<name>.yaml)")
        .option("--parallel <n>", "how many stacks at once (default 1: one after another)")
        .option("-y, --yes", "really do it (without: each stack says what is due, nothing changes)")
        .addOption(json())
        .addHelpText("after", `\n${RUN_DUE_EXIT_HELP}\n\n${EXIT_CODES_HELP}`)
        .action((o) => run(runDue(o)));
    cli.command("unlock")
        .description("remove the stale lock of a killed run (file and PostgreSQL backends); refuses while its process lives")
        .addOption(stackOption())
        .action((o) =>
            run(
                Promise.resolve().then(() => {
                    checkStackName(o);
                    return unlock(o.stack);
                }),
            ),
        );
    cli.command("audit")
        .description("the audit log")
        .command("verify")
        .description("check the audit log's hash chain")
        .option("-s, --stack <name>", "the stack whose audit log to check")
        .option("--log <path>", "an audit log file instead")
        .action((o) => run(o.log || o.stack ? auditVerify(o) : Promise.reject(new UsageError("audit verify: --stack <name> or --log <path>"))));
    return cli;
}

/** An error's exit code: what the operator asked is wrong (2), refused (3), locked (4), or anything else (1). */
function exitCodeOf(e: Error): number {
    if (e instanceof UsageError || e instanceof ConfigError) return EXIT.usage;
    if (e instanceof RotationRefusedError) return EXIT.refused;
    if (e instanceof LockedError) return EXIT.locked;
    return 1;
}

function main(): void {
    mark("start-up (tsx, modules)");
    process.on("exit", () => {
        mark("until the process exits");
        traceCpu();
    });
    let pending: Promise<number> | undefined;
    // The action's promise is kept here, not returned to commander: parse() is synchronous and would leave it unhandled.
    const cli = program((p) => {
        pending = p;
    });
    try {
        cli.parse(process.argv);
    } catch (e) {
        if (e instanceof CommanderError) {
            // Help and version end with 0; everything else commander refuses is a usage error.
            process.exitCode = e.code === "commander.helpDisplayed" || e.code === "commander.help" || e.code === "commander.version" ? 0 : EXIT.usage;
            return;
        }
        throw e;
    }
    if (!pending) {
        cli.outputHelp();
        process.exitCode = EXIT.usage;
        return;
    }
    pending.then(
        (code) => {
            mark("command");
            process.exitCode = code;
        },
        (e: Error) => {
            mark("command");
            console.error(`rotate: ${e.message}`);
            process.exitCode = exitCodeOf(e);
        },
    );
}

main();
