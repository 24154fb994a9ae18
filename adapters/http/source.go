package httpadapter

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

// Metadata keys the source sets on every message.
const (
	// MetaRemote is the client's IP address.
	MetaRemote = "http.remote"
	// MetaIdempotencyKey is the request's Idempotency-Key header, when sent.
	MetaIdempotencyKey = "http.idempotency_key"
)

// sourceOptions is the decoded configuration of a source. It holds
// secrets: it is never formatted.
type sourceOptions struct {
	address, path, mode                                  string
	timeout, enqueueTimeout, linger, retryAfter, readTTL time.Duration
	codec                                                adapters.Codec // nil: codec none
	maxBody                                              int64
	batchSize, maxPending                                int
	certFile, keyFile, clientCAFile                      string
	token, tokenFile                                     string
	basic                                                bool
	basicUser, basicPassword, basicPasswordFile          string
	rate                                                 float64
	burst                                                int
	metaHeaders                                          []string
	files                                                files
}

// Source is the http source: an HTTP server whose requests become batches.
// It implements adapters.Source and adapters.HealthChecker.
type Source struct {
	o       sourceOptions
	res     adapters.Resources
	log     *slog.Logger
	reqs    chan *request
	closed  chan struct{}
	limiter *limiters // nil: unlimited
	next    *request  // a request that did not fit the last batch; Read's goroutine only

	closeOnce sync.Once
	mu        sync.Mutex // guards the fields below
	srv       *http.Server
	ln        net.Listener
	auth      authenticator
	closing   bool
}

var (
	_ adapters.Source        = (*Source)(nil)
	_ adapters.HealthChecker = (*Source)(nil)
)

func newSource(conf *adapters.Config, res adapters.Resources) (adapters.Source, error) {
	o := sourceOptions{
		address: conf.String("address"), path: conf.String("path"), mode: conf.String("mode"),
		timeout: conf.Duration("timeout"), enqueueTimeout: conf.Duration("enqueue_timeout"),
		linger: conf.Duration("linger"), retryAfter: conf.Duration("retry_after"), readTTL: conf.Duration("read_timeout"),
		codec: conf.Codec("codec"), maxBody: conf.Size("max_body_bytes"),
		batchSize: conf.Int("batch_size"), maxPending: conf.Int("max_pending"),
		certFile: conf.String("tls_cert_file"), keyFile: conf.String("tls_key_file"), clientCAFile: conf.String("tls_client_ca_file"),
		token: conf.String("bearer_token"), tokenFile: conf.String("bearer_token_file"),
		rate: conf.Float("rate_limit"), burst: conf.Int("rate_burst"),
		metaHeaders: conf.Strings("meta_headers"),
	}
	if ba := conf.Object("basic_auth"); ba != nil {
		o.basic = true
		o.basicUser, o.basicPassword, o.basicPasswordFile = ba.String("user"), ba.String("password"), ba.String("password_file")
	}
	if f := conf.File(); f != "" {
		o.files.baseDir = filepath.Dir(f)
	}
	log := res.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{o: o, res: res, log: log, reqs: make(chan *request, o.maxPending), closed: make(chan struct{})}
	if o.rate > 0 {
		burst := o.burst
		if burst <= 0 {
			burst = max(1, int(math.Ceil(o.rate)))
		}
		s.limiter = newLimiters(o.rate, burst)
	}
	return s, nil
}

// Connect reads the credentials and certificates and starts listening. It
// does nothing once listening, nor under `sluice run --once`, where a
// server has nothing available to read.
func (s *Source) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return adapters.ErrClosed
	}
	if s.srv != nil || s.res.Once {
		return nil
	}
	auth, err := s.loadAuth()
	if err != nil {
		return err
	}
	var tc *tls.Config
	if s.o.certFile != "" {
		cert, err := s.o.files.keyPair("tls_cert_file", s.o.certFile, s.o.keyFile)
		if err != nil {
			return err
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if s.o.clientCAFile != "" {
			pool, err := s.o.files.certPool("tls_client_ca_file", s.o.clientCAFile)
			if err != nil {
				return err
			}
			tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.o.address)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.o.address, err)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: min(s.o.readTTL, 10*time.Second),
		ReadTimeout:       s.o.readTTL,
		IdleTimeout:       2 * time.Minute,
		TLSConfig:         tc,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.srv, s.ln, s.auth = srv, ln, auth
	go func() {
		var err error
		if tc != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Error("http server stopped", "error", err)
		}
	}()
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	s.log.Info("listening", "url", scheme+"://"+ln.Addr().String()+s.o.path, "mode", s.o.mode)
	return nil
}

