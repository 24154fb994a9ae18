// Package admin is the agent's HTTP server: health and readiness probes,
// Prometheus metrics, and a JSON API over the running pipelines and their
// queues, including dead-letter browse, replay and purge.
//
// Read-only calls are open to whoever reaches the listener (127.0.0.1 by
// default). Calls that change something (pause, resume, replay, purge,
// reload) need "Authorization: Bearer TOKEN"; when no token is configured
// they are refused. docs/operations.md documents every endpoint.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/internal/redact"
	"github.com/sluicehq/sluice/pipeline"
)

// Agent is what the server reads and controls; *pipeline.Agent implements it.
type Agent interface {
	Runtimes() []*pipeline.Runtime
	Runtime(name string) *pipeline.Runtime
}

// Options configure New.
type Options struct {
	// Agent holds the running pipelines. Required.
	Agent Agent
	// Metrics serves GET /metrics; nil leaves the endpoint out.
	Metrics http.Handler
	// Token guards the calls that change something. Empty refuses them.
	Token string
	// Reload re-reads the pipeline configuration for POST /api/v1/reload;
	// nil leaves the endpoint out. It returns what changed.
	Reload func(ctx context.Context) (pipeline.Change, error)
	// Logger receives a line per change made through the API; nil discards.
	Logger *slog.Logger
}

// Server is the admin HTTP server.
type Server struct {
	opts      Options
	tokenHash [sha256.Size]byte
	mux       *http.ServeMux
	draining  atomic.Bool
	srv       *http.Server
	log       *slog.Logger
}

// New returns a server; Handler serves it, or Start listens.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), log: opts.Logger.With("component", "admin")}
	if opts.Token != "" {
		s.tokenHash = sha256.Sum256([]byte(opts.Token))
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	if s.opts.Metrics != nil {
		m.Handle("GET /metrics", s.opts.Metrics)
	}
	m.HandleFunc("GET /api/v1/pipelines", s.listPipelines)
	m.HandleFunc("GET /api/v1/pipelines/{pipeline}", s.getPipeline)
	m.Handle("POST /api/v1/pipelines/{pipeline}/pause", s.mutating(s.pause))
	m.Handle("POST /api/v1/pipelines/{pipeline}/resume", s.mutating(s.resume))
	m.HandleFunc("GET /api/v1/queues", s.listQueues)
	m.HandleFunc("GET /api/v1/queues/{pipeline}/{queue}", s.getQueue)
	m.HandleFunc("GET /api/v1/queues/{pipeline}/{queue}/messages", s.messages)
	m.Handle("POST /api/v1/queues/{pipeline}/{queue}/replay", s.mutating(s.replay))
	m.Handle("POST /api/v1/queues/{pipeline}/{queue}/purge", s.mutating(s.purge))
	if s.opts.Reload != nil {
		m.Handle("POST /api/v1/reload", s.mutating(s.reload))
	}
}

// Handler returns the server's handler: the routes, with JSON answers for
// unknown paths and wrong methods.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			if m == r.Method {
				continue
			}
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, p := s.mux.Handler(r2); p != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))
			return
		}
		writeError(w, http.StatusNotFound, "no endpoint %s %s; see docs/operations.md for the admin API", r.Method, r.URL.Path)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Start listens on address and serves in the background; it returns the
// address actually bound (useful with port 0).
func (s *Server) Start(address string) (net.Addr, error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w (set admin.address, or \"off\" to disable the admin server)", address, err)
	}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "error", err)
		}
	}()
	s.log.Info("admin server listening", "address", ln.Addr().String(), "mutating_calls", map[bool]string{true: "token required", false: "disabled (no token)"}[s.opts.Token != ""])
	return ln.Addr(), nil
}

// Shutdown stops the server started by Start, waiting for requests in
// progress until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// SetDraining makes /readyz answer 503 from now on: the agent is shutting
// down.
func (s *Server) SetDraining() { s.draining.Store(true) }

// mutating guards a handler with the bearer token.
func (s *Server) mutating(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Token == "" {
			writeError(w, http.StatusForbidden, "calls that change something are disabled because no admin token is configured: set SLUICE_ADMIN_TOKEN or admin.token_file and restart the agent")
			return
		}
		auth := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(auth, " ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], s.tokenHash[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong token: send \"Authorization: Bearer TOKEN\" with the admin token")
			return
		}
		h(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness is the body of /readyz.
type readiness struct {
	Ready bool `json:"ready"`
	// NotReady names what is not ready: "PIPELINE/source/NAME" → its state.
	NotReady  map[string]string `json:"not_ready,omitempty"`
	Pipelines int               `json:"pipelines"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	out := readiness{NotReady: map[string]string{}}
	if s.draining.Load() {
		out.NotReady["agent"] = "shutting down"
	}
	for _, rt := range s.opts.Agent.Runtimes() {
		out.Pipelines++
		select {
		case <-rt.Done():
			out.NotReady[rt.Name()] = "stopped"
			continue
		default:
		}
		for c, state := range rt.NotReady() {
			out.NotReady[rt.Name()+"/"+c] = redact.String(state)
		}
	}
	out.Ready = len(out.NotReady) == 0
	code := http.StatusOK
	if !out.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, out)
}

func (s *Server) runtime(w http.ResponseWriter, r *http.Request) *pipeline.Runtime {
	name := r.PathValue("pipeline")
	rt := s.opts.Agent.Runtime(name)
	if rt == nil {
		var names []string
		for _, rt := range s.opts.Agent.Runtimes() {
			names = append(names, rt.Name())
		}
		writeError(w, http.StatusNotFound, "no running pipeline %q (running: %s)", name, orNone(names))
	}
	return rt
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	if rt := s.runtime(w, r); rt != nil {
		rt.Pause()
		s.log.Info("pipeline paused through the admin API", "pipeline", rt.Name(), "remote", r.RemoteAddr)
		writeJSON(w, http.StatusOK, map[string]any{"pipeline": rt.Name(), "paused": true})
	}
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	if rt := s.runtime(w, r); rt != nil {
		rt.Resume()
		s.log.Info("pipeline resumed through the admin API", "pipeline", rt.Name(), "remote", r.RemoteAddr)
		writeJSON(w, http.StatusOK, map[string]any{"pipeline": rt.Name(), "paused": false})
	}
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	ch, err := s.opts.Reload(r.Context())
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, change{Started: ch.Started, Restarted: ch.Restarted, Stopped: ch.Stopped, Unchanged: ch.Unchanged})
}

type change struct {
	Started   []string `json:"started"`
	Restarted []string `json:"restarted"`
	Stopped   []string `json:"stopped"`
	Unchanged []string `json:"unchanged"`
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError answers {"error": "..."}, with secrets redacted.
func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": redact.String(fmt.Sprintf(format, args...))})
}
