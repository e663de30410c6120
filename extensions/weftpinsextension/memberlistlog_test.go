package weftpinsextension

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestLogBridge: memberlist's DEBUG/INFO lines go to debug, WARN/ERR to
// warn, at most warnBudget a minute; decryption refusals are counted.
func TestLogBridge(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	p, _ := newLocal(t, nil)
	b := newLogBridge(zap.New(core), p)
	_, _ = b.Write([]byte("[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n"))
	_, _ = b.Write([]byte("[INFO] memberlist: Suspect node\n"))
	for range warnBudget + 5 {
		_, _ = b.Write([]byte("[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=127.0.0.1:2\n"))
	}
	_, _ = b.Write([]byte("[ERR] memberlist: failed to receive: encryption is configured but remote state is not encrypted from=127.0.0.1:3\n"))
	assert.Equal(t, 2, logs.FilterLevelExact(zapcore.DebugLevel).Len())
	warns := logs.FilterLevelExact(zapcore.WarnLevel).All()
	assert.Len(t, warns, warnBudget, "the rest of the minute is suppressed")
	assert.Equal(t, "Decrypt packet failed: no installed keys could decrypt the message from=127.0.0.1:2", warns[0].ContextMap()["line"])
	assert.Equal(t, int64(warnBudget+6), p.Stats().RefusedMessages[refusedUndecryptable], "counted even when not logged")
}
