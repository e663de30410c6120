package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestQuietShutdownDemotesOnlyTheKnownPair(t *testing.T) {
	for _, level := range []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel} {
		core, logs := observer.New(level)
		log := zap.New(core, quietShutdown(), zap.AddStacktrace(zapcore.ErrorLevel)).With(zap.String("otelcol.component.id", "prometheus_remote_write"))

		log.Error("error processing WAL entries", zap.Error(errors.New("attempt to read from WAL after stopped")))
		log.Error("error processing WAL entries", zap.Error(errors.New("log corrupt")))
		log.Error("something else", zap.Error(errors.New("attempt to read from WAL after stopped")))
		log.Info("plain")

		got := logs.AllUntimed()
		var msgs []string
		for _, e := range got {
			msgs = append(msgs, e.Level.String()+" "+e.Message)
		}
		if level == zapcore.DebugLevel {
			require.Len(t, got, 4, "%v", msgs)
			assert.Equal(t, zapcore.DebugLevel, got[0].Level, "the clean-shutdown case is demoted")
			assert.Empty(t, got[0].Stack, "and has no stack trace")
			assert.Equal(t, "prometheus_remote_write", got[0].ContextMap()["otelcol.component.id"], "fields kept")
			got = got[1:]
		} else {
			require.Len(t, got, 3, "at info level the demoted entry is not written: %v", msgs)
		}
		assert.Equal(t, zapcore.ErrorLevel, got[0].Level, "a real WAL error stays an error")
		assert.NotEmpty(t, got[0].Stack)
		assert.Equal(t, zapcore.ErrorLevel, got[1].Level, "another message stays an error")
		assert.Equal(t, "plain", got[2].Message)
	}
}
