package main

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// shutdownNoise lists errors that upstream components log at error level,
// with a stack trace, during a clean shutdown: by message, the error text
// that marks the shutdown case. Only that exact pair is demoted.
var shutdownNoise = map[string]string{
	// contrib prometheus_remote_write (v0.165.1, wal.go): Shutdown closes the
	// WAL while its reader goroutine is blocked on it; the reader's next
	// read fails with this and is logged as an error. Nothing is lost: the
	// WAL's entries stay on disk and are replayed at the next start.
	"error processing WAL entries": "attempt to read from WAL after stopped",
}

// quietShutdown wraps the agent's log core so that the entries in
// shutdownNoise are written at debug level without a stack trace; every other
// entry passes through the wrapped core unchanged (its sampling included).
func quietShutdown() zap.Option {
	return zap.WrapCore(func(c zapcore.Core) zapcore.Core { return shutdownNoiseCore{c} })
}

type shutdownNoiseCore struct{ zapcore.Core }

func (c shutdownNoiseCore) With(fields []zapcore.Field) zapcore.Core {
	return shutdownNoiseCore{c.Core.With(fields)}
}

func (c shutdownNoiseCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if _, ok := shutdownNoise[ent.Message]; ok && ent.Level >= zapcore.ErrorLevel && c.Enabled(ent.Level) {
		return ce.AddCore(ent, c) // Write decides, seeing the fields
	}
	return c.Core.Check(ent, ce)
}

func (c shutdownNoiseCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	if want, ok := shutdownNoise[ent.Message]; ok && hasError(fields, want) {
		if !c.Enabled(zapcore.DebugLevel) {
			return nil
		}
		ent.Level, ent.Stack = zapcore.DebugLevel, ""
	}
	return c.Core.Write(ent, fields)
}

func hasError(fields []zapcore.Field, text string) bool {
	for _, f := range fields {
		if f.Type == zapcore.ErrorType {
			if err, ok := f.Interface.(error); ok && err.Error() == text {
				return true
			}
		}
	}
	return false
}
