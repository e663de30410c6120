package simnode

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// criMaxLine is the size at which the container runtime splits a log line
// into partial (P) records, as containerd and CRI-O do (16 KiB).
const criMaxLine = 16 * 1024

// keepRotated is how many rotated files the kubelet keeps beside the live one
// (containerLogMaxFiles 5 includes the live file).
const keepRotated = 4

// logFile is one container's log, written in the CRI format the kubelet
// reads: "<RFC3339Nano> <stream> <P|F> <message>\n".
type logFile struct {
	path string
	f    *os.File
	w    *bufio.Writer
	size int64
	buf  []byte
}

func openLogFile(path string) (*logFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stat log file: %w", err)
	}
	return &logFile{path: path, f: f, w: bufio.NewWriterSize(f, 64*1024), size: st.Size()}, nil
}

// write appends one message as one or more CRI records (split at
// criMaxLine, all but the last flagged P). It returns the number of records.
func (l *logFile) write(ts time.Time, stream string, msg []byte) int {
	records := 0
	for {
		tag := byte('F')
		chunk := msg
		if len(chunk) > criMaxLine {
			tag, chunk = 'P', chunk[:criMaxLine]
		}
		b := ts.UTC().AppendFormat(l.buf[:0], time.RFC3339Nano)
		b = append(b, ' ')
		b = append(b, stream...)
		b = append(b, ' ', tag, ' ')
		b = append(b, chunk...)
		b = append(b, '\n')
		l.buf = b
		n, _ := l.w.Write(b) // a write error is kept by bufio and returned by flush
		l.size += int64(n)
		records++
		msg = msg[len(chunk):]
		if tag == 'F' {
			return records
		}
	}
}

func (l *logFile) flush() error {
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", l.path, err)
	}
	return nil
}

// rotate does what the kubelet does when a log passes its size limit: rename
// the live file to <name>.<timestamp>, start a new one, and remove the oldest
// rotated files beyond keepRotated. (The kubelet also gzips older files; the
// simulation leaves them uncompressed.)
func (l *logFile) rotate(now time.Time) error {
	if err := l.flush(); err != nil {
		return err
	}
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", l.path, err)
	}
	rotated := l.path + "." + now.UTC().Format("20060102-150405")
	for i := 1; fileExists(rotated); i++ {
		rotated = fmt.Sprintf("%s.%s.%d", l.path, now.UTC().Format("20060102-150405"), i)
	}
	if err := os.Rename(l.path, rotated); err != nil {
		return fmt.Errorf("rotate %s: %w", l.path, err)
	}
	nl, err := openLogFile(l.path)
	if err != nil {
		return err
	}
	l.f, l.w, l.size = nl.f, nl.w, 0
	return pruneRotated(l.path)
}

func pruneRotated(path string) error {
	old, err := filepath.Glob(path + ".*")
	if err != nil {
		return err
	}
	// Timestamps sort lexically; a ".N" suffix sorts after its base name.
	sort.Slice(old, func(i, j int) bool { return strings.Compare(old[i], old[j]) < 0 })
	for len(old) > keepRotated {
		if err := os.Remove(old[0]); err != nil {
			return fmt.Errorf("remove rotated log: %w", err)
		}
		old = old[1:]
	}
	return nil
}

func (l *logFile) close() error {
	err := l.flush()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
