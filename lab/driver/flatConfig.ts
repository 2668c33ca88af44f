// Tests describe one secret's rotation in a flat form (secret, store, source,
// consumers with their SSH fields inline), which is short to write and to
// vary; this turns it into the stack config the product reads:
// rotation:hosts (one host per consumer, named after it) and
// rotation:secrets.<name>.
const SSH_FIELDS = ["host", "port", "user", "hostKey", "hostKeyFile", "privateKeyFile"] as const;

type Obj = Record<string, any>;

function hostOf(t: Obj): Obj {
    const h: Obj = { address: t.host };
    for (const k of SSH_FIELDS.slice(1)) if (t[k] !== undefined) h[k] = t[k];
    return h;
}

function withoutSsh(t: Obj): Obj {
    const out: Obj = {};
    for (const [k, v] of Object.entries(t)) if (!(SSH_FIELDS as readonly string[]).includes(k)) out[k] = v;
    return out;
}

/**
 * The secret's entry of rotation:secrets and the hosts it needs, from the
 * flat form. Consumers with the same SSH fields share one host, named after
 * the first of them (`known` carries hosts across secrets).
 */
export function secretEntryOf(flat: Obj, known: Obj = {}): { name: string; entry: Obj; hosts: Obj } {
    const { name, ...secret } = flat.secret ?? {};
    const hosts: Obj = {};
    const hostFor = (c: Obj): string => {
        const h = hostOf(c);
        const same = Object.entries({ ...known, ...hosts }).find(([, x]) => JSON.stringify(x) === JSON.stringify(h));
        if (same) return same[0];
        hosts[c.name] = h;
        return c.name;
    };
    let source = flat.source;
    if (source?.kind === "ssh-authorized-key") {
        hosts[`${name}-target`] = hostOf(source);
        source = { ...withoutSsh(source), host: `${name}-target` };
    }
    const consumers = Array.isArray(flat.consumers)
        ? flat.consumers.map((c: Obj) => {
              if (typeof c !== "object" || c === null || typeof c.name !== "string") return c;
              // A consumer behind an API (gitea-actions, ...) has no host: as it is.
              if (typeof c.kind === "string" && c.kind !== "config-file") return c;
              return { ...withoutSsh(c), host: hostFor(c) };
          })
        : flat.consumers;
    const entry: Obj = { ...secret, store: flat.store, source, consumers };
    if (flat.generation !== undefined) entry.generation = flat.generation;
    if (flat.mode !== undefined) entry.mode = flat.mode;
    if (flat.after !== undefined) entry.after = flat.after;
    for (const k of ["rollout", "window", "outsideWindow"]) if (flat[k] !== undefined) entry[k] = flat[k];
    for (const k of Object.keys(entry)) if (entry[k] === undefined) delete entry[k];
    return { name, entry, hosts };
}

/** The `rotation:` keys (without prefix) of a stack holding the flat forms' secrets. */
export function environmentOf(...flats: Obj[]): Obj {
    const env: Obj = { hosts: {}, secrets: {} };
    for (const flat of flats) {
        const { name, entry, hosts } = secretEntryOf(flat, env.hosts);
        Object.assign(env.hosts, hosts);
        env.secrets[name] = entry;
        if (flat.auditLog !== undefined) env.auditLog = flat.auditLog;
    }
    return env;
}
