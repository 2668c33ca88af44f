//go:build tools

// Package tools pins the Node.js language host that setup builds; see toolchain/README.md.
package tools

import _ "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
