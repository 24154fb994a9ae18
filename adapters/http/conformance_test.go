package httpadapter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/adapters/adaptertest"
	_ "github.com/sluicehq/sluice/adapters/http"
)

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// poster is a client that POSTs records and retries each, with the same
// Idempotency-Key, until it is answered 202: what a well-behaved producer
// does. Its goroutines end with the test.
type poster struct {
	t      *testing.T
	url    string
	ctx    context.Context
	wg     sync.WaitGroup
	client *http.Client
}

func newPoster(t *testing.T, url string) *poster {
	ctx, cancel := context.WithCancel(context.Background())
	p := &poster{t: t, url: url, ctx: ctx, client: &http.Client{Timeout: 5 * time.Second}}
	t.Cleanup(func() {
		cancel()
		p.wg.Wait()
	})
	return p
}

func (p *poster) post(key string, rec map[string]any) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		body, _ := json.Marshal(rec)
		for p.ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(p.ctx, http.MethodPost, p.url, bytes.NewReader(body))
			req.Header.Set("Idempotency-Key", key)
			resp, err := p.client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					return
				}
			}
			select {
			case <-p.ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
}

// The source conformance suite: a nacked batch is answered 503, the client
// retries with the same Idempotency-Key, and the source emits the same IDs.
func TestConformanceSource(t *testing.T) {
	adaptertest.RunSource(t, adaptertest.SourceCase{
		Setup: func(t *testing.T) *adaptertest.SourcePeer {
			addr := freeAddr(t)
			p := newPoster(t, "http://"+addr+"/in")
			seq := 0
			return &adaptertest.SourcePeer{
				New: func(t *testing.T, state adapters.State) adapters.Source {
					return adaptertest.NewSource(t, "http", map[string]any{"address": addr, "path": "/in", "enqueue_timeout": "2s"}, state)
				},
				Produce: func(t *testing.T, n int) {
					for range n {
						seq++
						p.post(fmt.Sprintf("key-%d", seq), map[string]any{"n": seq})
					}
				},
			}
		},
	})
}

// recorder is an HTTP server that keeps the records POSTed to it and
// refuses those with "reject": true.
type recorder struct {
	mu   sync.Mutex
	recs []adapters.Record
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var rec map[string]any
	if err := json.NewDecoder(r.Body).Decode(&rec); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if rec["reject"] == true {
		http.Error(w, "rejected: reject is true", http.StatusUnprocessableEntity)
		return
	}
	rc.mu.Lock()
	rc.recs = append(rc.recs, rec)
	rc.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (rc *recorder) records() []adapters.Record {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]adapters.Record(nil), rc.recs...)
}

// serveAt serves h at addr until the returned stop is called.
func serveAt(t *testing.T, addr string, h http.Handler) (stop func()) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the address may still be held briefly after a stop
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	var once sync.Once
	stop = func() { once.Do(srv.Close) }
	t.Cleanup(stop)
	return stop
}

func TestConformanceSink(t *testing.T) {
	adaptertest.RunSink(t, adaptertest.SinkCase{
		Setup: func(t *testing.T) *adaptertest.SinkPeer {
			addr := freeAddr(t)
			rc := &recorder{}
			stop := serveAt(t, addr, rc)
			return &adaptertest.SinkPeer{
				New: func(t *testing.T) adapters.Sink {
					return adaptertest.NewSink(t, "http", map[string]any{"url": "http://" + addr + "/records/{{ record.n }}", "timeout": "2s"})
				},
				Received: func(t *testing.T) []adapters.Record { return rc.records() },
				Reject: func(i int) adapters.Message {
					m := adaptertest.DefaultMessage(i)
					m.Record["reject"] = true
					return m
				},
				Restart: func(t *testing.T) {
					stop()
					stop = serveAt(t, addr, rc)
				},
			}
		},
	})
}
