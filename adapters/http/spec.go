package httpadapter

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/adapters"
	"github.com/sluicehq/sluice/transform"
)

func init() {
	adapters.RegisterSource("http", SourceSpec, newSource)
	adapters.RegisterSink("http", SinkSpec, newSink)
}

// Source modes.
const (
	modeAsync        = "async"
	modeRequestReply = "request_reply"
)

// SourceSpec is the configuration of the http source.
var SourceSpec = &adapters.Spec{
	Summary: "Receive records over HTTP: POSTs acknowledged once durable, or answered with the sinks' replies",
	Description: `An HTTP server. Each POST (or PUT) to ` + "`path`" + ` carries a JSON object, an array of
objects, or a body in ` + "`codec`" + `; its records become messages, all in one batch.

In mode ` + "`async`" + ` the answer is ` + "`202`" + ` with ` + "`{\"ids\": [...]}`" + ` once every message of the request is
durably enqueued, never before. In mode ` + "`request_reply`" + ` the request waits for the replies of the
sinks that write its messages (a ` + "`mysql_lookup`" + ` sink's rows, an ` + "`http`" + ` sink's response, or an
acknowledgement) and is answered ` + "`200`" + ` with them, ` + "`502`" + ` when a sink dead-lettered a message,
` + "`422`" + ` when the stages rejected one, or ` + "`504`" + ` when ` + "`timeout`" + ` passed first (the messages are still
delivered or dead-lettered as usual).

A malformed body is answered ` + "`400`" + ` with the decode error, a body over max_body_bytes ` + "`413`" + `, a
missing or wrong credential ` + "`401`" + `, a client over its rate ` + "`429`" + `. When the pipeline's queues are full,
max_pending requests already wait, or the enqueue did not finish within enqueue_timeout, the answer
is ` + "`503`" + ` with Retry-After: the request was not accepted, or (after the timeout) perhaps accepted
later — retry with the same ` + "`Idempotency-Key`" + `. Message IDs derive from that header (pipeline,
source, key and the record's index), so a retried request produces the same IDs and idempotent sinks
(mysql upsert) do not duplicate it; without the header IDs are random.`,
	Fields: []adapters.Field{
		{Name: "address", Type: adapters.TypeString, Default: "127.0.0.1:8080",
			Description: "Address to listen on, `host:port`; `:8080` listens on every interface.", Example: "0.0.0.0:8080"},
		{Name: "path", Type: adapters.TypeString, Default: "/",
			Description: "URL path that accepts POST and PUT; other paths answer 404.", Example: "/orders",
			Check: func(v any) error {
				if !strings.HasPrefix(v.(string), "/") {
					return fmt.Errorf("want a path starting with /, got %q", v)
				}
				return nil
			}},
		{Name: "mode", Type: adapters.TypeString, Default: modeAsync, Enum: []string{modeAsync, modeRequestReply},
			Description: "`async`: answer 202 once durable. `request_reply`: answer with the sinks' replies."},
		{Name: "timeout", Type: adapters.TypeDuration, Default: "10s", Check: positiveDuration,
			Description: "request_reply: how long a request waits for its replies, enqueue included, before it is answered 504."},
		{Name: "enqueue_timeout", Type: adapters.TypeDuration, Default: "10s", Check: positiveDuration,
			Description: "How long a request waits for its messages to be durably enqueued before it is answered 503 (its messages may still be enqueued: the client retries with the same Idempotency-Key)."},
		{Name: "codec", Type: adapters.TypeCodec, Default: "json",
			Description: "How request bodies are decoded: `json` (an object or an array of objects), `jsonl`, `csv`, `xml`, …; `none` makes the whole body one raw message."},
		{Name: "max_body_bytes", Type: adapters.TypeSize, Default: "10MiB",
			Description: "Largest request body; a larger one is answered 413."},
		{Name: "batch_size", Type: adapters.TypeInt, Default: 1000, Check: positiveInt,
			Description: "Most messages the source hands the engine at once; requests waiting together are batched up to it (a larger request is a batch of its own)."},
		{Name: "linger", Type: adapters.TypeDuration, Default: "0s",
			Description: "How long a batch waits for more requests once the waiting ones are taken; 0 sends at once (requests that arrive while the engine is busy are batched anyway)."},
		{Name: "max_pending", Type: adapters.TypeInt, Default: 4096, Check: positiveInt,
			Description: "Most requests waiting for the engine to take them; more are answered 503 at once."},
		{Name: "retry_after", Type: adapters.TypeDuration, Default: "1s", Check: positiveDuration,
			Description: "Retry-After sent with 503 and 429 answers (rounded up to whole seconds)."},
		{Name: "read_timeout", Type: adapters.TypeDuration, Default: "30s", Check: positiveDuration,
			Description: "Longest time to read a request, headers and body."},
		{Name: "tls_cert_file", Type: adapters.TypeString, Optional: true,
			Description: "PEM certificate chain: serve HTTPS. Relative to the pipeline file.", Example: "/etc/sluice/tls/server.crt"},
		{Name: "tls_key_file", Type: adapters.TypeString, Optional: true,
			Description: "PEM private key of tls_cert_file.", Example: "/etc/sluice/tls/server.key"},
		{Name: "tls_client_ca_file", Type: adapters.TypeString, Optional: true,
			Description: "PEM CA certificates: clients must present a certificate they signed (mutual TLS)."},
		{Name: "bearer_token", Type: adapters.TypeString, Optional: true, Secret: true,
			Description: "Token clients must send as `Authorization: Bearer TOKEN`; give it as `${VAR}` or use bearer_token_file."},
		{Name: "bearer_token_file", Type: adapters.TypeString, Optional: true,
			Description: "File holding the bearer token (surrounding white space ignored), read at start.", Example: "/etc/sluice/http.token"},
		{Name: "basic_auth", Type: adapters.TypeObject, Optional: true,
			Description: "HTTP basic authentication instead of a bearer token.",
			Fields: []adapters.Field{
				{Name: "user", Type: adapters.TypeString, Description: "User name.", Example: "partner"},
				{Name: "password", Type: adapters.TypeString, Optional: true, Secret: true, Description: "Password; give it as `${VAR}` or use password_file."},
				{Name: "password_file", Type: adapters.TypeString, Optional: true, Description: "File holding the password (one trailing newline ignored), read at start."},
			}},
		{Name: "rate_limit", Type: adapters.TypeFloat, Default: 0.0,
			Description: "Requests per second allowed per client address (token bucket); 0 = unlimited. A client over it is answered 429.",
			Check: func(v any) error {
				if v.(float64) < 0 {
					return errors.New("want 0 (unlimited) or more")
				}
				return nil
			}},
		{Name: "rate_burst", Type: adapters.TypeInt, Default: 0,
			Description: "Requests a client may send at once above rate_limit; 0 = rate_limit rounded up (at least 1)."},
		{Name: "meta_headers", Type: adapters.TypeStrings, Optional: true,
			Description: "Request headers copied into each message's metadata as `http.NAME` (lower case), e.g. `meta[\"http.x-tenant\"]`.", Example: []any{"X-Tenant"}},
	},
	Example: `type: http
address: 0.0.0.0:8080
path: /orders
mode: async
bearer_token: ${ORDERS_TOKEN}
max_body_bytes: 1MiB
rate_limit: 100`,
	Check: checkSource,
}

