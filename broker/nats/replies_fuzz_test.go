package natsbroker

import (
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/sluicehq/sluice/adapters"
)

func FuzzDecodeReply(f *testing.F) {
	for _, r := range []adapters.Reply{
		{Status: adapters.ReplyDelivered, ID: "m1", Sink: "erp", Record: adapters.Record{"d": decimal.RequireFromString("1.50"), "t": time.Unix(1, 2)}},
		{Status: adapters.ReplyFailed, ID: "m2", Sink: "erp", Error: "boom"},
		{Status: adapters.ReplyExpect, Expect: 3},
	} {
		b, err := encodeReply("A1.7", r, 0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, rep, err := decodeReply(b)
		if err != nil {
			return
		}
		if id == "" || rep.Status == "" {
			t.Fatalf("decoded without id or status: %q %+v", id, rep)
		}
		again, err := encodeReply(id, rep, 0)
		if err != nil {
			t.Fatalf("decoded reply not encodable: %v", err)
		}
		id2, rep2, err := decodeReply(again)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if id2 != id || rep2.Status != rep.Status || rep2.ID != rep.ID || rep2.Sink != rep.Sink || rep2.Error != rep.Error ||
			rep2.Expect != rep.Expect || len(rep2.Record) != len(rep.Record) {
			t.Fatalf("round trip: %q %+v, then %q %+v", id, rep, id2, rep2)
		}
	})
}

func FuzzAgentOf(f *testing.F) {
	for _, s := range []string{"Ab3.12", "a.1", ".1", "a.", "a.b", "a*.1", "a.1.2", "", "0123abcd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		agent, ok := agentOf(id)
		if !ok {
			return
		}
		seq, found := strings.CutPrefix(id, agent+".")
		if agent == "" || !found || seq == "" {
			t.Fatalf("agentOf(%q) = %q", id, agent)
		}
		// an agent is one subject token: letters and digits only
		for _, c := range agent {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				t.Fatalf("agentOf(%q) = %q", id, agent)
			}
		}
		for _, c := range seq {
			if c < '0' || c > '9' {
				t.Fatalf("agentOf(%q): sequence %q", id, seq)
			}
		}
	})
}
