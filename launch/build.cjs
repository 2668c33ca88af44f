// The program (index.ts) and the step provider (provider/main.ts) as plain
// JavaScript under .build/, so that no engine run pays for a TypeScript
// loader: ts-node and the TypeScript compiler in the program, tsx and its
// hooks thread in the provider (about 0.5 s of CPU each, on every run).
//
// Each file is transpiled alone, exactly as ts-node did it for the program
// (TypeScript's transpileModule with tsconfig.json's options, no type check:
// `npm run typecheck` and bin/test check types). What is built is the import
// closure of the two entry points; .build/manifest.json records each file's
// mtime and size, and every launch (launch/program.cjs, launch/provider.cjs)
// compares them first (a few dozen stats): any source edited, added to the
// closure or removed, tsconfig.json, the TypeScript version or this file
// changed, and it builds again before anything runs, so a stale build never
// runs. Each output is written to a temporary file and renamed, the manifest
// last: two launches building at once write the same files.
//
//   node launch/build.cjs     builds if anything changed (bin/setup-toolchain, bin/test)
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");
const OUT = path.join(ROOT, ".build");
const MANIFEST = path.join(OUT, "manifest.json");
const ENTRIES = ["index.ts", "provider/main.ts"];
/** What the output depends on besides the sources. */
const INPUTS = ["tsconfig.json", "launch/build.cjs", "node_modules/typescript/package.json"];

/** A file's mtime and size, or "missing". */
function stamp(rel) {
    try {
        const s = fs.statSync(path.join(ROOT, rel));
        return `${s.mtimeMs}:${s.size}`;
    } catch {
        return "missing";
    }
}

/** Whether .build/ holds the output of the sources as they are now. */
function fresh() {
    let manifest;
    try {
        manifest = JSON.parse(fs.readFileSync(MANIFEST, "utf8"));
    } catch {
        return false;
    }
    if (!manifest.files || !ENTRIES.every((e) => e in manifest.files)) return false;
    for (const [rel, was] of Object.entries(manifest.files)) if (stamp(rel) !== was) return false;
    return true;
}

function writeAtomic(file, text) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
}

/** Transpiles the import closure of ENTRIES into .build/ and writes the manifest. */
function build() {
    const ts = require("typescript");
    const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
    if (!config) throw new Error("launch/build.cjs: cannot read tsconfig.json");
    const options = { ...config.options, noEmit: false, declaration: false, sourceMap: false, inlineSourceMap: false };
    const files = {};
    for (const rel of INPUTS) files[rel] = stamp(rel);
    const queue = [...ENTRIES];
    while (queue.length > 0) {
        const rel = queue.shift();
        if (rel in files) continue;
        files[rel] = stamp(rel); // before reading: an edit made while building shows at the next launch
        const text = fs.readFileSync(path.join(ROOT, rel), "utf8");
        for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
            if (!fileName.startsWith(".")) continue;
            const base = path.join(path.dirname(rel), fileName);
            const found = [`${base}.ts`, path.join(base, "index.ts"), base].find((f) => f.endsWith(".ts") && fs.existsSync(path.join(ROOT, f)));
            if (!found) throw new Error(`launch/build.cjs: ${rel} imports ${fileName}, which is no TypeScript file of this checkout`);
            queue.push(found);
        }
        const js = ts.transpileModule(text, { compilerOptions: options, fileName: rel, reportDiagnostics: false }).outputText;
        writeAtomic(path.join(OUT, rel.replace(/\.ts$/, ".js")), js);
    }
    writeAtomic(MANIFEST, `${JSON.stringify({ entries: ENTRIES, files }, null, 1)}\n`);
}

/** .build/, built first if any of its sources changed. */
function ensureBuilt() {
    if (!fresh()) build();
    return OUT;
}

module.exports = { ensureBuilt, fresh, OUT };

if (require.main === module) {
    if (fresh()) {
        console.log("build: .build/ is up to date");
    } else {
        const t = Date.now();
        build();
        console.log(`build: .build/ (the program and the step provider as JavaScript) in ${((Date.now() - t) / 1000).toFixed(1)}s`);
    }
}
