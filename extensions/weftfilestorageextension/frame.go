package weftfilestorageextension

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// On-disk format of a client's log: a sequence of frames, one per write
// (Set, Delete or Batch), appended at the end. Each frame is
//
//	header    28 bytes, little endian:
//	          magic u32 | dirLen u32 | valLen u32 | valCRC u32 | cumSet u64 | hdrCRC u32
//	directory dirLen bytes: per operation
//	          kind u8 | keyLen uvarint | key | records uvarint | then
//	          valLen uvarint (set), or nothing (delete), or (link) the
//	          location of a value stored by an earlier frame: frameValOff,
//	          frameValLen, valCRC, valOff, valLen, all uvarint
//	values    valLen bytes: the sets' values, in directory order
//
// hdrCRC is the CRC32C of the header's first 24 bytes and the directory;
// valCRC is the CRC32C of the values. The directory (keys and record
// counts) is thus checked apart from the values: when only values are
// damaged — most of a frame's bytes — the keys and the records lost are
// still known exactly. cumSet is the number of records set by all frames
// of the file up to and including this one; it bounds what a frame whose
// header is unreadable held. Bytes after the last frame are zero
// (preallocated) or garbage left by a torn write.
const (
	frameMagic  = 0x31534657 // "WFS1"
	headerSize  = 28
	maxDirLen   = 16 << 20
	maxValLen   = 1 << 30
	opKindSet   = 1
	opKindDelet = 2
	// opKindLink sets a key to a value an earlier frame of the file already
	// holds (a deleted value written again, as the persistent queue does at
	// start for batches that were in flight): no value bytes are written,
	// so it fits in the reserve when the disk is full.
	opKindLink = 3
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// dirEntry is one operation of a frame's directory.
type dirEntry struct {
	kind    byte
	key     string
	records int64
	valOff  int64 // offset of the value within the frame's values
	valLen  int64
	link    entry // for opKindLink: where the value is
}

// frameHeader is a decoded header.
type frameHeader struct {
	dirLen, valLen uint32
	valCRC         uint32
	cumSet         uint64
	hdrCRC         uint32
}

func decodeHeader(b []byte) (frameHeader, bool) {
	if len(b) < headerSize || binary.LittleEndian.Uint32(b) != frameMagic {
		return frameHeader{}, false
	}
	h := frameHeader{
		dirLen: binary.LittleEndian.Uint32(b[4:]),
		valLen: binary.LittleEndian.Uint32(b[8:]),
		valCRC: binary.LittleEndian.Uint32(b[12:]),
		cumSet: binary.LittleEndian.Uint64(b[16:]),
		hdrCRC: binary.LittleEndian.Uint32(b[24:]),
	}
	return h, h.dirLen <= maxDirLen && h.valLen <= maxValLen
}

// headerOK checks hdrCRC over the header's first 24 bytes and the directory.
func headerOK(hdr []byte, h frameHeader, dir []byte) bool {
	crc := crc32.Update(crc32.Checksum(hdr[:24], crcTable), crcTable, dir)
	return crc == h.hdrCRC
}

// op is one write of a frame: a set (value != nil or isSet) or a delete.
type op struct {
	kind    byte
	key     string
	value   []byte
	records int64
	link    entry // for opKindLink
}

// appendFrame encodes ops as one frame at the end of dst.
func appendFrame(dst []byte, ops []op, cumSet uint64) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	dirStart := len(dst)
	valLen := 0
	for i := range ops {
		o := &ops[i]
		dst = append(dst, o.kind)
		dst = binary.AppendUvarint(dst, uint64(len(o.key)))
		dst = append(dst, o.key...)
		dst = binary.AppendUvarint(dst, uint64(o.records))
		switch o.kind {
		case opKindSet:
			dst = binary.AppendUvarint(dst, uint64(len(o.value)))
			valLen += len(o.value)
		case opKindLink:
			l := &o.link
			for _, v := range [...]uint64{uint64(l.frameValOff), uint64(l.frameValLen), uint64(l.valCRC), uint64(l.valOff), uint64(l.valLen)} {
				dst = binary.AppendUvarint(dst, v)
			}
		}
	}
	dirEnd := len(dst)
	for i := range ops {
		if ops[i].kind == opKindSet {
			dst = append(dst, ops[i].value...)
		}
	}
	h := dst[start : start+headerSize]
	binary.LittleEndian.PutUint32(h, frameMagic)
	binary.LittleEndian.PutUint32(h[4:], uint32(dirEnd-dirStart))
	binary.LittleEndian.PutUint32(h[8:], uint32(valLen))
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(dst[dirEnd:], crcTable))
	binary.LittleEndian.PutUint64(h[16:], cumSet)
	crc := crc32.Update(crc32.Checksum(h[:24], crcTable), crcTable, dst[dirStart:dirEnd])
	binary.LittleEndian.PutUint32(h[24:], crc)
	return dst
}

var errBadDirectory = errors.New("malformed frame directory")

// parseDirectory decodes a directory whose CRC already matched; valLen is
// the frame's values length, which the entries must add up to.
func parseDirectory(dir []byte, valLen uint32) ([]dirEntry, error) {
	var out []dirEntry
	var valOff int64
	for len(dir) > 0 {
		kind := dir[0]
		dir = dir[1:]
		if kind != opKindSet && kind != opKindDelet && kind != opKindLink {
			return nil, fmt.Errorf("%w: op kind %d", errBadDirectory, kind)
		}
		kl, n := binary.Uvarint(dir)
		if n <= 0 || kl > uint64(len(dir)-n) {
			return nil, fmt.Errorf("%w: key length", errBadDirectory)
		}
		key := string(dir[n : n+int(kl)])
		dir = dir[n+int(kl):]
		rec, n := binary.Uvarint(dir)
		if n <= 0 || rec > 1<<40 {
			return nil, fmt.Errorf("%w: records", errBadDirectory)
		}
		dir = dir[n:]
		e := dirEntry{kind: kind, key: key, records: int64(rec)}
		if kind == opKindSet {
			vl, n := binary.Uvarint(dir)
			if n <= 0 || vl > uint64(valLen)-uint64(valOff) {
				return nil, fmt.Errorf("%w: value length", errBadDirectory)
			}
			dir = dir[n:]
			e.valOff, e.valLen = valOff, int64(vl)
			valOff += int64(vl)
		}
		if kind == opKindLink {
			var v [5]uint64
			for i := range v {
				x, n := binary.Uvarint(dir)
				if n <= 0 || x > 1<<50 {
					return nil, fmt.Errorf("%w: link", errBadDirectory)
				}
				v[i], dir = x, dir[n:]
			}
			if v[2] > 0xffffffff || v[3]+v[4] > v[1] {
				return nil, fmt.Errorf("%w: link", errBadDirectory)
			}
			e.link = entry{frameValOff: int64(v[0]), frameValLen: int64(v[1]), valCRC: uint32(v[2]), valOff: int64(v[3]), valLen: int64(v[4]), records: e.records}
		}
		out = append(out, e)
	}
	if valOff != int64(valLen) {
		return nil, fmt.Errorf("%w: values add up to %d, header says %d", errBadDirectory, valOff, valLen)
	}
	return out, nil
}
