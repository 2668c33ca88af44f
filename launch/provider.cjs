// The step provider plugin as provider/bin/pulumi-resource-rotation runs it:
//   node launch/provider.cjs <checkout>/provider/main.ts <the engine's arguments>
// provider/main.ts through launch/register.cjs instead of tsx. The source's
// path stays on the command line, where `bin/rotate unlock` looks for a
// killed run's step providers still running.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const [entry] = process.argv.splice(2, 1);
const real = (f) => {
    try {
        return fs.realpathSync(f);
    } catch {
        return f;
    }
};
if (real(entry ?? "") !== real(path.join(__dirname, "..", "provider", "main.ts"))) {
    console.error(`launch/provider.cjs: expected this checkout's provider/main.ts as first argument, got ${entry}`);
    process.exit(2);
}
require("./register.cjs");
require("../provider/main.ts");
