/**
 * The one way a value from config enters a shell script: as a single-quoted
 * POSIX shell word. Inside single quotes nothing is special except the quote
 * itself, which is closed, escaped and reopened. NUL cannot be represented in
 * a shell word, so config validation rejects it before anything gets here.
 */
export function shq(value: string | number): string {
    const s = String(value);
    if (s.includes("\0")) {
        throw new Error("shq: a shell word cannot contain a NUL byte");
    }
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Joins values into the stdin payload of a step: each field is terminated by
 * NUL, so secrets may hold newlines, quotes or any other byte but NUL. Scripts
 * read them with `IFS= read -r -d '' VAR`.
 */
export function stdinFields(...fields: string[]): string {
    for (const f of fields) {
        if (f.includes("\0")) {
            throw new Error("stdinFields: a field cannot contain a NUL byte");
        }
    }
    return fields.map((f) => `${f}\0`).join("");
}
