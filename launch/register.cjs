// Runs this checkout's TypeScript in Node.js without a TypeScript loader on
// every start: `require` of a .ts file compiles the JavaScript kept for it
// under .build/, and transpiles it first (TypeScript's transpileModule with
// tsconfig.json's options, as ts-node did for the program; no type check:
// `npm run typecheck` and bin/test check types) when that JavaScript is
// missing or was made from another version of the file. Each kept file ends
// with the mtime and size of the source it was made from, and a require
// compares them with the source's own before using it, so an edited file is
// transpiled again and a stale one never runs. The folder under .build/ is
// named after tsconfig.json, the TypeScript version and this file, so a
// change of any of them starts afresh.
//
// The Pulumi program (launch/program.cjs), the step provider
// (launch/provider.cjs) and the console (bin/rotate) start this way: ts-node
// and the TypeScript compiler (program), tsx and its hooks thread (provider,
// console) cost about 0.4 s of CPU on every start, and a rotation starts
// each several times.
"use strict";
const fs = require("node:fs");
const Module = require("node:module");
const path = require("node:path");

const ROOT = path.resolve(__dirname, "..");

function stamp(file) {
    const s = fs.statSync(file);
    return `${s.mtimeMs}:${s.size}`;
}

/** The folder of the kept JavaScript: one per tsconfig.json, TypeScript version and version of this file. */
function cacheDir() {
    const ts = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", "typescript", "package.json"), "utf8")).version;
    const key = `${stamp(path.join(ROOT, "tsconfig.json"))}|${ts}|${stamp(__filename)}`;
    return path.join(ROOT, ".build", require("node:crypto").createHash("sha256").update(key).digest("hex").slice(0, 12));
}
const CACHE = cacheDir();

let compilerOptions;
/** TypeScript's output for one file, as ts-node's transpile-only mode made it. */
function transpile(source, file) {
    const ts = require("typescript");
    if (!compilerOptions) {
        const config = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
        if (!config) throw new Error("launch/register.cjs: cannot read tsconfig.json");
        compilerOptions = { ...config.options, noEmit: false, declaration: false, sourceMap: false, inlineSourceMap: false };
    }
    return ts.transpileModule(source, { compilerOptions, fileName: file, reportDiagnostics: false }).outputText;
}

const MARK = "\n//# source-stamp ";

/** The JavaScript of `file` (a .ts file of this checkout), kept or made now. */
function javascriptOf(file) {
    const rel = path.relative(ROOT, file);
    const kept = rel.startsWith("..") ? undefined : path.join(CACHE, rel.replace(/\.ts$/, ".js"));
    const now = stamp(file);
    if (kept) {
        try {
            const js = fs.readFileSync(kept, "utf8");
            const at = js.lastIndexOf(MARK);
            if (at >= 0 && js.slice(at + MARK.length).trim() === now) return js;
        } catch {
            // not kept yet
        }
    }
    const js = transpile(fs.readFileSync(file, "utf8"), file);
    // The stamp is the source's before it was read: a file edited meanwhile is transpiled again next time.
    if (stamp(file) !== now) return js;
    if (kept) {
        fs.mkdirSync(path.dirname(kept), { recursive: true });
        const tmp = `${kept}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, `${js}${MARK}${now}\n`);
        fs.renameSync(tmp, kept); // whole or not at all: two processes may keep the same file at once
    }
    return js;
}

// Also over ts-node's, should the SDK have registered it (a Pulumi CLI without launch/preload.cjs).
Module._extensions[".ts"] = function compileTypeScript(module, filename) {
    module._compile(javascriptOf(filename), filename);
};

module.exports = { CACHE, javascriptOf, ROOT };
