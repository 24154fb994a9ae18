package httpadapter

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform"
	_ "github.com/sluicehq/sluice/transform/codec" // the json codec, the default of both directions
)

// sinkOptions is the decoded configuration of a sink. It holds secrets
// (header values): it is never formatted.
type sinkOptions struct {
	url                    *transform.Template
	method                 string
	headers                map[string]string
	headerFiles            map[string]string
	codec                  adapters.Codec // nil: raw payloads
	contentType            string
	batch                  bool
	timeout, maxRetryAfter time.Duration
	maxReply               int64
	caFile, certFile       string
	keyFile                string
	insecure               bool
	files                  files
}

// Sink is the http sink. It implements adapters.Sink and adapters.Replier
// and is safe for concurrent use.
type Sink struct {
	o       sinkOptions
	res     adapters.Resources
	log     *slog.Logger
	runners sync.Pool

	mu        sync.Mutex // guards the fields below
	client    *http.Client
	headers   http.Header
	closed    bool
	notBefore time.Time // no request before this time (Retry-After)
}

var (
	_ adapters.Sink    = (*Sink)(nil)
	_ adapters.Replier = (*Sink)(nil)
)

// contentTypes are the default Content-Type of each codec.
var contentTypes = map[string]string{
	"json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv",
	"xml": "application/xml", "lines": "text/plain; charset=utf-8", adapters.NoCodec: "application/octet-stream",
}

func newSink(conf *adapters.Config, res adapters.Resources) (adapters.Sink, error) {
	tmpl, err := transform.CompileTemplate(conf.String("url"))
	if err != nil {
		return nil, conf.Errorf("url", "%v", err)
	}
	o := sinkOptions{
		url: tmpl, method: conf.String("method"),
		headers: conf.StringMap("headers"), headerFiles: conf.StringMap("header_files"),
		contentType: conf.String("content_type"), batch: conf.Bool("batch"),
		timeout: conf.Duration("timeout"), maxRetryAfter: conf.Duration("max_retry_after"), maxReply: conf.Size("max_reply_bytes"),
		caFile: conf.String("ca_file"), certFile: conf.String("cert_file"), keyFile: conf.String("key_file"),
		insecure: conf.Bool("insecure_skip_verify"),
	}
	codecName := "json"
	if conf.Has("codec") {
		o.codec, codecName = conf.Codec("codec"), conf.CodecName("codec")
	} else {
		// JSON: one object per message, or an array per batch.
		format := "object"
		if o.batch {
			format = "array"
		}
		if o.codec, err = adapters.NewCodec(map[string]any{"type": "json", "format": format}, adapters.DecodeOptions{Path: conf.Path("codec")}); err != nil {
			return nil, err
		}
	}
	if o.contentType == "" {
		o.contentType = contentTypes[codecName]
		if o.contentType == "" {
			o.contentType = "application/octet-stream"
		}
	}
	if f := conf.File(); f != "" {
		o.files.baseDir = filepath.Dir(f)
	}
	log := res.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sink{o: o, res: res, log: log}
	s.runners.New = func() any { return &transform.Runner{} }
	return s, nil
}

// Connect builds the client: TLS settings and header values read from
// header_files. Calling it again re-reads the files (a rotated token).
func (s *Sink) Connect(context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return adapters.ErrClosed
	}
	s.mu.Unlock()
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.o.caFile != "" {
		pool, err := s.o.files.certPool("ca_file", s.o.caFile)
		if err != nil {
			return err
		}
		tc.RootCAs = pool
	}
	if s.o.certFile != "" {
		cert, err := s.o.files.keyPair("cert_file", s.o.certFile, s.o.keyFile)
		if err != nil {
			return err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if s.o.insecure {
		tc.InsecureSkipVerify = true //nolint:gosec // asked for explicitly, and warned about
		s.log.Warn("insecure_skip_verify: the server's certificate is not verified; anyone on the path can read and change the requests")
	}
	h := http.Header{}
	for k, v := range s.o.headers {
		h.Set(k, v)
	}
	for k, f := range s.o.headerFiles {
		v, err := s.o.files.secret("header_files."+k, f)
		if err != nil {
			return err
		}
		h.Set(k, v)
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: min(s.o.timeout, 30*time.Second), KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(s.o.timeout, 10*time.Second),
		ExpectContinueTimeout: time.Second,
	}
	client := &http.Client{Transport: tr, Timeout: s.o.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		tr.CloseIdleConnections()
		return adapters.ErrClosed
	}
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
	s.client, s.headers = client, h
	return nil
}

// Close releases idle connections. It is idempotent.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
	return nil
}

