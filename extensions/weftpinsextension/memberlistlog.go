package weftpinsextension

import (
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// logBridge turns memberlist's log lines ("[LEVEL] memberlist: ...") into
// zap entries: DEBUG and INFO at debug level, WARN and ERR at warn level,
// at most warnBudget of those a minute. Lines reporting a message that
// could not be decrypted are counted as refused (undecryptable): memberlist
// offers no other hook for them.
type logBridge struct {
	log *zap.Logger
	p   *Pins

	mu         sync.Mutex
	window     time.Time
	warns      int
	suppressed int
}

const warnBudget = 10

// undecryptable reports whether a memberlist log line is about a packet
// or a stream it refused for want of the key: one it could not decrypt,
// or one that came in plaintext. The texts are memberlist v0.7.0's
// (net.go, security.go); TestWrongKeyNeitherJoinsNorInjects notices if
// they change.
func undecryptable(line string) bool {
	return strings.Contains(line, "Decrypt packet failed") ||
		strings.Contains(line, "no installed keys could decrypt") ||
		strings.Contains(line, "remote state is not encrypted")
}

func newLogBridge(l *zap.Logger, p *Pins) *logBridge { return &logBridge{log: l, p: p} }

func (b *logBridge) Write(line []byte) (int, error) {
	n := len(line)
	s := strings.TrimSpace(string(line))
	if undecryptable(s) {
		b.p.refuseMessage(refusedUndecryptable)
	}
	level, msg := "", s
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			level, msg = s[1:i], strings.TrimPrefix(strings.TrimSpace(s[i+1:]), "memberlist: ")
		}
	}
	switch level {
	case "WARN", "ERR", "ERROR":
	default:
		if ce := b.log.Check(zap.DebugLevel, "memberlist"); ce != nil {
			ce.Write(zap.String("line", msg))
		}
		return n, nil
	}
	b.mu.Lock()
	now := time.Now()
	if now.Sub(b.window) >= time.Minute {
		b.window, b.warns = now, 0
	}
	if b.warns >= warnBudget {
		b.suppressed++
		b.mu.Unlock()
		return n, nil
	}
	b.warns++
	suppressed := b.suppressed
	b.suppressed = 0
	b.mu.Unlock()
	b.log.Warn("memberlist", zap.String("line", msg), zap.Int("suppressed_before", suppressed))
	return n, nil
}
