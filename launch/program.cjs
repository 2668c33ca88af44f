// The Pulumi program as Pulumi.yaml names it (`main`): index.ts, run from its
// JavaScript build (launch/build.cjs), built first if any source changed.
"use strict";
module.exports = require(`${require("./build.cjs").ensureBuilt()}/index.js`);
