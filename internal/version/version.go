// Package version holds the build's version string, stamped at link time with
// -ldflags "-X github.com/meetops/meetops/internal/version.Version=…".
package version

// Version is the meetops version; "dev" for unstamped builds.
var Version = "dev"
