// Package c holds husk's C SDK for hook modules, husk.h (docs/hooks.md
// §5): one freestanding header that a policy in C includes to get the
// hook ABI's exports, husk's host functions and helpers to read the event
// and write a decision. The built-in policies are written with it.
//
// The header is embedded so that policies/build (and `huskctl policy
// build`) can compile a C policy anywhere, with no copy of this
// repository.
package c

import _ "embed"

// Header is husk.h.
//
//go:embed husk.h
var Header []byte

// HeaderName is the name a policy includes: #include "husk.h".
const HeaderName = "husk.h"
