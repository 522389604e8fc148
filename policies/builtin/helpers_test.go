package builtin

import "strings"

// contains reports whether err's message holds msg.
func contains(err error, msg string) bool { return err != nil && strings.Contains(err.Error(), msg) }