// SinkSpec is the configuration of the http sink.
var SinkSpec = &adapters.Spec{
	Summary: "Send records to an HTTP endpoint: one request per message or a JSON array per batch",
	Description: `A client. Each message is sent as one request (or, with ` + "`batch: true`" + `, each batch as one
JSON array), to a URL rendered from a template (` + "`{{ record.id }}`" + `). A 2xx answer acknowledges the
messages. 429, 408 and 5xx answers and network errors (timeouts, reset connections) are transient:
retried with the queue's backoff, and a Retry-After header holds the sink's next request back until
then. A refused connection or a failed DNS lookup means the target is down: the sink backs off as a
whole without charging attempts. Other 4xx answers and redirects are permanent: the message goes
to the dead-letter queue with the status and the start of the response body.

Messages of a Write are sent one after the other, so with ` + "`workers: 1`" + ` they arrive in queue order;
after a transient failure the rest of the batch is not sent and is retried with it, but a retried
message may then arrive after later ones (retries may reorder). In a request/reply pipeline the
response (status and body, JSON decoded when it is JSON) is the reply to the caller.`,
	Fields: []adapters.Field{
		{Name: "url", Type: adapters.TypeString,
			Description: "URL template: `{{ expr }}` holes are rendered per message (with `batch: true`, from the batch's first message).",
			Example:     "https://erp.example.com/api/orders/{{ record.id }}",
			Check: func(v any) error {
				_, err := transform.CompileTemplate(v.(string))
				return err
			}},
		{Name: "method", Type: adapters.TypeString, Default: "POST", Enum: []string{"POST", "PUT", "PATCH", "DELETE", "GET"},
			Description: "HTTP method."},
		{Name: "headers", Type: adapters.TypeStringMap, Optional: true, Secret: true,
			Description: "Request headers; values may come from the environment (`Authorization: Bearer ${ERP_TOKEN}`) and are never printed.",
			Example:     map[string]any{"Authorization": "Bearer ${ERP_TOKEN}"}},
		{Name: "header_files", Type: adapters.TypeStringMap, Optional: true,
			Description: "Request headers whose value is read from a file at connect (surrounding white space ignored); relative to the pipeline file.",
			Example:     map[string]any{"X-Api-Key": "/etc/sluice/erp.key"}},
		{Name: "codec", Type: adapters.TypeCodec, Optional: true,
			Description: "How bodies are encoded. Default: JSON, an object per message or an array per batch. Another codec encodes the message's (or batch's) records; `none` sends raw payloads."},
		{Name: "content_type", Type: adapters.TypeString, Optional: true,
			Description: "Content-Type of request bodies. Default from the codec: application/json, application/x-ndjson, text/csv, application/xml, application/octet-stream."},
		{Name: "batch", Type: adapters.TypeBool, Default: false,
			Description: "Send each batch (the sink's batch_size) as one request instead of one request per message."},
		{Name: "timeout", Type: adapters.TypeDuration, Default: "30s", Check: positiveDuration,
			Description: "Timeout of each request, connection and response body included."},
		{Name: "max_retry_after", Type: adapters.TypeDuration, Default: "1m",
			Description: "Longest Retry-After the sink honours; a longer one is cut to it."},
		{Name: "max_reply_bytes", Type: adapters.TypeSize, Default: "1MiB",
			Description: "Most bytes of a response body kept as a reply or quoted in an error."},
		{Name: "ca_file", Type: adapters.TypeString, Optional: true,
			Description: "PEM CA certificates that sign the server's certificate (default: the system roots)."},
		{Name: "cert_file", Type: adapters.TypeString, Optional: true, Description: "PEM client certificate, for mutual TLS."},
		{Name: "key_file", Type: adapters.TypeString, Optional: true, Description: "PEM private key of cert_file."},
		{Name: "insecure_skip_verify", Type: adapters.TypeBool, Default: false,
			Description: "Do not verify the server's certificate (logged as a warning at every connect): for tests only."},
	},
	Example: `type: http
from: orders
url: https://erp.example.com/api/orders/{{ record.id }}
method: PUT
headers:
  Authorization: Bearer ${ERP_TOKEN}
timeout: 10s`,
	Check: checkSink,
}

