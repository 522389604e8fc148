// Package hookconf is the [[hook]] entry of husk's config file: what a hook
// module is, where it is asked, its limits, and the rules every entry must
// keep. Package config decodes entries from the file (its Hook is this
// Hook) and package hooks runs them; keeping the entry here, in a package
// that imports nothing of husk's but the point names of package vocab, lets
// the hook engine take its configuration without importing the runtime's
// config package above it.
//
// Its value types (Duration, ByteSize) are the config file's units, which
// the rest of the file uses too.
package hookconf
