package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/testkit"
)

func TestLevelsPerComponent(t *testing.T) {
	var buf bytes.Buffer
	levels, err := ParseLevels(map[string]string{"sink": "debug", "Source": "error"})
	if err != nil {
		t.Fatal(err)
	}
	log, err := New(&buf, Options{Format: "json", Level: slog.LevelInfo, Levels: levels})
	if err != nil {
		t.Fatal(err)
	}
	pl := log.With("pipeline", "orders")
	sink := pl.With("component", "sink", "sink", "erp")
	src := pl.With("component", "source", "source", "drop")

	sink.Debug("sink debug")                       // kept: sink is at debug
	src.Warn("source warn")                        // dropped: source is at error
	src.Error("source error")                      // kept
	pl.Debug("engine debug")                       // dropped: engine at the default info
	pl.Info("engine info")                         // kept, component=engine
	log.Info("agent info")                         // kept, component=agent
	log.Debug("admin debug", "component", "admin") // dropped
	log.Debug("sink debug inline", "component", "sink")

	got := testkit.JSONLines(t, buf.String())
	var msgs []string
	for _, m := range got {
		msgs = append(msgs, m["msg"].(string)+"/"+m["component"].(string))
	}
	want := "sink debug/sink,source error/source,engine info/engine,agent info/agent,sink debug inline/sink"
	if strings.Join(msgs, ",") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(msgs, ","), want)
	}
	for _, m := range got[:3] {
		if m["pipeline"] != "orders" {
			t.Fatalf("pipeline attribute missing: %v", m)
		}
	}
}

func TestSecretsRedacted(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, Options{Format: "text", Level: slog.LevelInfo})
	if err != nil {
		t.Fatal(err)
	}
	log = log.With("dsn", "erp:pw1@tcp(db)/erp")
	log.Error("connect erp:pw2@tcp(db)/erp failed",
		"error", errors.New("dial root:pw3@tcp(db:3306)/x: refused"),
		slog.Group("conn", "url", "https://u:pw4@h/"),
		"args", "password=pw5")
	s := buf.String()
	for _, secret := range []string{"pw1", "pw2", "pw3", "pw4", "pw5"} {
		if strings.Contains(s, secret) {
			t.Errorf("log contains %s: %s", secret, s)
		}
	}
	if !strings.Contains(s, "root:[redacted]@tcp(db:3306)") || !strings.Contains(s, "component=agent") {
		t.Fatalf("log = %s", s)
	}
}

func TestBadSettings(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, Options{Format: "xml"}); err == nil || !strings.Contains(err.Error(), `log.format: unknown format "xml"`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := ParseLevels(map[string]string{"sink": "loud"}); err == nil || !strings.Contains(err.Error(), `log.levels.sink: unknown level "loud"`) {
		t.Fatalf("err = %v", err)
	}
	if lv, err := ParseLevel("log.level", "WARN"); err != nil || lv != slog.LevelWarn {
		t.Fatalf("ParseLevel = %v, %v", lv, err)
	}
}
