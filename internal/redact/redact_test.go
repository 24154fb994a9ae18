package redact

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/adapters"
)

func TestString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain text, nothing to hide", "plain text, nothing to hide"},
		{"dial user:s3cret@tcp(db:3306)/erp", "dial user:[redacted]@tcp(db:3306)/erp"},
		{"user:s3cret@tcp(db:3306)/erp?parseTime=true", "user:[redacted]@tcp(db:3306)/erp?parseTime=true"},
		{"p@ss in dsn erp:p@ss:w0rd@tcp(h)/db", "p@ss in dsn erp:[redacted]@tcp(h)/db"},
		{"connect amqp://guest:guest@rabbit:5672/ failed", "connect amqp://guest:[redacted]@rabbit:5672/ failed"},
		{"sftp://batch@legacy-host:22/outbound", "sftp://batch@legacy-host:22/outbound"},
		{"host=db password=s3cret sslmode=disable", "host=db password=[redacted] sslmode=disable"},
		{"Server=db;User Id=sa;Password=Pa55;Database=x", "Server=db;User Id=sa;Password=[redacted];Database=x"},
		{"https://api/x?access_key=AKIA123&page=2", "https://api/x?access_key=[redacted]&page=2"},
		{`{"db_password": "s3cret", "user": "u"}`, `{"db_password": "[redacted]", "user": "u"}`},
		{"auth_token='abc def' next", "auth_token='[redacted]' next"},
		{"Error 1045: Access denied for user 'erp'@'localhost' (using password: YES)", "Error 1045: Access denied for user 'erp'@'localhost' (using password: YES)"},
		{"at 12:30 the job ran", "at 12:30 the job ran"},
		{"already user:[redacted]@tcp(h)/d password=[redacted]", "already user:[redacted]@tcp(h)/d password=[redacted]"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			if got := String(c.in); got != c.want {
				t.Fatalf("String(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
		})
	}
}

func TestError(t *testing.T) {
	if Error(nil) != "" {
		t.Fatal("nil error")
	}
	err := errors.New("sink \"erp\": open root:hunter2@tcp(db)/erp: refused")
	if got := Error(err); strings.Contains(got, "hunter2") || !strings.Contains(got, "root:[redacted]@") {
		t.Fatalf("Error = %q", got)
	}
}

var testSpec = &adapters.Spec{
	Summary: "a test sink",
	Fields: []adapters.Field{
		{Name: "dsn", Type: adapters.TypeString, Secret: true},
		{Name: "url", Type: adapters.TypeString, Default: ""},
		{Name: "timeout", Type: adapters.TypeDuration, Default: "5s"},
		{Name: "size", Type: adapters.TypeSize, Default: "1KiB"},
		{Name: "hosts", Type: adapters.TypeStrings, Default: []string{}},
		{Name: "headers", Type: adapters.TypeStringMap, Default: map[string]string{}},
		{Name: "tls", Type: adapters.TypeObject, Default: map[string]any{}, Fields: []adapters.Field{
			{Name: "key_passphrase", Type: adapters.TypeString, Default: "", Secret: true},
			{Name: "verify", Type: adapters.TypeBool, Default: true},
		}},
		{Name: "extra", Type: adapters.TypeAny, Optional: true},
		{Name: "absent", Type: adapters.TypeString, Optional: true},
	},
}

func TestConfig(t *testing.T) {
	conf, err := adapters.Decode(testSpec, map[string]any{
		"dsn":     "erp:topsecret@tcp(db)/erp",
		"url":     "https://bob:hunter2@example.com/api",
		"hosts":   []any{"a", "mysql://u:pw1@b"},
		"headers": map[string]any{"Authorization": "Bearer xyz", "X-Trace": "1"},
		"tls":     map[string]any{"key_passphrase": "phr4se"},
		"extra":   map[string]any{"password": "pw2", "list": []any{"token=pw3"}, "n": int64(3)},
	}, adapters.DecodeOptions{File: "t.yaml", Path: "sinks[0]"})
	if err != nil {
		t.Fatal(err)
	}
	got := Config(testSpec, conf)
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, secret := range []string{"topsecret", "hunter2", "pw1", "pw2", "pw3", "xyz", "phr4se"} {
		if strings.Contains(s, secret) {
			t.Errorf("dump contains %q: %s", secret, s)
		}
	}
	for _, want := range []string{`"dsn":"[redacted]"`, `"timeout":"5s"`, `"size":1024`, `"verify":true`, `"X-Trace":"1"`, `"n":3`, `"url":"https://bob:[redacted]@example.com/api"`} {
		if !strings.Contains(s, want) {
			t.Errorf("dump lacks %s: %s", want, s)
		}
	}
	if _, ok := got["absent"]; ok {
		t.Errorf("absent optional field dumped: %s", s)
	}
	if Config(testSpec, nil) != nil {
		t.Error("nil config")
	}
}

func TestSecretKey(t *testing.T) {
	for k, want := range map[string]bool{
		"password": true, "DB_PASSWORD": true, "api-key": true, "apiKey": true, "apikey": true, "dsn": true,
		"Authorization": true, "key": false, "monkey": false, "author": false, "private_key": true, "token": true, "key_file": false,
	} {
		if got := secretKey(k); got != want {
			t.Errorf("secretKey(%q) = %v, want %v", k, got, want)
		}
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"u:p@tcp(h)/d", "amqp://a:b@c", "password=x token=y", `{"pwd":"z"}`, "a:b@c:d@e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once := String(s)
		if twice := String(once); twice != once {
			t.Fatalf("not idempotent: %q → %q → %q", s, once, twice)
		}
	})
}
