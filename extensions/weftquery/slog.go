package weftquery

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapHandler passes the PromQL engine's slog records to the component's zap
// logger (the module has no zapslog; this is the little it needs).
type zapHandler struct {
	l *zap.Logger
}

func newSlogger(l *zap.Logger) *slog.Logger { return slog.New(zapHandler{l: l}) }

func zapLevel(l slog.Level) zapcore.Level {
	switch {
	case l >= slog.LevelError:
		return zapcore.ErrorLevel
	case l >= slog.LevelWarn:
		return zapcore.WarnLevel
	case l >= slog.LevelInfo:
		return zapcore.InfoLevel
	}
	return zapcore.DebugLevel
}

func (h zapHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.l.Core().Enabled(zapLevel(l))
}

func (h zapHandler) Handle(_ context.Context, r slog.Record) error {
	fields := make([]zap.Field, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, zap.Any(a.Key, a.Value.Any()))
		return true
	})
	if ce := h.l.Check(zapLevel(r.Level), r.Message); ce != nil {
		ce.Write(fields...)
	}
	return nil
}

func (h zapHandler) WithAttrs(as []slog.Attr) slog.Handler {
	fields := make([]zap.Field, 0, len(as))
	for _, a := range as {
		fields = append(fields, zap.Any(a.Key, a.Value.Any()))
	}
	return zapHandler{l: h.l.With(fields...)}
}

func (h zapHandler) WithGroup(name string) slog.Handler {
	return zapHandler{l: h.l.With(zap.Namespace(name))}
}
