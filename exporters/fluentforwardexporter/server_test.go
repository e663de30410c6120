package fluentforwardexporter

import (
	"bufio"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
)

// serverMode is how the test forward server treats each message it reads.
type serverMode int32

const (
	modeAck         serverMode = iota // decode, store, ack the chunk
	modeNeverAck                      // decode, store, never answer
	modeCloseOnRead                   // decode, store, close the connection
	modeWrongAck                      // decode, store, ack another chunk (out of order)
	modeLateAck                       // decode, store, ack after lateBy
	modeBlackhole                     // accept, never read nor answer
)

func (m serverMode) String() string {
	return [...]string{"ack", "never_ack", "close_on_read", "wrong_ack", "late_ack", "blackhole"}[m]
}

// fwdEvent is one decoded event.
type fwdEvent struct {
	tag    string
	time   time.Time
	record map[string]any
	chunk  string
}

// fwdServer is a forward-protocol (v1, Forward mode) server for tests whose
// behaviour can be switched at run time.
type fwdServer struct {
	t      testing.TB
	ln     net.Listener
	mode   atomic.Int32
	lateBy time.Duration
	// decide, when set before the first connection, picks the mode for the
	// n-th message (1-based) instead of mode.
	decide func(n int) serverMode
	wg     sync.WaitGroup
	stop   chan struct{}

	mu          sync.Mutex
	conns       map[net.Conn]struct{}
	events      []fwdEvent
	messages    int
	unacked     int // records in messages that were not acked correctly
	acked       int // messages acked correctly
	prevChunk   string
	ackedChunks map[string]bool
	ackedSeqSet map[int64]struct{} // distinct seqs in messages acked correctly
	lean        bool               // keep only each record's seq (long runs)
	security    *fwdSecurity       // nil: no handshake
	pings       []string           // self_hostname of every PING
	rejected    []string           // reasons of the PONGs that refused
}

// fwdSecurity is the server's <security> section.
type fwdSecurity struct {
	hostname  string
	sharedKey string
	users     map[string]string // user_auth when not nil
	// pongKey, when set, is the key the server signs its PONG with (a
	// server that does not really hold the client's key).
	pongKey string
}

// requireHandshake makes every new connection start with HELO/PING/PONG.
func (s *fwdServer) requireHandshake(sec fwdSecurity) {
	s.mu.Lock()
	s.security = &sec
	s.mu.Unlock()
}

func newFwdServer(t testing.TB, mode serverMode) *fwdServer {
	t.Helper()
	return newFwdServerAt(t, "127.0.0.1:0", mode)
}

// newFwdServerAt listens on addr; a test uses it to bring a server back on
// the port an exporter already knows.
func newFwdServerAt(t testing.TB, addr string, mode serverMode) *fwdServer {
	t.Helper()
	return newFwdServerTLS(t, addr, mode, nil)
}

// newFwdServerTLS serves TLS when tlsCfg is not nil.
func newFwdServerTLS(t testing.TB, addr string, mode serverMode, tlsCfg *tls.Config) *fwdServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s := &fwdServer{t: t, ln: ln, lateBy: 300 * time.Millisecond, conns: make(map[net.Conn]struct{}), stop: make(chan struct{}), ackedChunks: make(map[string]bool),
		ackedSeqSet: make(map[int64]struct{})}
	s.mode.Store(int32(mode))
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *fwdServer) addr() string            { return s.ln.Addr().String() }
func (s *fwdServer) setMode(m serverMode)    { s.mode.Store(int32(m)) }
func (s *fwdServer) currentMode() serverMode { return serverMode(s.mode.Load()) }

func (s *fwdServer) close() {
	_ = s.ln.Close()
	close(s.stop)
	s.dropConns()
	s.wg.Wait()
}

// dropConns closes every open connection.
func (s *fwdServer) dropConns() {
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
}

func (s *fwdServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			s.serve(c)
		}()
	}
}

func (s *fwdServer) serve(c net.Conn) {
	if s.currentMode() == modeBlackhole {
		<-s.stop // never read: the client's writes pile up in socket buffers
		return
	}
	rd := msgp.NewReader(bufio.NewReader(c))
	s.mu.Lock()
	sec := s.security
	s.mu.Unlock()
	if sec != nil && !s.handshake(c, rd, sec) {
		return
	}
	for {
		evs, chunk, err := decodeMessage(rd)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.t.Logf("fwdServer: decode: %v", err)
			}
			return
		}
		mode := s.currentMode()
		s.mu.Lock()
		if s.lean {
			for i := range evs {
				evs[i].record = map[string]any{"seq": evs[i].record["seq"]}
			}
		}
		s.events = append(s.events, evs...)
		s.messages++
		if s.decide != nil {
			mode = s.decide(s.messages)
		}
		prev := s.prevChunk
		s.prevChunk = chunk
		if mode != modeAck || chunk == "" {
			if chunk != "" {
				s.unacked += len(evs)
			}
		} else {
			s.acked++
			s.ackedChunks[chunk] = true
			for _, e := range evs {
				if seq, ok := e.record["seq"].(int64); ok {
					s.ackedSeqSet[seq] = struct{}{}
				}
			}
		}
		s.mu.Unlock()
		if chunk == "" {
			continue
		}
		switch mode {
		case modeAck:
			if !s.ack(c, chunk) {
				return
			}
		case modeNeverAck, modeBlackhole:
		case modeCloseOnRead:
			return
		case modeWrongAck:
			if prev == "" || prev == chunk {
				prev = "not-" + chunk
			}
			if !s.ack(c, prev) {
				return
			}
		case modeLateAck:
			time.Sleep(s.lateBy) // the behaviour under test is lateness itself
			if !s.ack(c, chunk) {
				return
			}
		}
	}
}

