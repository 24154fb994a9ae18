package sftp

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// TestPipe streams random data through a small pipe with random write and
// read sizes, by Read and by WriteTo, and checks it arrives whole.
func TestPipe(t *testing.T) {
	data := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.IntN(256))
	}
	for _, useWriteTo := range []bool{false, true} {
		p := newPipe(4096)
		go func() {
			rest := data
			for len(rest) > 0 {
				n := min(len(rest), 1+rng.IntN(10000))
				if _, err := p.Write(rest[:n]); err != nil {
					p.closeWrite(err)
					return
				}
				rest = rest[n:]
			}
			p.closeWrite(io.EOF)
		}()
		var got bytes.Buffer
		var err error
		if useWriteTo {
			_, err = p.WriteTo(&got)
		} else {
			buf := make([]byte, 777)
			for {
				n, rerr := p.Read(buf)
				got.Write(buf[:n])
				if rerr != nil {
					if rerr != io.EOF {
						err = rerr
					}
					break
				}
			}
		}
		if err != nil || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("WriteTo=%v: %d bytes arrived (err %v), want the %d sent", useWriteTo, got.Len(), err, len(data))
		}
	}
}

func TestPipeBoundsAndClose(t *testing.T) {
	p := newPipe(10)
	wrote := make(chan error, 1)
	go func() {
		_, err := p.Write(make([]byte, 25))
		wrote <- err
	}()
	select {
	case err := <-wrote:
		t.Fatalf("a write of 25 bytes into a pipe of 10 returned (%v) with nobody reading", err)
	case <-time.After(50 * time.Millisecond):
	}
	p.closeRead()
	if err := <-wrote; !errors.Is(err, errReaderGone) {
		t.Fatalf("blocked write after closeRead: %v, want errReaderGone", err)
	}
	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read after closeRead: %v", err)
	}

	p = newPipe(10)
	boom := errors.New("boom")
	if _, err := p.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	p.closeWrite(boom)
	b, err := io.ReadAll(p)
	if string(b) != "abc" || !errors.Is(err, boom) {
		t.Fatalf("read %q, %v; want the buffered data, then the writer's error", b, err)
	}
}
