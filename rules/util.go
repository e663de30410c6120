package rules

import (
	"errors"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
)

func joinErrs(errs []error) error { return errors.Join(errs...) }

// slogFor bridges the Prometheus libraries' slog logging to the
// component's zap logger.
func slogFor(l *zap.Logger) *slog.Logger { return slog.New(zapslog.NewHandler(l.Core())) }

func discardLogger() *slog.Logger { return slogFor(zap.NewNop()) }
