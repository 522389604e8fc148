package api

// The guest image's layout that the agent relies on (internal/guestimage
// writes it): the agent is /init, and loads the kernel modules listed in
// LoadOrderFile, one file name of ModuleDir a line, in that order, before
// it listens.
const (
	ModuleDir     = "/lib/modules/husk"
	LoadOrderFile = ModuleDir + "/load-order"
)
