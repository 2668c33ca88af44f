/**
 * How a step's lists of consumers are stored: what their entries share is
 * written once. The engine keeps every step's inputs in its checkpoint, which
 * it rewrites after each step operation, and `stack export` prints them; a
 * fleet's entries mostly repeat each other (the same reload, retries, write
 * format and log file), and where they differ it is often only by the
 * consumer's own name (`/etc/app/web-1.env`, `/etc/app/web-2.env`). So a
 * list is stored as
 *
 *     { shared: {...}, byConsumer: {...}, each: [{ consumer: "web-1", ... }, ...] }
 *
 * `shared` holds the fields equal in every entry, `byConsumer` the string
 * fields equal in every entry once the entry's own name is written
 * `{consumer}`, and `each` what is left of each entry, its name always among
 * it. The program packs (components/exec/step.ts), the step provider unpacks
 * before anything else reads the inputs (provider/stepProvider.ts), so both
 * sides keep the list types of provider/types.ts; `pulumi preview --diff`
 * still names every consumer, and reads each shared field once.
 *
 * Packing is exact: a field is shared only if every entry has it with that
 * value, and written with `{consumer}` only if every entry's value comes back
 * from the template exactly (a value that already holds `{consumer}` never
 * is). Unpacking returns each entry with its keys sorted at every depth, the
 * order in which the engine hands a step its inputs, so a step's recorded
 * digest is what it was before lists were packed.
 */

/** A plain JSON value, as a list entry must be to be packed. */
type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** The lists of consumers in a step's inputs that are packed, by path: declared here only. */
export const PACKED_LISTS: readonly (readonly string[])[] = [["batch"], ["checks"], ["drift"], ["apiDrift"], ["preflight", "consumers"], ["preflight", "apis"]];

/** What an entry's own name becomes in a `byConsumer` template. */
export const CONSUMER_PLACEHOLDER = "{consumer}";

