package fluentforwardexporter

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
	"go.opentelemetry.io/collector/config/configopaque"
)

func TestHandshake(t *testing.T) {
	for _, tc := range []struct {
		name     string
		server   *fwdSecurity // nil: the server runs no handshake
		key      string
		user     string
		password string
		wantErr  []string // empty: records are delivered
		rejected string   // the reason the server gave, if it refused
	}{
		{name: "shared_key", server: &fwdSecurity{hostname: "fluentd-0", sharedKey: "s3cret"}, key: "s3cret"},
		{name: "user_auth", server: &fwdSecurity{hostname: "fluentd-0", sharedKey: "s3cret", users: map[string]string{"weft": "pw"}},
			key: "s3cret", user: "weft", password: "pw"},
		{name: "wrong_key", server: &fwdSecurity{hostname: "fluentd-0", sharedKey: "s3cret"}, key: "guess",
			wantErr: []string{"rejected the handshake", `"shared_key mismatch"`, "check shared_key"}, rejected: "shared_key mismatch"},
		{name: "wrong_password", server: &fwdSecurity{hostname: "fluentd-0", sharedKey: "s3cret", users: map[string]string{"weft": "pw"}},
			key: "s3cret", user: "weft", password: "nope",
			wantErr: []string{"rejected the handshake", `"username/password mismatch"`}, rejected: "username/password mismatch"},
		{name: "server_without_the_key", server: &fwdSecurity{hostname: "fluentd-0", sharedKey: "guess", pongKey: "other"}, key: "guess",
			wantErr: []string{"PONG digest does not match"}},
		{name: "server_same_hostname", server: &fwdSecurity{hostname: "weft-test", sharedKey: "s3cret"}, key: "s3cret",
			wantErr: []string{`server hostname "weft-test" equals self_hostname`}},
		{name: "server_requires_handshake", server: &fwdSecurity{hostname: "fluentd-0", sharedKey: "s3cret"},
			wantErr: []string{"the server sent HELO", "set shared_key"}},
		{name: "server_without_handshake", key: "s3cret",
			wantErr: []string{"no HELO from the server within dial_timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFwdServer(t, modeAck)
			if tc.server != nil {
				srv.requireHandshake(*tc.server)
			}
			cfg := testConfig(srv.addr())
			cfg.SharedKey = configopaque.String(tc.key)
			cfg.SelfHostname = "weft-test"
			cfg.Username = tc.user
			cfg.Password = configopaque.String(tc.password)
			cfg.DialTimeout = 300 * time.Millisecond
			cfg.QueueConfig = noQueue() // the caller sees the error
			cfg.BackOffConfig.Enabled = false
			exp := startExporter(t, cfg, nil)
			defer shutdownWithin(t, exp, 5*time.Second)

			err := exp.ConsumeLogs(t.Context(), seqLogs(0, 20))
			srv.mu.Lock()
			pings, rejected := append([]string(nil), srv.pings...), append([]string(nil), srv.rejected...)
			srv.mu.Unlock()
			if len(tc.wantErr) == 0 {
				require.NoError(t, err)
				assert.Equal(t, 20, ackedSeqs(srv))
				assert.Equal(t, []string{"weft-test"}, pings, "one handshake, with self_hostname")
				assert.Empty(t, rejected)
				// A pooled connection is reused without a new handshake.
				require.NoError(t, exp.ConsumeLogs(t.Context(), seqLogs(20, 20)))
				assert.Equal(t, 40, ackedSeqs(srv))
				srv.mu.Lock()
				assert.Len(t, srv.pings, 1)
				srv.mu.Unlock()
				return
			}
			require.Error(t, err)
			for _, w := range tc.wantErr {
				assert.ErrorContains(t, err, w)
			}
			assert.Zero(t, ackedSeqs(srv), "nothing accepted without a valid handshake")
			if tc.rejected != "" {
				assert.Equal(t, []string{tc.rejected}, rejected)
			}
		})
	}
}

// FuzzReadHELOAndPONG: the handshake parsers never panic on what a server
// sends, and a HELO they accept has a nonce.
func FuzzReadHELOAndPONG(f *testing.F) {
	helo := msgp.AppendArrayHeader(nil, 2)
	helo = msgp.AppendString(helo, "HELO")
	helo = msgp.AppendMapHeader(helo, 3)
	helo = msgp.AppendString(helo, "nonce")
	helo = msgp.AppendBytes(helo, []byte("0123456789abcdef"))
	helo = msgp.AppendString(helo, "auth")
	helo = msgp.AppendString(helo, "")
	helo = msgp.AppendString(helo, "keepalive")
	helo = msgp.AppendBool(helo, true)
	pong := msgp.AppendArrayHeader(nil, 5)
	pong = msgp.AppendString(pong, "PONG")
	pong = msgp.AppendBool(pong, false)
	pong = msgp.AppendString(pong, "shared_key mismatch")
	pong = msgp.AppendString(pong, "fluentd-0")
	pong = msgp.AppendString(pong, "ab")
	f.Add(helo)
	f.Add(pong)
	f.Add(helo[:7])
	f.Add([]byte{0x92, 0xa4, 'H', 'E', 'L', 'O', 0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := readHELO(msgp.NewReader(bytes.NewReader(data)))
		if err == nil {
			require.NotEmpty(t, h.nonce)
		}
		_, _, _, _, _ = readPONG(msgp.NewReader(bytes.NewReader(data)))
	})
}
