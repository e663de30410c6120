package weftpinsextension

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
)

// readKeys reads the keyring file: one key, raw (16, 24 or 32 bytes) or
// base64, or several base64 keys, one per line (the first encrypts).
func readKeys(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the gossip key: %w", err)
	}
	if k, ok := decodeKey(bytes.TrimSpace(b)); ok {
		return [][]byte{k}, nil
	}
	if validKeyLen(len(b)) {
		return [][]byte{b}, nil // raw bytes
	}
	var keys [][]byte
	for i, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		k, ok := decodeKey(line)
		if !ok {
			return nil, fmt.Errorf("%s: line %d: want an AES key of 16, 24 or 32 bytes, raw or base64 (e.g. `openssl rand -base64 32`)", path, i+1)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: empty; want an AES key of 16, 24 or 32 bytes, raw or base64", path)
	}
	return keys, nil
}

func decodeKey(s []byte) ([]byte, bool) {
	k := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(k, s)
	if err != nil || !validKeyLen(n) {
		return nil, false
	}
	return k[:n], true
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }
