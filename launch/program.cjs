// The Pulumi program as package.json's `main` names it (Pulumi.yaml: `typescript: false`):
// index.ts, through launch/register.cjs instead of ts-node.
"use strict";
require("./register.cjs");
module.exports = require("../index.ts");
