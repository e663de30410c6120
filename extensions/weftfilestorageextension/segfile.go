package weftfilestorageextension

import "os"

// segmentFile is the file a client's log lives in. It is an interface so
// that tests can make writes fail the way a full disk does.
type segmentFile interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	Truncate(size int64) error
	Sync() error
	Close() error
	Size() (int64, error)
}

// osFile is a segmentFile on the operating system's file system.
type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// openOSFile opens (creating) path for reading and writing.
func openOSFile(path string) (segmentFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}
