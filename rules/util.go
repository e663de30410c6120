package rules

import (
	"context"
	"errors"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func joinErrs(errs []error) error { return errors.Join(errs...) }

// slogFor bridges the Prometheus libraries' slog logging to the
// component's zap logger.
func slogFor(l *zap.Logger) *slog.Logger { return slog.New(&zapHandler{l: l}) }

func discardLogger() *slog.Logger { return slogFor(zap.NewNop()) }

type zapHandler struct {
	l      *zap.Logger
	prefix string
}

func (h *zapHandler) Enabled(_ context.Context, lvl slog.Level) bool {
	return h.l.Core().Enabled(levelOf(lvl))
}

func (h *zapHandler) Handle(_ context.Context, r slog.Record) error {
	fields := make([]zap.Field, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, zap.Any(h.prefix+a.Key, a.Value.Resolve().Any()))
		return true
	})
	if ce := h.l.Check(levelOf(r.Level), r.Message); ce != nil {
		ce.Write(fields...)
	}
	return nil
}

func (h *zapHandler) WithAttrs(as []slog.Attr) slog.Handler {
	fields := make([]zap.Field, 0, len(as))
	for _, a := range as {
		fields = append(fields, zap.Any(h.prefix+a.Key, a.Value.Resolve().Any()))
	}
	return &zapHandler{l: h.l.With(fields...), prefix: h.prefix}
}

func (h *zapHandler) WithGroup(name string) slog.Handler {
	return &zapHandler{l: h.l, prefix: h.prefix + name + "."}
}

func levelOf(l slog.Level) zapcore.Level {
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
