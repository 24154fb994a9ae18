// Package httpadapter is Sluice's HTTP source and sink, registered as type
// "http".
//
// The source is a server: each POST becomes one or more messages, answered
// 202 with their IDs only once they are durably enqueued (mode async), or
// answered with the replies of the sinks that wrote them (mode
// request_reply, through adapters.Replies). Requests are batched for the
// engine as they arrive, without waiting for one another. A request the
// source cannot accept now (a full queue, too many requests waiting, a
// client over its rate) is answered 503 or 429 with Retry-After; IDs derive
// from the Idempotency-Key header so that retries are recognised.
//
// The sink is a client: one request per message or one JSON array per
// batch, to a URL rendered from a template, with 2xx as success, 429, 5xx
// and network errors as transient (honouring Retry-After), a refused
// connection as the target being unavailable, and other 4xx answers as
// permanent. It keeps response bodies as replies for request/reply
// pipelines (adapters.Replier).
package httpadapter
