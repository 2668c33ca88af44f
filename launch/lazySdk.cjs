// Preloaded (NODE_OPTIONS=--require) into every Node.js process of a run:
// the Pulumi program, the Automation API of bin/rotate, the step provider.
//
// The Pulumi Node.js SDK (3.248.0) loads, with its closure serializer
// (runtime/closure/codePaths.js, parseFunction.js), npm's Arborist (with
// pacote, sigstore, npm-registry-fetch...) and the TypeScript compiler at
// start, in every process that loads `@pulumi/pulumi`, whether or not it ever
// serializes a function. That is most of the SDK's load time: about 0.4 s of
// CPU of every engine run's program and of every Automation API process.
// This hands the SDK's closure modules a stand-in for those four modules that
// loads the real one at its first use, so a process that serializes a function
// (none of ours does) still gets them, and one that does not never pays.
"use strict";
const Module = require("node:module");
const path = require("node:path");

/** What the SDK's closure modules require at load time and use only when serializing a function. */
const LAZY = new Set(["@npmcli/arborist", "normalize-package-data", "fdir", "../../typescript-shim"]);
const CLOSURE = `${path.sep}@pulumi${path.sep}pulumi${path.sep}runtime${path.sep}closure${path.sep}`;

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
