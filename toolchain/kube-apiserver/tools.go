//go:build tools

// Package tools pins the Kubernetes API server the lab runs; see toolchain/README.md.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
