//go:build !wasip1

package sdk

func logLine(level Level, msg string) {
	if LogFunc != nil {
		LogFunc(level, msg)
	}
}