func positiveDuration(v any) error {
	if d := v.(time.Duration); d <= 0 {
		return fmt.Errorf("want a positive duration, got %v", d)
	}
	return nil
}

func positiveInt(v any) error {
	if n := v.(int64); n < 1 {
		return fmt.Errorf("want 1 or more, got %d", n)
	}
	return nil
}

// exclusive reports an error on b when both a and b are given.
func exclusive(conf *adapters.Config, a, b string) error {
	if conf.Has(a) && conf.Has(b) {
		return conf.Errorf(b, "give %s or %s, not both", a, b)
	}
	return nil
}

func checkSource(conf *adapters.Config) error {
	var errs adapters.Errors
	add := func(err error) {
		if err != nil {
			errs = append(errs, adapters.AsErrors(err, conf.Path(), 0)...)
		}
	}
	if conf.Has("tls_cert_file") != conf.Has("tls_key_file") {
		add(conf.Errorf("tls_key_file", "tls_cert_file and tls_key_file go together"))
	}
	if conf.Has("tls_client_ca_file") && !conf.Has("tls_cert_file") {
		add(conf.Errorf("tls_client_ca_file", "mutual TLS needs tls_cert_file and tls_key_file"))
	}
	add(exclusive(conf, "bearer_token", "bearer_token_file"))
	if ba := conf.Object("basic_auth"); ba != nil {
		if conf.Has("bearer_token") || conf.Has("bearer_token_file") {
			add(conf.Errorf("basic_auth", "give a bearer token or basic_auth, not both"))
		}
		add(exclusive(ba, "password", "password_file"))
		if !ba.Has("password") && !ba.Has("password_file") {
			add(ba.Errorf("password", "basic_auth needs password or password_file"))
		}
	}
	if conf.Float("rate_limit") == 0 && conf.IsSet("rate_burst") {
		add(conf.Errorf("rate_burst", "rate_burst needs rate_limit"))
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func checkSink(conf *adapters.Config) error {
	var errs adapters.Errors
	add := func(err error) {
		if err != nil {
			errs = append(errs, adapters.AsErrors(err, conf.Path(), 0)...)
		}
	}
	if conf.Has("cert_file") != conf.Has("key_file") {
		add(conf.Errorf("key_file", "cert_file and key_file go together"))
	}
	if conf.Bool("insecure_skip_verify") && conf.Has("ca_file") {
		add(conf.Errorf("insecure_skip_verify", "insecure_skip_verify ignores ca_file: give one of them"))
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
