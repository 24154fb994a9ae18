// Package logging builds the agent's slog logger: text or JSON, a level per
// component, a component attribute on every line, and secrets redacted from
// every message and attribute value (see package redact).
//
// Components are the values of the "component" attribute: the engine tags
// its loggers with component=source or component=sink (plus pipeline=...),
// the agent uses agent, admin, reload and broker. A line whose logger has a
// pipeline but no component is the engine's own (component=engine); any
// other line without one is the agent's (component=agent).
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/internal/redact"
)

// Options configure New.
type Options struct {
	// Format is "text" (the default) or "json".
	Format string
	// Level is the minimum level of components without an entry in Levels.
	Level slog.Level
	// Levels holds a minimum level per component ("sink": debug).
	Levels map[string]slog.Level
}

// ParseLevel parses "debug", "info", "warn" or "error" (any case); what
// names the setting in the error message.
func ParseLevel(what, s string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%s: unknown level %q (known: debug, info, warn, error)", what, s)
	}
	return lv, nil
}

// ParseLevels parses a component → level map (the log.levels setting).
func ParseLevels(m map[string]string) (map[string]slog.Level, error) {
	out := make(map[string]slog.Level, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lv, err := ParseLevel("log.levels."+k, m[k])
		if err != nil {
			return nil, err
		}
		out[strings.ToLower(k)] = lv
	}
	return out, nil
}

// New returns a logger writing to w.
func New(w io.Writer, opts Options) (*slog.Logger, error) {
	min := opts.Level
	for _, lv := range opts.Levels {
		min = minLevel(min, lv)
	}
	ho := &slog.HandlerOptions{Level: min, ReplaceAttr: replaceAttr}
	var inner slog.Handler
	switch opts.Format {
	case "text", "":
		inner = slog.NewTextHandler(w, ho)
	case "json":
		inner = slog.NewJSONHandler(w, ho)
	default:
		return nil, fmt.Errorf("log.format: unknown format %q (known: text, json)", opts.Format)
	}
	return slog.New(&handler{inner: inner, level: opts.Level, levels: opts.Levels}), nil
}

func minLevel(a, b slog.Level) slog.Level {
	if b < a {
		return b
	}
	return a
}

// handler filters records by their component's level and adds the
// component attribute when the logger has none. The component comes from
// WithAttrs (how the engine tags its loggers) or from the record itself.
type handler struct {
	inner     slog.Handler
	level     slog.Level
	levels    map[string]slog.Level
	component string // from WithAttrs, "" when none
	pipeline  bool   // a pipeline attribute was added with WithAttrs
	grouped   bool   // WithGroup was called: later attrs are not top level
}

func (h *handler) levelOf(component string) slog.Level {
	if lv, ok := h.levels[component]; ok {
		return lv
	}
	return h.level
}

func (h *handler) defaultComponent() string {
	switch {
	case h.component != "":
		return h.component
	case h.pipeline:
		return "engine"
	}
	return "agent"
}

func (h *handler) Enabled(ctx context.Context, lv slog.Level) bool {
	if h.component != "" || len(h.levels) == 0 {
		return lv >= h.levelOf(h.defaultComponent()) && h.inner.Enabled(ctx, lv)
	}
	// the record may still name its component: decide in Handle
	return h.inner.Enabled(ctx, lv)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	component := h.component
	if component == "" && !h.grouped {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "component" {
				component = a.Value.String()
				return false
			}
			return true
		})
	}
	given := component != ""
	if !given {
		component = h.defaultComponent()
	}
	if r.Level < h.levelOf(component) {
		return nil
	}
	out := slog.NewRecord(r.Time, r.Level, redact.String(r.Message), r.PC)
	if !given {
		out.AddAttrs(slog.String("component", component))
	}
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	if !h.grouped {
		for _, a := range attrs {
			switch a.Key {
			case "component":
				c.component = a.Value.String()
			case "pipeline":
				c.pipeline = true
			}
		}
	}
	c.inner = h.inner.WithAttrs(attrs)
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.grouped = true
	c.inner = h.inner.WithGroup(name)
	return &c
}

// replaceAttr redacts secrets from string and error values, wherever they
// are (record attributes, WithAttrs, groups).
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); s != "" {
			if r := redact.String(s); r != s {
				a.Value = slog.StringValue(r)
			}
		}
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			a.Value = slog.StringValue(redact.Error(v))
		case fmt.Stringer:
			a.Value = slog.StringValue(redact.String(v.String()))
		}
	}
	return a
}