func (s *fwdServer) ack(c net.Conn, chunk string) bool {
	resp := fluent.AckResp{Ack: chunk}
	b, err := resp.MarshalMsg(nil)
	if err != nil {
		s.t.Errorf("fwdServer: marshal ack: %v", err)
		return false
	}
	_, err = c.Write(b)
	return err == nil
}

// decodeMessage reads one Forward-mode message [tag, [[time, record]...], option].
func decodeMessage(rd *msgp.Reader) ([]fwdEvent, string, error) {
	n, err := rd.ReadArrayHeader()
	if err != nil {
		return nil, "", err
	}
	if n != 2 && n != 3 {
		return nil, "", fmt.Errorf("message has %d elements, want 2 or 3", n)
	}
	tag, err := rd.ReadString()
	if err != nil {
		return nil, "", fmt.Errorf("tag: %w", err)
	}
	ne, err := rd.ReadArrayHeader()
	if err != nil {
		return nil, "", fmt.Errorf("entries (only Forward mode is decoded): %w", err)
	}
	evs := make([]fwdEvent, 0, ne)
	for range ne {
		if k, err := rd.ReadArrayHeader(); err != nil || k != 2 {
			return nil, "", fmt.Errorf("entry header %d: %w", k, err)
		}
		var et fluent.EventTime
		if err := rd.ReadExtension(&et); err != nil {
			return nil, "", fmt.Errorf("entry time (EventTime expected): %w", err)
		}
		rec := map[string]any{}
		if err := rd.ReadMapStrIntf(rec); err != nil {
			return nil, "", fmt.Errorf("entry record: %w", err)
		}
		evs = append(evs, fwdEvent{tag: tag, time: time.Time(et), record: rec})
	}
	var chunk string
	if n == 3 {
		opt := map[string]any{}
		if err := rd.ReadMapStrIntf(opt); err != nil {
			return nil, "", fmt.Errorf("option: %w", err)
		}
		if size, ok := opt["size"]; ok && fmt.Sprint(size) != fmt.Sprint(ne) {
			return nil, "", fmt.Errorf("option size %v, entries %d", size, ne)
		}
		chunk, _ = opt["chunk"].(string)
	}
	for i := range evs {
		evs[i].chunk = chunk
	}
	return evs, chunk, nil
}

// snapshot returns a copy of the stored events and counters.
func (s *fwdServer) snapshot() (events []fwdEvent, messages, unacked, acked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]fwdEvent(nil), s.events...), s.messages, s.unacked, s.acked
}

func sha512hex(parts ...[]byte) string {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// handshake plays the server's side: HELO, check the PING's digests, PONG.
// It reports whether the client may go on.
func (s *fwdServer) handshake(c net.Conn, rd *msgp.Reader, sec *fwdSecurity) bool {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	var authSalt []byte
	if sec.users != nil {
		authSalt = make([]byte, 16)
		_, _ = rand.Read(authSalt)
	}
	b := msgp.AppendArrayHeader(nil, 2)
	b = msgp.AppendString(b, "HELO")
	b = msgp.AppendMapHeader(b, 3)
	b = msgp.AppendString(b, "nonce")
	b = msgp.AppendBytes(b, nonce)
	b = msgp.AppendString(b, "auth")
	b = msgp.AppendBytes(b, authSalt)
	b = msgp.AppendString(b, "keepalive")
	b = msgp.AppendBool(b, true)
	if _, err := c.Write(b); err != nil {
		return false
	}
	var ping []any
	if n, err := rd.ReadArrayHeader(); err != nil || n != 6 {
		s.t.Logf("fwdServer: PING header: %d, %v", n, err)
		return false
	}
	for range 6 {
		v, err := rd.ReadIntf()
		if err != nil {
			s.t.Logf("fwdServer: PING: %v", err)
			return false
		}
		ping = append(ping, v)
	}
	str := func(v any) []byte {
		switch x := v.(type) {
		case string:
			return []byte(x)
		case []byte:
			return x
		}
		return nil
	}
	kind, hostname, salt, dig, user, passDig := str(ping[0]), str(ping[1]), str(ping[2]), str(ping[3]), str(ping[4]), str(ping[5])
	reason := ""
	switch {
	case string(kind) != "PING":
		reason = "not a PING"
	case string(dig) != sha512hex(salt, hostname, nonce, []byte(sec.sharedKey)):
		reason = "shared_key mismatch"
	case sec.users != nil && string(passDig) != sha512hex(authSalt, user, []byte(sec.users[string(user)])):
		reason = "username/password mismatch"
	}
	key := sec.sharedKey
	if sec.pongKey != "" {
		key = sec.pongKey
	}
	b = msgp.AppendArrayHeader(nil, 5)
	b = msgp.AppendString(b, "PONG")
	b = msgp.AppendBool(b, reason == "")
	b = msgp.AppendString(b, reason)
	b = msgp.AppendString(b, sec.hostname)
	b = msgp.AppendString(b, sha512hex(salt, []byte(sec.hostname), nonce, []byte(key)))
	s.mu.Lock()
	s.pings = append(s.pings, string(hostname))
	if reason != "" {
		s.rejected = append(s.rejected, reason)
	}
	s.mu.Unlock()
	_, err := c.Write(b)
	return err == nil && reason == ""
}
