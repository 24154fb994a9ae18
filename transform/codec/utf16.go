package codec

import (
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// utf16Reader decodes UTF-16 to UTF-8. Unlike x/text's decoder it turns
// every unpaired surrogate into its own U+FFFD, so that each decoded
// character stands for exactly two input bytes (four for a pair) and
// offsets can be counted from the decoded text (charset.rawLen).
type utf16Reader struct {
	r         io.Reader
	bigEndian bool
	raw       []byte
	n         int // bytes in raw
	out       []byte
	err       error
}

func newUTF16Reader(r io.Reader, bigEndian bool) *utf16Reader {
	return &utf16Reader{r: r, bigEndian: bigEndian, raw: make([]byte, 32<<10)}
}

func (u *utf16Reader) unit(i int) rune {
	if u.bigEndian {
		return rune(u.raw[i])<<8 | rune(u.raw[i+1])
	}
	return rune(u.raw[i+1])<<8 | rune(u.raw[i])
}

func (u *utf16Reader) Read(p []byte) (int, error) {
	for len(u.out) == 0 {
		if u.err != nil {
			return 0, u.err
		}
		m, err := u.r.Read(u.raw[u.n:])
		u.n += m
		u.err = err
		u.out = u.out[:0]
		i := 0
		for i+1 < u.n {
			c := u.unit(i)
			switch {
			case utf16.IsSurrogate(c) && c < 0xDC00: // high surrogate
				if i+3 >= u.n {
					if u.err == nil {
						goto more
					}
					c = utf8.RuneError
					i += 2
				} else if r := utf16.DecodeRune(c, u.unit(i+2)); r != utf8.RuneError {
					c = r
					i += 4
				} else {
					c = utf8.RuneError
					i += 2
				}
			case utf16.IsSurrogate(c):
				c = utf8.RuneError
				i += 2
			default:
				i += 2
			}
			u.out = utf8.AppendRune(u.out, c)
		}
		if u.err != nil && i < u.n {
			u.out = utf8.AppendRune(u.out, utf8.RuneError) // a lone last byte
			i = u.n
		}
	more:
		u.n = copy(u.raw, u.raw[i:u.n])
		if u.err == nil && m == 0 && len(u.out) == 0 {
			return 0, nil
		}
	}
	k := copy(p, u.out)
	u.out = u.out[k:]
	return k, nil
}
