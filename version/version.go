// Package version holds husk's version, set at link time by the Makefile
// (-X github.com/huskrt/husk/version.Version=...).
package version

var (
	// Version is the release or `git describe` of this build.
	Version = "dev"
	// Revision is the git commit of this build.
	Revision = "unknown"
)
