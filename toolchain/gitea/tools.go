//go:build tools

// Package tools pins the Gitea server the lab runs (toolchain/gitea.sh builds it); see toolchain/README.md.
package tools

import _ "code.gitea.io/gitea"
