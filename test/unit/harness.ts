// Pulumi mocks that record every registration with its dependencies (which
// plain mocks cannot see), for unit tests of the rotation model.
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import { setMockOptions } from "@pulumi/pulumi/runtime/settings";

// Internal to the SDK (not in its typings): resolves once every queued RPC has completed.
const { waitForRPCs } = require("@pulumi/pulumi/runtime/settings") as { waitForRPCs: () => Promise<void> };
import { parseEnvironment, secretRotation, type HostConsumerConfig, type RotationConfig } from "../../lib/config";
import { environmentOf } from "../../lab/driver";
import { STEP_TYPE } from "../../provider/types";
import { unpackStep } from "../../provider/wire";

export const STEP = STEP_TYPE;
export const RANDOM = "random:index/randomPassword:RandomPassword";

export interface Registered {
    type: string;
    name: string;
    urn: string;
    parent: string;
    inputs: Record<string, any>;
    /** The inputs as registered, lists of consumers packed. */
    wire: Record<string, any>;
    dependencies: string[];
}

/** The value the mocked generator returns for a generation; hostile on purpose. */
export const mockSecret = (generation: string | number) => `mock-S3cr3t-g${generation}-'"$(touch /tmp/pwned)\`;|&\\é`;
export const MOCK_PREVIOUS = "mock-previous-secret-Zq9";

export async function installRecordingMocks(preview = false): Promise<Registered[]> {
    const registered: Registered[] = [];
    const mocks: pulumi.runtime.Mocks = {
        newResource(args) {
            if (args.type === RANDOM) {
                return { id: `${args.name}-id`, state: { ...args.inputs, result: mockSecret(args.inputs.keepers.generation) } };
            }
            if (args.type === STEP && args.inputs.op === "random") {
                return { id: `${args.name}-id`, state: { ...args.inputs, stdout: mockSecret(args.inputs.triggers[0]) } };
            }
            if (args.type === STEP && args.inputs.captureStdout) {
                const stdout = args.name.endsWith("-previous-read") ? MOCK_PREVIOUS : `stdout-of-${args.name}`;
                return { id: `${args.name}-id`, state: { ...args.inputs, stdout } };
            }
            return { id: `${args.name}-id`, state: args.inputs };
        },
        call(args) {
            throw new Error(`unexpected call ${args.token}`);
        },
    };
    await pulumi.runtime.setMocks(mocks, "secret-rotation", "unit", preview);
    const monitor = new MockMonitor(mocks);
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: any) =>
        register(req, (err: any, resp: any) => {
            if (!err) {
                registered.push({
                    type: req.getType(),
                    name: req.getName(),
                    urn: resp.getUrn(),
                    parent: req.getParent(),
                    // A step's lists of consumers as the program built them (stored packed: provider/wire.ts).
                    inputs: unpackStep(pulumi.runtime.deserializeProperties(req.getObject())),
                    wire: pulumi.runtime.deserializeProperties(req.getObject()),
                    dependencies: req.getDependenciesList(),
                });
            }
            callback(err, resp);
        });
    setMockOptions(monitor, "secret-rotation", "unit", preview);
    return registered;
}

/** Waits until every registration of the program so far has reached the mock monitor. */
export async function settle(): Promise<void> {
    await waitForRPCs();
}

export function promiseOf<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => o.apply((v) => resolve(v)));
}

export const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBTnV7iV7gjzWNAQR6SvKi5+IdtAUfFuQEIJqYQLNF6f";

/** A complete, valid config (as stack YAML would hold it) for a given source and consumer count. */
export function rawConfig(overrides: Record<string, unknown> = {}, consumers = 3): Record<string, unknown> {
    return {
        generation: 2,
        secret: { name: "app-redis", type: "password", generator: { kind: "random", length: 32 }, reason: "scheduled", operator: "alice" },
        store: { kind: "file", dir: "/var/lib/rotation/store" },
        source: { kind: "redis-acl", host: "127.0.1.30", port: 6379, user: "app", adminUser: "admin", adminPasswordFile: "/etc/rotation/redis-admin.pass" },
        consumers: Array.from({ length: consumers }, (_, i) => ({
            name: `web-${i + 1}`,
            host: `127.0.1.${11 + i}`,
            user: "root",
            hostKey: HOST_KEY,
            privateKeyFile: "/root/.ssh/id_ed25519",
            configPath: "/etc/rotation-app/redis.yaml",
            write: { format: "yaml-key", key: "redis.password" },
            reload: 'kill -HUP "$(cat /run/app.pid)"',
            health: { url: `http://127.0.1.${11 + i}:8081/healthz` },
            logCheck: { path: "/var/log/app.log", pattern: "AUTH_FAILED" },
        })),
        ...overrides,
    };
}

/** The stack config (rotation:hosts, rotation:secrets) holding one secret described in the flat form. */
export function rawEnvironment(overrides: Record<string, unknown> = {}, consumers = 3): Record<string, unknown> {
    return environmentOf(rawConfig(overrides, consumers));
}

/** A rotation whose consumers are all config files on hosts (what rawConfig makes). */
export type HostRotation = Omit<RotationConfig, "consumers"> & { consumers: HostConsumerConfig[] };

/** One secret's validated rotation config, as the components get it. */
export function config(overrides: Record<string, unknown> = {}, consumers = 3): HostRotation {
    const flat = rawConfig(overrides, consumers);
    return secretRotation(parseEnvironment("unit", environmentOf(flat)), (flat.secret as { name: string }).name) as HostRotation;
}
