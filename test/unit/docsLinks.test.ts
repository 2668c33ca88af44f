// The README is the front door and docs/ the rooms behind it: every relative
// link between them (and into lab/ and toolchain/) must reach a file, and every
// #anchor a heading, or a moved section leaves readers at a dead end.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";

const ROOT = path.resolve(__dirname, "..", "..");
const DOCS = path.join(ROOT, "docs");
const PAGES = [
    "README.md",
    ...fs
        .readdirSync(DOCS)
        .filter((f) => f.endsWith(".md"))
        .map((f) => path.join("docs", f)),
    "lab/README.md",
    "toolchain/README.md",
];

/** The text outside fenced code blocks, where links are links. */
function prose(markdown: string): string {
    return markdown.replace(/^```[\s\S]*?^```/gm, "");
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as '-', repeats numbered. */
function anchorsOf(file: string): Set<string> {
    const seen = new Map<string, number>();
    const out = new Set<string>();
    for (const [, heading] of prose(fs.readFileSync(file, "utf8")).matchAll(/^#{1,6} (.*)$/gm)) {
        const slug = heading
            .trim()
            .toLowerCase()
            .replace(/[^\p{L}\p{N}_\- ]/gu, "")
            .replace(/ /g, "-");
        const n = seen.get(slug) ?? 0;
        seen.set(slug, n + 1);
        out.add(n === 0 ? slug : `${slug}-${n}`);
    }
    return out;
}

/** Every relative link of a page that does not resolve, as "target: why". */
function brokenLinks(page: string): string[] {
    const file = path.join(ROOT, page);
    const broken: string[] = [];
    for (const [, target] of prose(fs.readFileSync(file, "utf8")).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        const [rel, fragment] = target.split("#", 2);
        const dest = rel ? path.resolve(path.dirname(file), rel) : file;
        if (!fs.existsSync(dest)) broken.push(`${target}: no such file`);
        else if (fragment && dest.endsWith(".md") && !anchorsOf(dest).has(fragment)) broken.push(`${target}: no heading #${fragment}`);
    }
    return broken;
}

for (const page of PAGES) {
    test(`${page}: every relative link reaches a file and every anchor a heading`, () => {
        assert.deepEqual(brokenLinks(page), []);
    });
}

test("the README links every page of docs/", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const unlinked = PAGES.filter((p) => p.startsWith("docs/") && !readme.includes(`](${p}`));
    assert.deepEqual(unlinked, []);
});

test("the anchors follow GitHub's rule for headings with code and punctuation", () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "docs-links-"));
    const page = path.join(tmp, "p.md");
    fs.writeFileSync(page, "# What the program enforces (a plain `pulumi up` too)\n```\n# not a heading\n```\n## Upgrading from 0.2\n## Upgrading from 0.2\n");
    assert.deepEqual([...anchorsOf(page)], ["what-the-program-enforces-a-plain-pulumi-up-too", "upgrading-from-02", "upgrading-from-02-1"]);
    fs.rmSync(tmp, { recursive: true });
});
