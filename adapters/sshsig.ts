/**
 * SSH signatures (OpenSSH's `ssh-keygen -Y`), the ceremony's only crypto.
 * Nothing here parses keys or signatures itself: signing, finding who a
 * signature belongs to and verifying it are left to ssh-keygen, against the
 * team's allowed-signers file (the format of `ssh-keygen(1)` ALLOWED
 * SIGNERS), so an approval can be forged only by someone holding a listed
 * private key or able to edit that file.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** The signature namespace of this product: a signature made for anything else (git, files) never counts as an approval. */
export const NAMESPACE = "secret-rotation-ceremony@rotation";

export class SignatureError extends Error {}

function keygen(args: string[], input: Buffer | string): { code: number; stdout: string; stderr: string } {
    const r = spawnSync("ssh-keygen", args, { input, encoding: "utf8", timeout: 30_000 });
    if (r.error) throw new SignatureError(`ssh-keygen could not run: ${r.error.message}`);
    return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** The signing key: --key, else ROTATION_SIGNING_KEY, else ~/.ssh/id_ed25519. */
export function signingKey(given?: string): string {
    const key = given ?? process.env.ROTATION_SIGNING_KEY ?? path.join(os.homedir(), ".ssh", "id_ed25519");
    if (!fs.existsSync(key)) throw new SignatureError(`no signing key at ${key}: pass --key <private key file> (or set ROTATION_SIGNING_KEY)`);
    return key;
}

/** Signs `data` with the private key file `key`; returns the armored signature. */
export function sign(data: Buffer, key: string): string {
    // -q is not accepted by -Y sign; its "Signing data on standard input" note goes to stderr and is dropped.
    const r = keygen(["-Y", "sign", "-f", key, "-n", NAMESPACE], data);
    if (r.code !== 0 || !r.stdout.includes("BEGIN SSH SIGNATURE")) {
        throw new SignatureError(`ssh-keygen could not sign with ${key}: ${r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`}`);
    }
    return r.stdout;
}

export interface Signer {
    /** The principal the allowed-signers file names for the key, e.g. alice@example.com. */
    principal: string;
    /** The key's SHA256 fingerprint as ssh-keygen prints it. */
    key: string;
}

/**
 * Who made `signature` over `data`: the allowed signer whose key made it, and
 * only if the signature is good for exactly these bytes and this product's
 * namespace. Throws a SignatureError saying why not.
 */
export function verify(data: Buffer, signature: string, allowedSigners: string): Signer {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rotation-sig-"));
    try {
        const sig = path.join(dir, "sig");
        fs.writeFileSync(sig, signature, { mode: 0o600 });
        const found = keygen(["-Y", "find-principals", "-s", sig, "-f", allowedSigners, "-n", NAMESPACE], "");
        const principals = found.stdout
            .split("\n")
            .map((l) => l.trim())
            .filter(Boolean);
        if (found.code !== 0 || !principals.length) throw new SignatureError(`the signing key is not in the allowed signers (${allowedSigners})`);
        const why: string[] = [];
        for (const principal of principals) {
            const r = keygen(["-Y", "verify", "-f", allowedSigners, "-I", principal, "-n", NAMESPACE, "-s", sig], data);
            const good = /^Good "[^"]*" signature for .* with \S+ key (\S+)/m.exec(r.stdout + r.stderr);
            if (r.code === 0 && good) return { principal, key: good[1] };
            why.push((r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`).replace(/\.$/, ""));
        }
        // ssh-keygen says which: "incorrect signature" (the bytes changed since) or "namespace does not match" (made for something else).
        throw new SignatureError(`the signature does not match the request as it is now (${why.join("; ")})`);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}