/** A list as stored. */
export interface PackedList {
    shared: JsonObject;
    byConsumer?: JsonObject;
    each: JsonObject[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
/** An object literal's kind of object (not an Output, a promise or a resource, which are objects too). */
const isPlainObject = (v: unknown): v is Record<string, unknown> => isObject(v) && Object.getPrototypeOf(v) === Object.prototype;

/** Whether `v` is plain JSON all the way down (no Output, promise, resource, undefined or class instance). */
function isJson(v: unknown): v is Json {
    if (v === null || typeof v === "string" || typeof v === "boolean") return true;
    if (typeof v === "number") return Number.isFinite(v);
    if (Array.isArray(v)) return v.every(isJson);
    if (!isPlainObject(v)) return false;
    return Object.values(v).every((x) => x === undefined || isJson(x));
}

/** An entry's name: `consumer` (a batch, a health check, a drift check) or `name` (a pre-flight's consumer). */
function nameOf(entry: JsonObject): string | undefined {
    const n = typeof entry.consumer === "string" ? entry.consumer : entry.name;
    return typeof n === "string" && n.length > 0 ? n : undefined;
}

/** An object's leaves by path (a leaf: anything but a non-empty object); undefined fields are absent. */
function leaves(o: JsonObject, at: string[] = [], out = new Map<string, { path: string[]; value: Json }>()) {
    for (const [k, v] of Object.entries(o)) {
        if (v === undefined) continue;
        const path = [...at, k];
        if (isObject(v) && Object.keys(v).length > 0) leaves(v as JsonObject, path, out);
        else out.set(JSON.stringify(path), { path, value: v });
    }
    return out;
}

function setAt(o: JsonObject, path: string[], value: Json): void {
    let cur = o;
    for (const k of path.slice(0, -1)) cur = (isObject(cur[k]) ? cur[k] : (cur[k] = {})) as JsonObject;
    cur[path.at(-1)!] = value;
}

const same = (a: Json, b: Json) => JSON.stringify(a) === JSON.stringify(b);
const fill = (template: string, name: string) => template.split(CONSUMER_PLACEHOLDER).join(name);

/** A list packed, or the list itself when packing saves nothing or it is not plain JSON with names where needed. */
export function packList(items: unknown): unknown {
    if (!Array.isArray(items) || items.length < 2 || !items.every((e) => isObject(e) && isJson(e))) return items;
    const entries = items as JsonObject[];
    const names = entries.map(nameOf);
    const byEntry = entries.map((e) => leaves(e));
    const shared: JsonObject = {};
    const byConsumer: JsonObject = {};
    const taken = new Set<string>();
    for (const [key, { path, value }] of byEntry[0]) {
        if (path.length === 1 && (path[0] === "consumer" || path[0] === "name")) continue;
        const values = byEntry.map((l) => l.get(key)?.value);
        if (values.some((v) => v === undefined)) continue;
        if (values.every((v) => same(v as Json, value))) {
            setAt(shared, path, value);
            taken.add(key);
            continue;
        }
        if (names.some((n) => n === undefined) || !values.every((v) => typeof v === "string" && !v.includes(CONSUMER_PLACEHOLDER))) continue;
        const template = (values[0] as string).split(names[0]!).join(CONSUMER_PLACEHOLDER);
        if (!template.includes(CONSUMER_PLACEHOLDER)) continue;
        if (!values.every((v, i) => fill(template, names[i]!) === v)) continue;
        setAt(byConsumer, path, template);
        taken.add(key);
    }
    if (taken.size === 0) return items;
    const each = byEntry.map((l) => {
        const rest: JsonObject = {};
        for (const [key, { path, value }] of l) if (!taken.has(key)) setAt(rest, path, value);
        return rest;
    });
    return { shared, ...(Object.keys(byConsumer).length ? { byConsumer } : {}), each } satisfies PackedList;
}

function isPacked(v: unknown): v is PackedList {
    return isObject(v) && isObject(v.shared) && Array.isArray(v.each) && (v.byConsumer === undefined || isObject(v.byConsumer));
}

/** `v` with its object keys sorted at every depth. */
function sorted(v: Json): Json {
    if (Array.isArray(v)) return v.map(sorted);
    if (!isObject(v)) return v;
    return Object.fromEntries(
        Object.keys(v)
            .sort()
            .map((k) => [k, sorted((v as JsonObject)[k])]),
    );
}

/** A stored list as the program gave it (a list that was not packed is returned as it is). */
export function unpackList(v: unknown): unknown {
    if (!isPacked(v)) return v;
    // The shared parts' leaves once for the list, not once per entry (a batch of a large fleet has dozens).
    const shared = [...leaves(v.shared).values()];
    const templates = v.byConsumer ? [...leaves(v.byConsumer).values()] : [];
    return v.each.map((rest) => {
        const entry: JsonObject = {};
        const name = nameOf(rest);
        for (const { path, value } of shared) setAt(entry, path, value);
        if (templates.length) {
            if (name === undefined) throw new Error(`a packed list's entry has no name to fill in its ${CONSUMER_PLACEHOLDER} fields`);
            for (const { path, value } of templates) setAt(entry, path, typeof value === "string" ? fill(value, name) : value);
        }
        for (const { path, value } of leaves(rest).values()) setAt(entry, path, value);
        return sorted(entry);
    });
}

/** Applies `f` to each list of PACKED_LISTS in `inputs`, copying only the objects on the way. */
function mapLists<T>(inputs: T, f: (list: unknown) => unknown): T {
    if (!isPlainObject(inputs)) return inputs;
    const copy = (o: Record<string, unknown>, path: readonly string[]): Record<string, unknown> => {
        const [k, ...rest] = path;
        if (!(k in o)) return o;
        if (rest.length === 0) return { ...o, [k]: f(o[k]) };
        return isPlainObject(o[k]) ? { ...o, [k]: copy(o[k] as Record<string, unknown>, rest) } : o;
    };
    return PACKED_LISTS.reduce((o, path) => copy(o, path), inputs as Record<string, unknown>) as T;
}

/** A step's inputs with its lists of consumers packed (the program's side). */
export const packStep = <T>(inputs: T): T => mapLists(inputs, packList);

/** A step's inputs with its lists of consumers as the program gave them (the provider's side; and any reader of a step's stored inputs). */
export const unpackStep = <T>(inputs: T): T => mapLists(inputs, unpackList);
