// Package husk carries the source of husk's Go policy SDK for `huskctl
// policy new`, which writes a copy of it into a new policy project: husk's
// module is not on the Go module proxy, so a project outside this
// repository builds against that copy (a go.mod replace), offline.
//
// The copy is the SDK's package (policies/sdk) and the one package of
// husk's it imports (internal/vocab), without their tests. Only huskctl
// imports this package; the SDK itself does not, so policy modules carry
// no copy of their own source.
package husk

import "embed"

// PolicySDK holds policies/sdk/*.go and internal/vocab/*.go, tests
// included (the writer leaves *_test.go out).
//
//go:embed policies/sdk/*.go internal/vocab/*.go
var PolicySDK embed.FS

// PolicySDKPackages are the directories of PolicySDK, as in this module.
var PolicySDKPackages = []string{"policies/sdk", "internal/vocab"}
