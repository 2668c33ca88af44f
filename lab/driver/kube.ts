// The lab's Kubernetes API server (lab/lib/kube.sh) as the tests reach it
// from outside the product: the lab admin's requests, the store settings of
// its Secret, and a write from outside (someone else's hand on the Secret).
import * as fs from "node:fs";
import * as https from "node:https";
import { lab } from "./lab";

/** A request as the lab's admin (static token, group system:masters); the body as JSON, or as `contentType`. */
export function kubeAdmin(method: string, apiPath: string, body?: unknown, contentType = "application/json"): Promise<{ status: number; body: any }> {
    const k = lab().kubernetes;
    const token = fs.readFileSync(k.adminTokenFile, "utf8").trim();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
        const req = https.request(
            new URL(apiPath, k.server),
            {
                method,
                ca: fs.readFileSync(k.caFile),
                timeout: 10_000,
                headers: { Authorization: `Bearer ${token}`, Accept: "application/json", ...(payload ? { "Content-Type": contentType } : {}) },
            },
            (res) => {
                const chunks: Buffer[] = [];
                res.on("data", (c: Buffer) => chunks.push(c));
                res.on("end", () => {
                    const text = Buffer.concat(chunks).toString("utf8");
                    resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
                });
            },
        );
        req.on("error", reject);
        if (payload) req.write(payload);
        req.end();
    });
}

/** The path of the lab's Secret (the Redis password's). */
export const kubeSecretPath = () => {
    const k = lab().kubernetes;
    return `/api/v1/namespaces/${k.namespace}/secrets/${k.secrets.redis}`;
};

/** The lab's Secret as the API server holds it (data base64), read as the admin. */
export async function kubeSecret(): Promise<any> {
    const r = await kubeAdmin("GET", kubeSecretPath());
    if (r.status !== 200) throw new Error(`GET ${kubeSecretPath()}: HTTP ${r.status}`);
    return r.body;
}

/** A key of the lab's Secret, decoded (undefined when absent). */
export async function kubeSecretValue(key: string): Promise<string | undefined> {
    const v = (await kubeSecret()).data?.[key];
    return typeof v === "string" ? Buffer.from(v, "base64").toString("utf8") : undefined;
}

/** A `kubernetes-secret` store of the lab's Secret, as the rotation account (its token file) or another credential. */
export function kubeStore(auth?: object): Record<string, unknown> {
    const k = lab().kubernetes;
    return {
        kind: "kubernetes-secret",
        server: k.server,
        caFile: k.caFile,
        namespace: k.namespace,
        name: k.secrets.redis,
        auth: auth ?? { method: "token", tokenFile: k.rotationTokenFile },
    };
}
