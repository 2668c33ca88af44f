//go:build tools

// Package tools pins the Pulumi CLI (engine) that setup builds; see toolchain/README.md.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
