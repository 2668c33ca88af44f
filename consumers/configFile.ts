/**
 * The `config-file` consumer, the default kind: a service on a host of
 * rotation:hosts that reads the secret from a config file. The rollout backs
 * the file up to `.bak`, writes the new value atomically by its writer
 * (writers/), reloads the service and checks its health and log
 * (provider/rollout.ts); the drift question is an HMAC of the value the file
 * holds (lib/scripts/check.ts); the pre-flight checks the file, its
 * directory, the reload program and the free space (lib/scripts/preflight.ts).
 * An entry without `kind` is one of these.
 */
import { z } from "zod";
import { absPath, hostRef, httpUrl, shellCommand, wholeNumber } from "../lib/fields";
import { logCheckSchema } from "../lib/logCheck";
import { writeSchema as write } from "../writers";
import { consumerName as name, defineHostConsumer } from "./kind";

const health = z.union(
    [
        z.strictObject({ command: shellCommand }),
        z.strictObject({ url: httpUrl(), expectStatus: wholeNumber().min(100, "must be 100-599").max(599, "must be 100-599").default(200) }),
    ],
    { error: "must be either {command} (run on the host) or {url, expectStatus} (fetched from the operator's machine)" },
);

/** A consumer: its host by name (of rotation:hosts), plus what is specific to this secret there. */
export const configFileEntry = z.strictObject({
    name,
    /** Optional: an entry without a kind is a config-file consumer. */
    kind: z.literal("config-file").optional(),
    configPath: absPath,
    write,
    reload: shellCommand,
    health,
    retries: wholeNumber().min(0, "must be 0-30").max(30, "must be 0-30").default(5),
    retryDelaySeconds: z.number().min(0, "must be 0-60").max(60, "must be 0-60").default(2),
    timeoutSeconds: wholeNumber().min(1, "must be 1-300").max(300, "must be 1-300").default(15),
    /** Where its auth failures show: a log file `{path, pattern}` or a unit's journal `{unit, pattern and/or priority}` (lib/logCheck.ts). */
    logCheck: logCheckSchema.optional(),
    host: hostRef,
});

export const configFile = defineHostConsumer({
    kind: "config-file",
    reach: "ssh",
    schema: configFileEntry,
    rolloutParts: ["deploy", "reload", "health", "log check"],
    describe: (c) => `config file ${c.configPath} on ${c.host}`,
    hostRef: (c) => c.host,
});
