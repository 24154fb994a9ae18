package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/disk/internal/vfs"
)

// payloadFor is the body every test message must carry: a corrupt record
// shows as a mismatch.
func payloadFor(id string, size int) []byte {
	seed := uint64(len(id))
	for _, c := range id {
		seed = seed*31 + uint64(c)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return b
}

func checkBody(m adapters.Message) error {
	n, _ := strconv.Atoi(m.Meta["size"])
	if !bytes.Equal(m.Raw, payloadFor(m.ID, n)) {
		return fmt.Errorf("message %s: corrupt body (%d bytes)", m.ID, len(m.Raw))
	}
	return nil
}

// crashModel remembers what the broker acknowledged across crashes.
type crashModel struct {
	mu       sync.Mutex
	enqueued map[string]bool // acknowledged enqueues
	acked    map[string]bool // acknowledged acks
	tried    map[string]bool // acks attempted: they may have taken effect
	next     int
}

var crashOpts = broker.Options{
	SegmentBytes:      2048, // many segments: rolls and retention
	InlineMax:         600,  // some messages go to blobs
	MaxAttempts:       -1,
	VisibilityTimeout: time.Hour,
}

// runIncarnation opens the broker on a process view of m, plans a crash
// after a random number of file-system calls, and runs a producer and a
// consumer until the crash stops them.
func runIncarnation(t *testing.T, m *vfs.Mem, r *rand.Rand, model *crashModel) {
	fsys := m.Proc()
	b, err := Open("/data", Options{FS: fsys, Logger: quietLogger(), OnFatal: func(error) {}})
	if err != nil {
		t.Fatalf("open after crash %d: %v", m.Crashed(), err)
	}
	defer b.Close()
	q, err := b.Open("crash/q", crashOpts)
	if err != nil {
		t.Fatalf("open queue after crash %d: %v", m.Crashed(), err)
	}
	c, err := q.Consumer("g")
	if err != nil {
		t.Fatalf("consumer after crash %d: %v", m.Crashed(), err)
	}
	crashes := m.Crashed()
	m.CrashAfter(1 + r.IntN(120))
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(2)
	produced := make(chan struct{})
	batches := make([][]adapters.Message, 0, 64)
	for len(batches) < cap(batches) {
		n := 1 + r.IntN(4)
		batch := make([]adapters.Message, n)
		model.mu.Lock()
		for i := range batch {
			id := "c" + strconv.Itoa(model.next)
			model.next++
			size := r.IntN(700)
			batch[i] = adapters.Message{ID: id, Raw: payloadFor(id, size), Meta: map[string]string{"size": strconv.Itoa(size)}}
		}
		model.mu.Unlock()
		batches = append(batches, batch)
	}
	go func() {
		defer wg.Done()
		defer close(produced)
		for _, batch := range batches {
			if err := q.Enqueue(ctx, batch); err != nil {
				return
			}
			model.mu.Lock()
			for _, m := range batch {
				model.enqueued[m.ID] = true
			}
			model.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for m.Crashed() == crashes {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
			ds, err := c.Receive(rctx, 1+r.IntN(8))
			cancel()
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) && !isClosed(produced) {
					continue
				}
				return
			}
			model.mu.Lock()
			for _, d := range ds {
				if err := checkBody(d.Message); err != nil {
					t.Errorf("after crash %d: %v", crashes, err)
				}
				if model.acked[d.Message.ID] {
					t.Errorf("after crash %d: %s was acked and is delivered again", crashes, d.Message.ID)
				}
				model.tried[d.Message.ID] = true
			}
			model.mu.Unlock()
			if err := c.Ack(ctx, ds); err != nil {
				return
			}
			model.mu.Lock()
			for _, d := range ds {
				model.acked[d.Message.ID] = true
			}
			model.mu.Unlock()
		}
	}()
	wg.Wait()
	if m.Crashed() == crashes {
		m.Crash() // the producer finished first
	}
}

// TestCrashConsistency crashes the in-memory file system at random calls,
// over and over, and checks after every restart that each acknowledged
// enqueue is there, no record is corrupt, and no acked message comes back.
func TestCrashConsistency(t *testing.T) {
	iterations := 1500
	if testing.Short() || raceEnabled {
		iterations = 200
	}
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			m := vfs.NewMem(seed)
			r := rand.New(rand.NewPCG(seed, 99))
			model := &crashModel{enqueued: map[string]bool{}, acked: map[string]bool{}, tried: map[string]bool{}}
			for i := 0; i < iterations/2 && !t.Failed(); i++ {
				runIncarnation(t, m, r, model)
			}
			verifyAll(t, m.Proc(), model)
		})
	}
}

// verifyAll drains the queue and checks that every acknowledged enqueue
// was delivered, before or now.
func verifyAll(t *testing.T, fsys vfs.FS, model *crashModel) {
	t.Helper()
	b, err := Open("/data", Options{FS: fsys, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q, err := b.Open("crash/q", crashOpts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := q.Consumer("g")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got := map[string]bool{}
	for {
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		ds, err := c.Receive(rctx, 256)
		cancel()
		if err != nil {
			break
		}
		for _, d := range ds {
			if err := checkBody(d.Message); err != nil {
				t.Error(err)
			}
			if model.acked[d.Message.ID] {
				t.Errorf("%s was acked and is delivered again", d.Message.ID)
			}
			got[d.Message.ID] = true
		}
		if err := c.Ack(ctx, ds); err != nil {
			t.Fatal(err)
		}
	}
	lost := 0
	for id := range model.enqueued {
		if !model.tried[id] && !got[id] {
			lost++
			if lost < 10 {
				t.Errorf("acknowledged enqueue %s was lost", id)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d acknowledged messages lost", lost)
	}
	if len(model.enqueued) < 100 {
		t.Fatalf("the test enqueued only %d messages", len(model.enqueued))
	}
	t.Logf("%d messages acknowledged, %d acked before the end, %d drained at the end", len(model.enqueued), len(model.acked), len(got))
}
