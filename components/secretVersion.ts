import * as pulumi from "@pulumi/pulumi";
import { generatedStep } from "../generators";
import { stdinFields } from "../lib/quote";
import { loginOf } from "../sources";
import { LOCAL, TOKEN, phaseStep, type Credential, type RotationContext } from "./context";
import { storeStep } from "./storeStep";

export interface SecretVersionArgs {
    /** Shared rotation context. */
    readonly context: RotationContext;
    /** "generate" makes the new generation; "stored" reads the current one from the store. */
    readonly origin: "generate" | "stored";
    /** What must complete first (the rotations of the secrets this one comes `after`). */
    readonly after?: pulumi.Resource[];
}

/**
 * One generation of the secret: the new one, generated, or the one in use
 * (the previous generation), read from the credential store. For ssh-key
 * secrets it also derives the public key that the source is granted.
 */
export class SecretVersion extends pulumi.ComponentResource implements Credential {
    readonly generation: number;
    readonly value: pulumi.Output<string>;
    readonly grantMaterial: pulumi.Output<string>;
    readonly user?: string;

    constructor(name: string, args: SecretVersionArgs, opts?: pulumi.ComponentResourceOptions) {
        super(`${TOKEN}:SecretVersion`, name, {}, opts);
        const { config } = args.context;
        const { secret, source } = config;
        this.generation = args.origin === "generate" ? config.generation : config.generation - 1;
        this.user = loginOf(source, this.generation);

        let value: pulumi.Output<string>;
        if (args.origin === "stored") {
            // Read once per generation and kept (secret) in the state: a resume after
            // promotion still has the old secret, though the store's `current` is the new one.
            const read = phaseStep(
                args.context,
                `${name}-read`,
                {
                    title: `${secret.name}: read the current secret (g${this.generation}) from the store`,
                    ...storeStep(args.context, "read"),
                    captureStdout: true,
                },
                { parent: this, dependsOn: args.after },
            );
            value = nonEmpty(read.stdout, `${secret.name}: the store's current secret is empty`);
        } else {
            // The generator's step (generators/<kind>.ts); its stdout is the new secret.
            const { args: step, nothing } = generatedStep(secret.generator, secret, config.generation);
            const gen = phaseStep(args.context, name, step, { parent: this, dependsOn: args.after });
            value = nonEmpty(gen.stdout, nothing);
        }
        this.value = pulumi.secret(value);

        if (secret.type === "ssh-key") {
            const pub = phaseStep(
                args.context,
                `${name}-public-key`,
                {
                    title: `${secret.name}: derive the public key of g${this.generation}`,
                    target: LOCAL,
                    script: `set -euo pipefail\numask 077\nd=$(mktemp -d); trap 'rm -rf -- "$d"' EXIT\nIFS= read -r -d '' K || true\nprintf '%s\\n' "$K" > "$d/key"\nssh-keygen -y -f "$d/key" | awk '{print $1" "$2}'\n`,
                    stdin: this.value.apply((v) => stdinFields(v)),
                    captureStdout: true,
                },
                { parent: this },
            );
            this.grantMaterial = pulumi.secret(nonEmpty(pub.stdout, `${secret.name}: no public key derived`).apply((s) => s.trim()));
        } else {
            this.grantMaterial = this.value;
        }
        this.registerOutputs({ generation: this.generation });
    }
}

function nonEmpty(o: pulumi.Output<string | undefined>, message: string): pulumi.Output<string> {
    return o.apply((v) => {
        // During preview the step has not run: its stdout is unknown, not empty.
        if (v === undefined && pulumi.runtime.isDryRun()) return "";
        if (!v) throw new Error(message);
        return v;
    });
}