func (s *Source) loadAuth() (authenticator, error) {
	switch {
	case s.o.tokenFile != "":
		tok, err := s.o.files.secret("bearer_token_file", s.o.tokenFile)
		if err != nil {
			return nil, err
		}
		return bearerAuth("Bearer " + tok), nil
	case s.o.token != "":
		return bearerAuth("Bearer " + s.o.token), nil
	case s.o.basic:
		pw := s.o.basicPassword
		if s.o.basicPasswordFile != "" {
			var err error
			if pw, err = s.o.files.secret("basic_auth.password_file", s.o.basicPasswordFile); err != nil {
				return nil, err
			}
		}
		return basicAuth{user: s.o.basicUser, password: pw}, nil
	}
	return nil, nil
}

// Addr returns the address the source listens on, or nil before Connect.
func (s *Source) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Health reports whether the server listens.
func (s *Source) Health(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing:
		return adapters.ErrClosed
	case s.res.Once:
		return nil
	case s.srv == nil:
		return errors.New("not listening yet")
	}
	return nil
}

// Close stops listening at once. Requests whose messages the engine already
// took wait for their acknowledgement (the engine acks them while it
// drains) or their timeout; the others are answered 503. Handlers still
// running when their timeouts passed are cut off.
func (s *Source) Close(context.Context) error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.mu.Lock()
		s.closing = true
		srv, ln := s.srv, s.ln
		s.mu.Unlock()
		if srv == nil {
			return
		}
		srv.SetKeepAlivesEnabled(false)
		_ = ln.Close() // synchronously: a restarted source may bind the address again at once
		grace := max(s.o.timeout, s.o.enqueueTimeout) + time.Second
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		}()
	})
	return nil
}

// request is one HTTP request's messages on their way to the engine.
type request struct {
	msgs  []adapters.Message
	state atomic.Int32
	acked chan error // the batch's Ack; buffered
}

const (
	reqPending   int32 = iota // waiting for Read
	reqTaken                  // in a batch handed to the engine
	reqWithdrawn              // its handler gave up before Read took it
)

func (r *request) take() bool     { return r.state.CompareAndSwap(reqPending, reqTaken) }
func (r *request) withdraw() bool { return r.state.CompareAndSwap(reqPending, reqWithdrawn) }

// Read waits for a request, then takes every request already waiting, up
// to batch_size messages (and, with linger, those arriving within it), and
// returns their messages as one batch. A request is never split.
func (s *Source) Read(ctx context.Context) (adapters.Batch, error) {
	if s.res.Once {
		return adapters.Batch{}, adapters.ErrEndOfInput
	}
	select {
	case <-s.closed:
		return adapters.Batch{}, adapters.ErrClosed
	default:
	}
	var taken []*request
	n := 0
	add := func(r *request) {
		if r.take() { // else withdrawn: its handler answered already
			taken = append(taken, r)
			n += len(r.msgs)
		}
	}
	if r := s.next; r != nil {
		s.next = nil
		add(r)
	}
	for len(taken) == 0 {
		select {
		case r := <-s.reqs:
			add(r)
		case <-ctx.Done():
			return adapters.Batch{}, ctx.Err()
		case <-s.closed:
			return adapters.Batch{}, adapters.ErrClosed
		}
	}
	var linger <-chan time.Time
	if s.o.linger > 0 {
		t := time.NewTimer(s.o.linger)
		defer t.Stop()
		linger = t.C
	}
fill:
	for n < s.o.batchSize {
		var r *request
		if linger == nil {
			select {
			case r = <-s.reqs:
			default:
				break fill
			}
		} else {
			select {
			case r = <-s.reqs:
			case <-linger:
				break fill
			case <-ctx.Done():
				break fill
			case <-s.closed:
				break fill
			}
		}
		if n+len(r.msgs) > s.o.batchSize {
			s.next = r
			break
		}
		add(r)
	}
	msgs := make([]adapters.Message, 0, n)
	for _, r := range taken {
		msgs = append(msgs, r.msgs...)
	}
	return adapters.Batch{Messages: msgs, Ack: func(_ context.Context, err error) error {
		for _, r := range taken {
			r.acked <- err
		}
		return nil
	}}, nil
}

