// Preloaded (NODE_OPTIONS=--require, set by bin/pulumi, bin/rotate and the
// tests' workspaces) into every Node.js process of a run: the Pulumi program,
// the Automation API of bin/rotate, the step provider. Two things, both about
// what a process loads before it does anything:
//
// 1. Pulumi.yaml's `typescript: false` holds. The language host the toolchain
//    pins (sdk v3.68.0, toolchain/README.md) takes the runtime options as
//    command-line flags, which the engine (v3.248.0) no longer passes, so it
//    always starts the program with PULUMI_NODEJS_TYPESCRIPT=true, and the
//    SDK then loads the TypeScript compiler and ts-node (about 0.4 s of CPU)
//    and transpiles every file again in each new /tmp (each test lane). For
//    the program's run (cmd/run) of a project whose Pulumi.yaml says
//    `typescript: false`, that is set back before the SDK reads it; the
//    program runs through launch/register.cjs (launch/program.cjs).
//
// 2. The SDK loads without what only its closure serializer needs. The Pulumi
//    Node.js SDK (3.248.0) loads, with runtime/closure/codePaths.js and
//    parseFunction.js, npm's Arborist (with pacote, sigstore,
//    npm-registry-fetch...) and the TypeScript compiler at start, in every
//    process that loads `@pulumi/pulumi`, whether or not it ever serializes a
//    function: about 0.4 s of CPU of every program run and of every Automation
//    API process. The closure modules get a stand-in for those four modules
//    that loads the real one at its first use, so a process that serializes
//    a function (none of ours does) still gets them, and one that does not
//    never pays.
"use strict";
const Module = require("node:module");
const path = require("node:path");

/** What the SDK's closure modules require at load time and use only when serializing a function. */
const LAZY = new Set(["@npmcli/arborist", "normalize-package-data", "fdir", "../../typescript-shim"]);
const CLOSURE = `${path.sep}@pulumi${path.sep}pulumi${path.sep}runtime${path.sep}closure${path.sep}`;

// 1. `typescript: false` of the program's Pulumi.yaml (the run's --pwd, else the working directory).
if (process.argv[1]?.endsWith(`${path.sep}cmd${path.sep}run${path.sep}index.js`) && process.env.PULUMI_NODEJS_TYPESCRIPT === "true") {
    const at = process.argv.indexOf("--pwd");
    const project = at > 0 ? process.argv[at + 1] : process.cwd();
    try {
        const settings = require("node:fs").readFileSync(path.join(project, "Pulumi.yaml"), "utf8");
        if (/^\s+typescript:\s*false\s*(#.*)?$/m.test(settings)) process.env.PULUMI_NODEJS_TYPESCRIPT = "false";
    } catch {
        // no Pulumi.yaml there: the SDK decides as it would have
    }
}

// 2. The closure serializer's modules, loaded at their first use.
const load = Module._load;
Module._load = function lazyLoad(request, parent, isMain) {
    if (!LAZY.has(request) || !parent?.filename?.includes(CLOSURE)) return load.apply(this, arguments);
    let real;
    const get = () => {
        real ??= load.call(this, request, parent, isMain);
        return real;
    };
    // A function target, so that `new` and calls reach the real export too.
    return new Proxy(function lazyModule() {}, {
        get(_target, key) {
            // The SDK's __importStar / __importDefault take an ES module as it is, so no key is read before use.
            if (key === "__esModule") return true;
            const m = get();
            if (key === "default" && !(m !== null && typeof m === "object" && "default" in m)) return m;
            return m[key];
        },
        has: (_target, key) => key in get(),
        ownKeys: () => Reflect.ownKeys(get()),
        getOwnPropertyDescriptor: (_target, key) => {
            const d = Reflect.getOwnPropertyDescriptor(get(), key);
            if (d) d.configurable = true;
            return d;
        },
        apply: (_target, self, args) => Reflect.apply(get(), self, args),
        construct: (_target, args) => Reflect.construct(get(), args),
    });
};
