// Seeded pseudo-random values for property tests: deterministic, so a failure
// names its seed and case and replays exactly.

/** mulberry32: a small, seeded PRNG. */
export function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

/** What breaks shell text: line breaks, quotes, expansions, escapes, blanks, option-like dashes, non-ASCII. */
const NASTY_PIECES = [
    "\n",
    "'",
    '"',
    "$",
    "$(echo PWNED)",
    "`echo PWNED`",
    "${IFS}",
    "$HOME",
    "\\",
    "\\'",
    "'\\''",
    " ",
    "\t",
    "-",
    "--",
    ";",
    "&",
    "|",
    "*",
    "#",
    "~",
    "!",
    "%s",
    "é",
    "日本",
    "🔑",
];
const PLAIN_PIECES = ["a", "Z", "0", "_", ".", "x9", "key"];

/** Fixed cases first: each nasty kind on its own, then all together. */
export const NASTY = [
    "\n",
    "a\nb",
    "'",
    "it's",
    '"',
    "$HOME",
    "$(echo PWNED)",
    "`echo PWNED`",
    "\\",
    "a\\'b",
    " lead and trail ",
    "-n",
    "--",
    "-rf x",
    "é",
    "日本",
    "🔑",
    "x'\n\"$(echo PWNED)`y`\\ -é日本🔑",
];

/**
 * A value of 1-12 pieces, at least one of them nasty, sometimes with a
 * leading dash. It holds no '/' and no NUL, so it also serves as a file name.
 */
export function nastyValue(next: () => number): string {
    const pick = (from: string[]) => from[Math.floor(next() * from.length)];
    const n = 1 + Math.floor(next() * 12);
    const pieces = Array.from({ length: n }, () => pick(next() < 0.6 ? NASTY_PIECES : PLAIN_PIECES));
    pieces[Math.floor(next() * n)] = pick(NASTY_PIECES);
    return (next() < 0.2 ? "-" : "") + pieces.join("");
}

/** The fixed cases and `count` seeded random ones. */
export function nastyValues(seed: number, count: number): string[] {
    const next = prng(seed);
    return [...NASTY, ...Array.from({ length: count }, () => nastyValue(next))];
}