// ServeHTTP answers one request; see SourceSpec for the statuses.
func (s *Source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.URL.Path != s.o.path {
		s.fail(w, http.StatusNotFound, "no such path: POST to "+s.o.path)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		s.fail(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: POST or PUT")
		return
	}
	s.mu.Lock()
	auth, closing := s.auth, s.closing
	s.mu.Unlock()
	if auth != nil && !auth.allow(r) {
		w.Header().Set("WWW-Authenticate", auth.challenge())
		s.fail(w, http.StatusUnauthorized, "missing or wrong credentials")
		return
	}
	ip := clientIP(r)
	if s.limiter != nil && !s.limiter.allow(ip, start) {
		s.unavailable(w, http.StatusTooManyRequests, "rate limit exceeded")
		return
	}
	if closing {
		s.unavailable(w, http.StatusServiceUnavailable, "shutting down: not accepted")
		return
	}
	if bp := s.res.Backpressure; bp != nil && bp() {
		s.unavailable(w, http.StatusServiceUnavailable, "queues full: not accepted")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than max_body_bytes (%d bytes)", s.o.maxBody))
			return
		}
		s.fail(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	key := r.Header.Get("Idempotency-Key")
	meta := map[string]string{adapters.MetaSource: s.res.Name, MetaRemote: ip}
	if key != "" {
		meta[MetaIdempotencyKey] = key
	} else {
		key = randomID()
	}
	for _, h := range s.o.metaHeaders {
		if v := r.Header.Get(h); v != "" {
			meta["http."+strings.ToLower(h)] = v
		}
	}
	var set *adapters.ReplySet
	var corr string
	if s.o.mode == modeRequestReply {
		if s.res.Replies == nil {
			s.fail(w, http.StatusInternalServerError, "request_reply needs the engine's reply registry")
			return
		}
		corr = s.res.Replies.NewID()
		meta[adapters.MetaReplyTo] = corr
	}
	msgs, err := s.decode(body, key, meta, start)
	if err != nil {
		s.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	ids := make([]string, len(msgs))
	for i := range msgs {
		ids[i] = msgs[i].ID
	}
	if corr != "" {
		var cancel func()
		set, cancel = adapters.AwaitReplies(s.res.Replies, corr)
		defer cancel()
	}
	req := &request{msgs: msgs, acked: make(chan error, 1)}
	select {
	case s.reqs <- req:
	default:
		s.unavailable(w, http.StatusServiceUnavailable, fmt.Sprintf("%d requests already wait (max_pending): not accepted", s.o.maxPending))
		return
	}
	wait := s.o.enqueueTimeout
	if set != nil {
		wait = s.o.timeout
	}
	timer := time.NewTimer(wait - time.Since(start))
	defer timer.Stop()
	closed := s.closed
	for acked := false; !acked; {
		select {
		case err := <-req.acked:
			if err != nil {
				s.unavailable(w, http.StatusServiceUnavailable, "not enqueued: "+err.Error())
				return
			}
			acked = true
		case <-closed:
			closed = nil
			if req.withdraw() {
				s.unavailable(w, http.StatusServiceUnavailable, "shutting down: not accepted")
				return
			}
		case <-timer.C:
			if req.withdraw() {
				s.unavailable(w, http.StatusServiceUnavailable, "not enqueued within "+wait.String()+": not accepted")
				return
			}
			if set != nil {
				s.timedOut(w, corr, ids, set)
				return
			}
			s.unavailable(w, http.StatusServiceUnavailable, "not confirmed within enqueue_timeout ("+wait.String()+"): the messages may still be enqueued; retry with the same Idempotency-Key")
			return
		case <-r.Context().Done():
			if !req.withdraw() {
				s.log.Info("client gave up before its messages were enqueued; they are delivered anyway", "ids", len(ids), "remote", ip)
			}
			return
		}
	}
	if set == nil {
		writeJSON(w, http.StatusAccepted, map[string]any{"ids": ids})
		return
	}
	select {
	case <-set.Done():
	case <-timer.C:
		s.timedOut(w, corr, ids, set)
		return
	case <-r.Context().Done():
		s.log.Info("caller gave up waiting for the reply; its messages are still delivered or dead-lettered", "reply_to", corr, "remote", ip, "waited", time.Since(start).Round(time.Millisecond))
		return
	}
	replies := set.Replies()
	status := http.StatusOK
	for _, rep := range replies {
		switch rep.Status {
		case adapters.ReplyFailed:
			status = http.StatusBadGateway
		case adapters.ReplyRejected:
			if status == http.StatusOK {
				status = http.StatusUnprocessableEntity
			}
		}
	}
	writeJSON(w, status, replyBody{ID: corr, IDs: ids, Replies: replies})
}

// replyBody is the answer of a request/reply request.
type replyBody struct {
	ID      string           `json:"id"`
	IDs     []string         `json:"ids"`
	Replies []adapters.Reply `json:"replies"`
	Error   string           `json:"error,omitempty"`
}

func (s *Source) timedOut(w http.ResponseWriter, corr string, ids []string, set *adapters.ReplySet) {
	replies := set.Replies()
	if replies == nil {
		replies = []adapters.Reply{}
	}
	s.log.Warn("caller gave up: no complete reply within timeout; its messages are still delivered or dead-lettered",
		"reply_to", corr, "timeout", s.o.timeout, "replies", len(replies), "expected", set.Expected())
	writeJSON(w, http.StatusGatewayTimeout, replyBody{ID: corr, IDs: ids, Replies: replies,
		Error: "no complete reply within " + s.o.timeout.String() + "; the messages are still processed"})
}

// decode turns a body into messages sharing meta.
func (s *Source) decode(body []byte, key string, meta map[string]string, now time.Time) ([]adapters.Message, error) {
	idParts := []string{s.res.Pipeline, s.res.Name, key, ""}
	if s.o.codec == nil {
		if len(body) == 0 {
			return nil, errors.New("empty body")
		}
		idParts[3] = "0"
		return []adapters.Message{{ID: adapters.NewID(idParts...), Raw: body, Meta: meta, Time: now}}, nil
	}
	dec := s.o.codec.NewDecoder(bytes.NewReader(body))
	var msgs []adapters.Message
	for {
		rec, err := dec.Decode()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("malformed body: %w", err)
		}
		idParts[3] = strconv.Itoa(len(msgs))
		msgs = append(msgs, adapters.Message{ID: adapters.NewID(idParts...), Record: rec, Meta: meta, Time: now})
	}
	if len(msgs) == 0 {
		return nil, errors.New("the body holds no record")
	}
	return msgs, nil
}

// fail answers an error the client must fix.
func (s *Source) fail(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// unavailable answers an error the client should retry later.
func (s *Source) unavailable(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(s.o.retryAfter.Seconds()))))
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticator checks a request's credentials.
type authenticator interface {
	allow(r *http.Request) bool
	challenge() string
}

// bearerAuth is the expected Authorization header, "Bearer TOKEN".
type bearerAuth string

func (a bearerAuth) allow(r *http.Request) bool {
	return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(a)) == 1
}

func (bearerAuth) challenge() string { return "Bearer" }

type basicAuth struct{ user, password string }

func (a basicAuth) allow(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	uok := subtle.ConstantTimeCompare([]byte(u), []byte(a.user))
	pok := subtle.ConstantTimeCompare([]byte(p), []byte(a.password))
	return ok && uok&pok == 1
}

func (basicAuth) challenge() string { return `Basic realm="sluice", charset="UTF-8"` }
