package framing

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type step struct {
	rec    string
	err    string // substring of the error, "EOF" for io.EOF
	offset int64
	line   int64
}

func collect(t *testing.T, rd *Reader, want []step) {
	t.Helper()
	for i, w := range want {
		rec, err := rd.Next()
		if w.err != "" {
			if err == nil || !strings.Contains(err.Error(), w.err) {
				t.Fatalf("step %d: got %q, %v; want error %q", i, rec, err, w.err)
			}
		} else if err != nil || string(rec) != w.rec {
			t.Fatalf("step %d: got %q, %v; want %q", i, rec, err, w.rec)
		}
		if rd.Offset() != w.offset || rd.Line() != w.line {
			t.Fatalf("step %d: offset %d line %d, want %d %d", i, rd.Offset(), rd.Line(), w.offset, w.line)
		}
	}
}

func TestLines(t *testing.T) {
	for _, oneByte := range []bool{false, true} {
		var src io.Reader = strings.NewReader("ab\r\n\ncd\nlast")
		if oneByte {
			src = iotest.OneByteReader(src)
		}
		rd := NewReader(src, Options{Format: Lines, Newlines: []byte{'\n'}, StripCR: true, SkipEmpty: true})
		collect(t, rd, []step{
			{rec: "ab", offset: 4, line: 1},
			{rec: "cd", offset: 8, line: 3},
			{rec: "last", offset: 12, line: 4},
			{err: "EOF", offset: 12, line: 4},
		})
	}
}

func TestLinesTwoNewlines(t *testing.T) {
	rd := NewReader(strings.NewReader("A\x15B\x25C\x15"), Options{Format: Lines, Newlines: []byte{0x15, 0x25}})
	collect(t, rd, []step{
		{rec: "A", offset: 2, line: 1},
		{rec: "B", offset: 4, line: 2},
		{rec: "C", offset: 6, line: 3},
		{err: "EOF", offset: 6, line: 3},
	})
}

func TestLineTooLong(t *testing.T) {
	rd := NewReader(iotest.HalfReader(strings.NewReader(strings.Repeat("x", 100)+"\nok\n"+strings.Repeat("y", 50))),
		Options{Format: Lines, Newlines: []byte{'\n'}, MaxRecord: 10})
	collect(t, rd, []step{
		{err: "too long", offset: 101, line: 1},
		{rec: "ok", offset: 104, line: 2},
		{err: "too long", offset: 154, line: 3},
		{err: "EOF", offset: 154, line: 3},
	})
}

func TestFixed(t *testing.T) {
	rd := NewReader(iotest.OneByteReader(strings.NewReader("abcdefgh")), Options{Format: Fixed, Length: 3})
	collect(t, rd, []step{
		{rec: "abc", offset: 3},
		{rec: "def", offset: 6},
		{err: "want 3 bytes, got 2", offset: 8},
		{err: "EOF", offset: 8},
	})
}

func TestRDW(t *testing.T) {
	big := []byte{0, 7, 0, 0, 'a', 'b', 'c', 0, 4, 0, 0, 0, 6, 0, 0, 'x'}
	rd := NewReader(bytes.NewReader(big), Options{Format: RDW})
	collect(t, rd, []step{
		{rec: "abc", offset: 7},
		{rec: "", offset: 11},
		{err: "want 6 bytes, got 5", offset: 16},
		{err: "EOF", offset: 16},
	})
	// Little-endian, both layouts.
	little := []byte{6, 0, 0, 0, 'h', 'i', 0, 0, 5, 0, 'z'}
	rd = NewReader(bytes.NewReader(little), Options{Format: RDW, LittleEndian: true})
	collect(t, rd, []step{{rec: "hi", offset: 6}, {rec: "z", offset: 11}, {err: "EOF", offset: 11}})

	var ce *CorruptRDWError
	_, err := NewReader(bytes.NewReader([]byte{0, 2, 0, 0}), Options{Format: RDW}).Next()
	if !errors.As(err, &ce) {
		t.Errorf("short length: %v", err)
	}
	_, err = NewReader(bytes.NewReader([]byte{0, 6, 1, 2}), Options{Format: RDW}).Next()
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "00 06 01 02") {
		t.Errorf("segment bytes set: %v", err)
	}
}

func TestWindow(t *testing.T) {
	rd := NewReader(iotest.OneByteReader(strings.NewReader("3abc1x")), Options{Format: Fixed})
	for _, want := range []string{"3abc", "1x"} {
		w, err := rd.Window(10)
		if err != nil || !strings.HasPrefix(string(w), want) {
			t.Fatalf("window %q, %v; want prefix %q", w, err, want)
		}
		rd.Consume(int(w[0]-'0') + 1)
	}
	if _, err := rd.Window(10); err != io.EOF {
		t.Fatalf("got %v, want EOF", err)
	}
	if rd.Offset() != 6 || rd.Start() != 6 {
		t.Errorf("offset %d start %d", rd.Offset(), rd.Start())
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	rd := NewReader(iotest.ErrReader(boom), Options{Format: Lines, Newlines: []byte{'\n'}})
	if _, err := rd.Next(); !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
}

func TestWriter(t *testing.T) {
	tests := []struct {
		opts Options
		want []byte
	}{
		{Options{Format: Lines}, []byte("ab\r\nc\r\n")},
		{Options{Format: Fixed}, []byte("abc")},
		{Options{Format: RDW}, []byte{0, 6, 0, 0, 'a', 'b', 0, 5, 0, 0, 'c'}},
		{Options{Format: RDW, LittleEndian: true}, []byte{6, 0, 0, 0, 'a', 'b', 5, 0, 0, 0, 'c'}},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		w := NewWriter(&out, tc.opts, []byte("\r\n"))
		for _, r := range []string{"ab", "c"} {
			if err := w.Write([]byte(r)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), tc.want) {
			t.Errorf("format %v: got % X, want % X", tc.opts.Format, out.Bytes(), tc.want)
		}
	}
	w := NewWriter(io.Discard, Options{Format: RDW}, nil)
	if err := w.Write(make([]byte, MaxRDWData+1)); err == nil {
		t.Error("oversized RDW record accepted")
	}
}
