import * as pulumi from "@pulumi/pulumi";
import { isJournal, type LogCheck } from "../lib/logCheck";
import { stdinFields } from "../lib/quote";
import { loginOf } from "../sources";
import { consumerLabel } from "./consumerRollout";
import { SinglePhase, consumerHosts, phaseStep, type Credential, type RotationContext } from "./context";
import { storeStep } from "./storeStep";
import { isHostConsumer } from "../consumers";

export interface RotationGateArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** The last step of every consumer's rollout. */
    readonly rollouts: pulumi.Resource[];
    /** The new credential, which every consumer must hold before the gate opens. */
    readonly credential: Credential;
    /** The credential it replaces (a consumer still on it is named as such). */
    readonly previous: Credential;
}

/**
 * The point of no return: it runs only after every consumer was deployed,
 * reloaded and found healthy. First it asks every consumer (not only those
 * this run deployed to) which secret its config holds, by an HMAC under a
 * fresh nonce (provider/drift.ts): one reverted behind the rotation's back,
 * or unreachable, keeps the gate shut and is named. It notes each consumer
 * log's size (a unit journal's cursor), from which the verification counts auth failures after the
 * revocation (provider/authFailures.ts). Then it records in the
 * store (a file store's marker, a Vault secret's metadata) that revocation
 * of the previous secret starts, after which rollback is refused.
 */
/** What the gate notes of a consumer's log: its path (a size is noted) or its unit and priority (a cursor is). */
const logAnchorOf = (c: LogCheck | undefined) =>
    !c ? {} : isJournal(c) ? { logJournal: { unit: c.unit, ...(c.priority ? { priority: c.priority } : {}) } } : { logPath: c.path };

export class RotationGate extends SinglePhase {
    constructor(name: string, args: RotationGateArgs, opts?: pulumi.ComponentResourceOptions) {
        super("RotationGate", name, opts, (parent) => {
            const ctx = args.context;
            const { config } = ctx;
            const { hosts, hostOf } = consumerHosts(ctx);
            const apis = config.consumers.flatMap((c) => (isHostConsumer(c) ? [] : [c]));
            const [current, previous] = [loginOf(config.source, args.credential.generation), loginOf(config.source, args.previous.generation)];
            return phaseStep(
                ctx,
                name,
                {
                    title: `${config.secret.name}: gate, all ${config.consumers.length} consumers verified on g${config.generation}`,
                    ...storeStep(ctx, "commit"),
                    hosts,
                    drift: config.consumers.filter(isHostConsumer).map((c) => ({
                        host: hostOf(c),
                        consumer: c.name,
                        label: consumerLabel(ctx, c),
                        configPath: c.configPath,
                        write: c.write,
                        timeoutSeconds: c.timeoutSeconds,
                        ...logAnchorOf(c.logCheck),
                    })),
                    ...(current !== undefined && previous !== undefined ? { users: { current, previous } } : {}),
                    // Consumers behind an API answer for themselves; a write-only one passes on its rollout's confirmation.
                    ...(apis.length ? { apiDrift: apis.map((c) => ({ consumer: c.name, label: consumerLabel(ctx, c), api: c })) } : {}),
                    stdin: pulumi.all([args.credential.value, args.previous.value]).apply(([n, o]) => stdinFields(n, o)),
                    phase: "rolled-out",
                },
                { parent, dependsOn: args.rollouts },
            );
        });
    }
}
