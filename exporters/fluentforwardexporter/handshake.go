package fluentforwardexporter

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// The forward protocol v1 handshake, used when the server has a
// <security> section (shared_key, optionally user_auth):
//
//	server → HELO ["HELO", {"nonce": n, "auth": authSalt, "keepalive": bool}]
//	client → PING ["PING", self_hostname, salt, hex(sha512(salt+self_hostname+n+shared_key)),
//	               username, hex(sha512(authSalt+username+password))]
//	server → PONG ["PONG", ok, reason, server_hostname, hex(sha512(salt+server_hostname+n+shared_key))]
//
// The client checks the PONG digest too, so it knows the server holds the
// same key. Neither github.com/fluent/fluent-logger-golang nor the contrib
// fluentforward receiver implements it; it is written here with msgp.

// errHandshakeRejected marks a server's refusal (wrong key, user or password).
var errHandshakeRejected = errors.New("forward server rejected the handshake")

// helo is what the server's HELO carries.
type helo struct {
	nonce, authSalt []byte
}

// digest is hex(sha512(parts...)).
func digest(parts ...[]byte) string {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// handshake runs HELO/PING/PONG on a new connection within deadline.
func (c *client) handshake(cn *conn, deadline time.Time) error {
	if err := cn.nc.SetDeadline(deadline); err != nil {
		return err
	}
	defer func() { _ = cn.nc.SetDeadline(time.Time{}) }()
	h, err := readHELO(cn.rd)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("no HELO from the server within dial_timeout %s (is a shared_key configured on the server?): %w", c.cfg.DialTimeout, err)
		}
		return fmt.Errorf("read HELO: %w", err)
	}
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return err
	}
	key := []byte(string(c.cfg.SharedKey))
	self := []byte(c.cfg.SelfHostname)
	b := msgp.AppendArrayHeader(nil, 6)
	b = msgp.AppendString(b, "PING")
	b = msgp.AppendString(b, c.cfg.SelfHostname)
	b = msgp.AppendBytes(b, salt[:])
	b = msgp.AppendString(b, digest(salt[:], self, h.nonce, key))
	if len(h.authSalt) > 0 {
		b = msgp.AppendString(b, c.cfg.Username)
		b = msgp.AppendString(b, digest(h.authSalt, []byte(c.cfg.Username), []byte(string(c.cfg.Password))))
	} else {
		b = msgp.AppendString(b, "")
		b = msgp.AppendString(b, "")
	}
	if _, err := cn.nc.Write(b); err != nil {
		return fmt.Errorf("write PING: %w", err)
	}
	ok, reason, server, serverDigest, err := readPONG(cn.rd)
	if err != nil {
		return fmt.Errorf("read PONG: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w: %q (check shared_key, username and password)", errHandshakeRejected, reason)
	}
	if server == c.cfg.SelfHostname {
		return fmt.Errorf("server hostname %q equals self_hostname: a misconfiguration, or a reflected PING", server)
	}
	if serverDigest != digest(salt[:], []byte(server), h.nonce, key) {
		return errors.New("PONG digest does not match: the server does not hold the same shared_key")
	}
	return nil
}

// readHELO reads ["HELO", {options}].
func readHELO(rd *msgp.Reader) (helo, error) {
	var h helo
	n, err := rd.ReadArrayHeader()
	if err != nil {
		return h, err
	}
	if n != 2 {
		return h, fmt.Errorf("HELO has %d elements, want 2", n)
	}
	if kind, err := rd.ReadString(); err != nil || kind != "HELO" {
		return h, fmt.Errorf("expected HELO, got %q: %w", kind, err)
	}
	m, err := rd.ReadMapHeader()
	if err != nil {
		return h, fmt.Errorf("HELO options: %w", err)
	}
	for range m {
		k, err := rd.ReadString()
		if err != nil {
			return h, fmt.Errorf("HELO option key: %w", err)
		}
		switch k {
		case "nonce":
			h.nonce, err = readStrOrBin(rd)
		case "auth":
			h.authSalt, err = readStrOrBin(rd)
		default:
			err = rd.Skip()
		}
		if err != nil {
			return h, fmt.Errorf("HELO option %q: %w", k, err)
		}
	}
	if len(h.nonce) == 0 {
		return h, errors.New("HELO without a nonce")
	}
	return h, nil
}

// readPONG reads ["PONG", ok, reason, hostname, digest].
func readPONG(rd *msgp.Reader) (ok bool, reason, hostname, dig string, err error) {
	n, err := rd.ReadArrayHeader()
	if err != nil {
		return false, "", "", "", err
	}
	if n != 5 {
		return false, "", "", "", fmt.Errorf("PONG has %d elements, want 5", n)
	}
	if kind, err := rd.ReadString(); err != nil || kind != "PONG" {
		return false, "", "", "", fmt.Errorf("expected PONG, got %q: %w", kind, err)
	}
	if ok, err = rd.ReadBool(); err != nil {
		return false, "", "", "", err
	}
	var b []byte
	if b, err = readStrOrBin(rd); err != nil {
		return false, "", "", "", err
	}
	reason = string(b)
	if b, err = readStrOrBin(rd); err != nil {
		return false, "", "", "", err
	}
	hostname = string(b)
	if b, err = readStrOrBin(rd); err != nil {
		return false, "", "", "", err
	}
	return ok, reason, hostname, string(b), nil
}

// readStrOrBin reads a msgpack str or bin (Fluentd sends Ruby strings as either).
func readStrOrBin(rd *msgp.Reader) ([]byte, error) {
	t, err := rd.NextType()
	if err != nil {
		return nil, err
	}
	switch t {
	case msgp.StrType:
		s, err := rd.ReadString()
		return []byte(s), err
	case msgp.BinType:
		return rd.ReadBytes(nil)
	case msgp.NilType:
		return nil, rd.ReadNil()
	default:
		return nil, fmt.Errorf("want a string, got %s", t)
	}
}

// isHELO reports whether the next message is a HELO (a server that wants
// the handshake while none is configured) and consumes it if so.
func isHELO(rd *msgp.Reader) bool {
	if t, err := rd.NextType(); err != nil || t != msgp.ArrayType {
		return false
	}
	_, err := readHELO(rd)
	return err == nil
}
