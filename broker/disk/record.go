package disk

import (
	"encoding/binary"
	"hash/crc32"
)

// Every record, in segments, ack logs and the cursor snapshot, is framed as
//
//	u32 length of body (little endian) | u32 CRC32C of body | body
//
// A data record's body is
//
//	u8 kind | u64 seq | i64 enqueue time (Unix ns) | payload
//
// where kind 1 (inline) has the message encoding (broker.AppendMessage) as
// payload and kind 2 (blob) has u32 CRC32C of the blob | u64 blob size |
// blob file name, the blob holding the message encoding.
const (
	frameHeader = 8
	dataHeader  = frameHeader + 1 + 8 + 8

	kindInline = 1
	kindBlob   = 2

	// maxBody bounds a record body: a length above it is corruption.
	maxBody = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// beginFrame appends room for a frame header and returns the buffer and the
// frame's start.
func beginFrame(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0, 0, 0, 0, 0), len(dst)
}

// endFrame fills in the header of the frame that starts at start.
func endFrame(b []byte, start int) {
	body := b[start+frameHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc(body))
}

// frameAt checks the frame at the start of b, which holds avail bytes of
// file from there. It returns the body and the frame's total length, or
// ok=false when the frame is incomplete or fails its checksum.
func frameAt(b []byte) (body []byte, n int, ok bool) {
	if len(b) < frameHeader {
		return nil, 0, false
	}
	l := binary.LittleEndian.Uint32(b)
	if l == 0 || l > maxBody || int(l) > len(b)-frameHeader {
		return nil, 0, false
	}
	body = b[frameHeader : frameHeader+int(l)]
	if binary.LittleEndian.Uint32(b[4:]) != crc(body) {
		return nil, 0, false
	}
	return body, frameHeader + int(l), true
}

// frameLen returns the length a frame header at the start of b announces,
// or 0 when it is not plausible.
func frameLen(b []byte) int {
	if len(b) < frameHeader {
		return 0
	}
	l := binary.LittleEndian.Uint32(b)
	if l == 0 || l > maxBody {
		return 0
	}
	return frameHeader + int(l)
}

// dataRecord is the decoded header of a data record.
type dataRecord struct {
	kind    byte
	seq     uint64
	at      int64
	payload []byte
}

func parseData(body []byte) (dataRecord, bool) {
	if len(body) < dataHeader-frameHeader {
		return dataRecord{}, false
	}
	r := dataRecord{
		kind:    body[0],
		seq:     binary.LittleEndian.Uint64(body[1:]),
		at:      int64(binary.LittleEndian.Uint64(body[9:])),
		payload: body[17:],
	}
	if r.kind != kindInline && r.kind != kindBlob {
		return dataRecord{}, false
	}
	return r, true
}

// patchSeq writes seq into the data frame at b[0:] and seals its checksum.
func patchSeq(b []byte, seq uint64) {
	binary.LittleEndian.PutUint64(b[frameHeader+1:], seq)
	n := binary.LittleEndian.Uint32(b)
	binary.LittleEndian.PutUint32(b[4:], crc(b[frameHeader:frameHeader+int(n)]))
}

// blobRef is the payload of a blob record.
type blobRef struct {
	crc  uint32
	size int64
	name string
}

func parseBlobRef(p []byte) (blobRef, bool) {
	if len(p) < 13 {
		return blobRef{}, false
	}
	return blobRef{crc: binary.LittleEndian.Uint32(p), size: int64(binary.LittleEndian.Uint64(p[4:])), name: string(p[12:])}, true
}