// Write sends msgs; see WriteReply.
func (s *Sink) Write(ctx context.Context, msgs []adapters.Message) error {
	_, err := s.write(ctx, msgs, false)
	return err
}

// WriteReply sends msgs and returns, per message written, its response as
// {status, body}: the body JSON-decoded when the response is JSON, else
// text. With batch: true, a JSON array answer with one element per message
// is shared out element by element; any other answer is every message's.
func (s *Sink) WriteReply(ctx context.Context, msgs []adapters.Message) ([]adapters.Record, error) {
	return s.write(ctx, msgs, true)
}

func (s *Sink) write(ctx context.Context, msgs []adapters.Message, reply bool) ([]adapters.Record, error) {
	s.mu.Lock()
	client, headers, closed := s.client, s.headers, s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return nil, adapters.ErrClosed
	case client == nil:
		return nil, adapters.ErrNotConnected
	}
	runner := s.runners.Get().(*transform.Runner)
	defer s.runners.Put(runner)
	var replies []adapters.Record
	if reply {
		replies = make([]adapters.Record, len(msgs))
	}
	be := adapters.NewBatchError(0)
	if s.o.batch {
		var good []int
		var body bytes.Buffer
		var enc adapters.Encoder
		if s.o.codec != nil {
			enc = s.o.codec.NewEncoder(&body, adapters.EncoderOptions{})
		}
		for i := range msgs {
			if err := s.encode(&body, enc, &msgs[i]); err != nil {
				be.Fail(i, err)
				continue
			}
			good = append(good, i)
		}
		if len(good) == 0 {
			return replies, be.Err()
		}
		if enc != nil {
			if err := enc.Close(); err != nil {
				return replies, adapters.PermanentError(fmt.Errorf("encode batch: %w", err))
			}
		}
		first := &msgs[good[0]]
		ids := make([]string, len(good))
		for j, i := range good {
			ids[j] = msgs[i].ID
		}
		res, err := s.send(ctx, client, headers, runner, first, body.Bytes(), adapters.NewID(ids...))
		if err != nil {
			for _, i := range good {
				be.Fail(i, err)
			}
			return replies, be
		}
		if reply {
			parts, split := res.body.([]any)
			for j, i := range good {
				rec := adapters.Record{"status": int64(res.status), "body": res.body}
				if split && len(parts) == len(good) {
					rec["body"] = parts[j]
				}
				replies[i] = rec
			}
		}
		return replies, be.Err()
	}
	for i := range msgs {
		m := &msgs[i]
		var body bytes.Buffer
		var enc adapters.Encoder
		if s.o.codec != nil {
			enc = s.o.codec.NewEncoder(&body, adapters.EncoderOptions{})
		}
		err := s.encode(&body, enc, m)
		if err == nil && enc != nil {
			if err = enc.Close(); err != nil {
				err = adapters.PermanentError(fmt.Errorf("encode message %s: %w", m.ID, err))
			}
		}
		if err != nil {
			be.Fail(i, err)
			continue
		}
		res, err := s.send(ctx, client, headers, runner, m, body.Bytes(), m.ID)
		if err != nil {
			be.Fail(i, err)
			if adapters.KindOf(err) == adapters.Permanent {
				continue
			}
			// Keep the order: what follows is not sent now and is
			// retried with this message.
			for j := i + 1; j < len(msgs); j++ {
				be.Fail(j, err)
			}
			break
		}
		if reply {
			replies[i] = adapters.Record{"status": int64(res.status), "body": res.body}
		}
	}
	return replies, be.Err()
}

// encode appends one message's body.
func (s *Sink) encode(body *bytes.Buffer, enc adapters.Encoder, m *adapters.Message) error {
	if enc == nil {
		body.Write(m.Raw)
		if s.o.batch && (len(m.Raw) == 0 || m.Raw[len(m.Raw)-1] != '\n') {
			body.WriteByte('\n')
		}
		return nil
	}
	if m.Record == nil {
		return adapters.PermanentError(fmt.Errorf("message %s has no record to encode (use codec: none for raw payloads)", m.ID))
	}
	if err := enc.Encode(m.Record); err != nil {
		return adapters.PermanentError(fmt.Errorf("encode message %s: %w", m.ID, err))
	}
	return nil
}

