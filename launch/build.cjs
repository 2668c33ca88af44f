// Transpiles ahead what the Pulumi program (index.ts), the step provider
// (provider/main.ts) and the console (cli/rotate.ts) import, into the
// JavaScript that launch/register.cjs keeps under .build/, so the first
// engine runs after a checkout or an edit do not each transpile the same
// files (and drops what older versions of tsconfig.json, TypeScript or
// register.cjs kept). Only a head start: every require checks its file anyway.
//
//   node launch/build.cjs     (bin/setup-toolchain, bin/test)
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { CACHE, javascriptOf, ROOT } = require("./register.cjs");

const ENTRIES = ["index.ts", "provider/main.ts", "cli/rotate.ts"];

const t = Date.now();
const seen = new Set();
const queue = ENTRIES.map((e) => path.join(ROOT, e));
let ts;
while (queue.length > 0) {
    const file = queue.shift();
    if (seen.has(file)) continue;
    seen.add(file);
    javascriptOf(file);
    ts ??= require("typescript");
    for (const { fileName } of ts.preProcessFile(fs.readFileSync(file, "utf8"), true, true).importedFiles) {
        if (!fileName.startsWith(".")) continue;
        const base = path.resolve(path.dirname(file), fileName);
        const found = [`${base}.ts`, path.join(base, "index.ts")].find((f) => fs.existsSync(f));
        if (found) queue.push(found);
    }
}
// What older versions of tsconfig.json, TypeScript or register.cjs kept.
for (const d of fs.readdirSync(path.dirname(CACHE))) {
    if (/^[0-9a-f]{12}$/.test(d) && d !== path.basename(CACHE)) fs.rmSync(path.join(path.dirname(CACHE), d), { recursive: true, force: true });
}
console.log(`build: ${seen.size} TypeScript files ready as JavaScript in .build/ (${((Date.now() - t) / 1000).toFixed(1)}s)`);
