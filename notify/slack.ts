/**
 * A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat):
 * POST {"text": ...} to the hook's URL, which is itself the credential, so
 * it comes from a 0600 file or the environment. The text leads with the
 * severity and the summary, then the details as a list.
 */
import { z } from "zod";
import { localPath } from "../lib/fields";
import { EVENTS, type NotifyEvent } from "./event";
import { checkUrl, defineSink, envName, readCredential } from "./kind";

const MARK = { info: ":white_check_mark:", warning: ":warning:", error: ":rotating_light:", critical: ":fire:" } as const;

/** Slack's mrkdwn needs &, < and > escaped; nothing else of ours is special. */
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The message's text: the summary, then what the event names. */
export function slackText(e: NotifyEvent): string {
    const lines = [`${e.event === "completed" ? MARK.info : MARK[e.severity]} *${esc(e.summary)}*`];
    const field = (k: string, v: unknown) => v !== undefined && lines.push(`• ${k}: ${esc(String(v))}`);
    field("consumer", e.consumer);
    field("error", e.error);
    field("request", e.request ? `${e.request.id} (expires ${e.request.expiresAt})` : undefined);
    for (const n of e.next ?? []) lines.push(`• next: \`${esc(n)}\``);
    lines.push(`_${e.event} · ${e.time} · ${esc(e.source)}_`);
    return lines.join("\n");
}

export const slackSink = defineSink({
    kind: "slack",
    schema: z.strictObject({
        kind: z.literal("slack"),
        /** The incoming webhook's URL (it holds the hook's token): a file only its owner can read, or a variable. */
        urlFile: localPath.optional(),
        urlEnv: envName.optional(),
    }),
    defaultEvents: EVENTS,
    credentials(sink, baseDir, at, env) {
        const url = checkUrl(readCredential(sink, "url", baseDir, at, env), at);
        return url.problem ? { problems: [url.problem] } : { problems: [], credentials: { url: url.value! } };
    },
    requests(_sink, credentials, event) {
        return [
            { action: event.event, url: credentials.url, headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: slackText(event) }) },
        ];
    },
});