// response is what a successful request returned.
type response struct {
	status int
	body   any // decoded JSON, text, or nil when empty
}

// send makes one request for m (the batch's first message renders the URL)
// and classifies its outcome.
func (s *Sink) send(ctx context.Context, client *http.Client, headers http.Header, runner *transform.Runner, m *adapters.Message, body []byte, idemKey string) (response, error) {
	raw, err := runner.Render(s.o.url, m.Record, m.Meta)
	if err != nil {
		return response{}, adapters.PermanentError(fmt.Errorf("url of message %s: %w", m.ID, err))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return response{}, adapters.PermanentError(fmt.Errorf("url of message %s: %q is not an http(s) URL", m.ID, redactURL(raw)))
	}
	where := s.o.method + " " + redactURL(raw)
	if err := s.waitRetryAfter(ctx); err != nil {
		return response{}, fmt.Errorf("%s: %w", where, err)
	}
	var rd io.Reader
	if s.o.method != http.MethodGet || len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, s.o.method, u.String(), rd)
	if err != nil {
		return response{}, adapters.PermanentError(fmt.Errorf("%s: %w", where, err))
	}
	for k, v := range headers {
		req.Header[k] = v
	}
	if rd != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", s.o.contentType)
	}
	if req.Header.Get("Idempotency-Key") == "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, classifyNetError(fmt.Errorf("%s: %w", where, err))
	}
	defer resp.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, s.o.maxReply))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<10)) // reuse the connection
	status := resp.StatusCode
	switch {
	case status >= 200 && status < 300:
		if rerr != nil {
			// delivered: the target answered 2xx; only the reply is short
			s.log.Warn("response body not read whole", "url", redactURL(raw), "error", rerr)
		}
		return response{status: status, body: decodeBody(resp.Header.Get("Content-Type"), data)}, nil
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		wait := s.retryAfter(resp.Header.Get("Retry-After"))
		msg := fmt.Errorf("%s: %s%s%s", where, resp.Status, retryText(wait), excerpt(data))
		return response{}, msg
	case status == http.StatusRequestTimeout || status == http.StatusTooEarly || status >= 500:
		return response{}, fmt.Errorf("%s: %s%s", where, resp.Status, excerpt(data))
	case status >= 300 && status < 400:
		return response{}, adapters.PermanentError(fmt.Errorf("%s: unexpected redirect %s to %s", where, resp.Status, redactURL(resp.Header.Get("Location"))))
	default:
		return response{}, adapters.PermanentError(fmt.Errorf("%s: %s%s", where, resp.Status, excerpt(data)))
	}
}

// retryAfter parses a Retry-After header (seconds or an HTTP date), caps it
// at max_retry_after and holds the sink's next request back until then.
func (s *Sink) retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = time.Until(t)
	}
	d = min(max(d, 0), s.o.maxRetryAfter)
	if d > 0 {
		s.mu.Lock()
		if until := time.Now().Add(d); until.After(s.notBefore) {
			s.notBefore = until
		}
		s.mu.Unlock()
	}
	return d
}

func retryText(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return " (retry after " + d.String() + ")"
}

// waitRetryAfter sleeps until a Retry-After the target sent has passed.
func (s *Sink) waitRetryAfter(ctx context.Context) error {
	s.mu.Lock()
	d := time.Until(s.notBefore)
	s.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// classifyNetError marks errors of the connection: the target unreachable
// (refused, no route, unknown host, a certificate it cannot prove) is
// Unavailable; timeouts and broken connections stay transient.
func classifyNetError(err error) error {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &dnsErr), errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return adapters.UnavailableError(err)
	}
	return err
}

// decodeBody keeps a response body as a reply value: JSON decoded when the
// response says it is JSON, text otherwise, nil when empty.
func decodeBody(contentType string, data []byte) any {
	if len(data) == 0 {
		return nil
	}
	if strings.Contains(contentType, "json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err == nil {
			return normalize(v)
		}
	}
	return string(data)
}

// normalize converts decoded JSON into record values: integers to int64,
// other numbers to float64, objects to records.
func normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return adapters.Record(x)
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	}
	return v
}

// excerpt quotes the start of a response body for an error message.
func excerpt(b []byte) string {
	const max = 512
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > max {
		s = s[:max] + "…"
	}
	return ": " + s
}

// redactURL drops the user info and the query (where tokens hide) of a URL
// for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment = ""
	return u.String()
}
