package sdk

// Level is the severity of a log line, as husk.log takes it.
type Level int32

// The log levels.
const (
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// Log writes msg to husk's log, tagged with the hook's name. husk keeps at
// most 16 lines of 1 KiB per call. In a native build (tests) the line goes
// to LogFunc, if set.
func Log(level Level, msg string) { logLine(level, msg) }

// LogFunc receives log lines in native builds; nil discards them.
var LogFunc func(level Level, msg string)
