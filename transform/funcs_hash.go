package transform

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/google/uuid"
)

// Hashes and identifiers. Text arguments are hashed as their UTF-8 bytes;
// numbers and decimals as the text to_string gives them.

func init() {
	registerLib(
		libFunc{name: "sha256", params: []libParam{{"s", kStr}},
			doc: "sha256(s) → string: SHA-256 of s as 64 lowercase hex digits; nil gives nil",
			fn: func(a []any) (any, error) {
				b, ok, err := bytesOfArg(0, "s", a[0])
				if err != nil || !ok {
					return nil, err
				}
				sum := sha256.Sum256(b)
				return hex.EncodeToString(sum[:]), nil
			}},
		libFunc{name: "crc32", params: []libParam{{"s", kStr}},
			doc: "crc32(s) → int: CRC-32 (IEEE, as zip and gzip use) of s as a non-negative integer; nil gives nil",
			fn: func(a []any) (any, error) {
				b, ok, err := bytesOfArg(0, "s", a[0])
				if err != nil || !ok {
					return nil, err
				}
				return int64(crc32.ChecksumIEEE(b)), nil
			}},
		libFunc{name: "crc32_hex", params: []libParam{{"s", kStr}},
			doc: "crc32_hex(s) → string: CRC-32 (IEEE) of s as 8 lowercase hex digits; nil gives nil",
			fn: func(a []any) (any, error) {
				b, ok, err := bytesOfArg(0, "s", a[0])
				if err != nil || !ok {
					return nil, err
				}
				return fmt.Sprintf("%08x", crc32.ChecksumIEEE(b)), nil
			}},
		libFunc{name: "uuid", out: stringType,
			doc: "uuid() → string: a random (version 4) UUID, different on every call, so not stable across a replay; prefer uuid_v5 for IDs",
			fn: func([]any) (any, error) {
				u, err := uuid.NewRandom()
				if err != nil {
					return nil, err
				}
				return u.String(), nil
			}},
		libFunc{name: "uuid_v5", params: []libParam{{"namespace", kStr}, {"name", kStr}},
			doc: "uuid_v5(namespace, name) → string: the name-based (SHA-1, version 5) UUID of name in namespace, a UUID or one of dns, url, oid, x500; the same inputs always give the same UUID; nil name gives nil",
			fn:  uuidV5},
	)
}

var uuidNamespaces = map[string]uuid.UUID{
	"dns":  uuid.NameSpaceDNS,
	"url":  uuid.NameSpaceURL,
	"oid":  uuid.NameSpaceOID,
	"x500": uuid.NameSpaceX500,
}

func uuidV5(a []any) (any, error) {
	ns, ok, err := textOf(0, "namespace", a[0])
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, argError(0, "namespace", "a UUID or one of dns, url, oid, x500", nil)
	}
	space, known := uuidNamespaces[strings.ToLower(ns)]
	if !known {
		space, err = uuid.Parse(ns)
		if err != nil {
			return nil, argError(0, "namespace", "a UUID or one of dns, url, oid, x500", a[0])
		}
	}
	name, ok, err := bytesOfArg(1, "name", a[1])
	if err != nil || !ok {
		return nil, err
	}
	return uuid.NewSHA1(space, name).String(), nil
}

func bytesOfArg(i int, pname string, v any) ([]byte, bool, error) {
	if b, ok := v.([]byte); ok {
		return b, true, nil
	}
	s, ok, err := textOf(i, pname, v)
	return []byte(s), ok, err
}
