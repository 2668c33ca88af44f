/**
 * The file store's layout, declared once: the files that hold one secret in
 * the store's directory. Every script, check and test that names one of
 * them takes its name from here.
 */
export const FILE_STORE_PARTS = {
    /** The secret in use. */
    current: "",
    /** The new generation, staged beside it until promotion. */
    staged: ".new",
    /** The secret the last promotion replaced (bin/rotate check tells a consumer still on it). */
    previous: ".previous",
    /** The generation whose revocation started; rollback is refused at or below it. */
    committed: ".committed",
} as const;

export type FileStorePart = keyof typeof FILE_STORE_PARTS;

/** The path of one part of secret `name` in the store directory `dir`. */
export function fileStorePath(dir: string, name: string, part: FileStorePart = "current"): string {
    return `${dir}/${name}${FILE_STORE_PARTS[part]}`;
}
