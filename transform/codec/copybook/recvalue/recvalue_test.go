package recvalue

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestConversions(t *testing.T) {
	for _, tc := range []struct {
		in   any
		dec  string
		str  string
		flt  float64
		fail bool
	}{
		{in: int64(-12), dec: "-12", str: "-12", flt: -12},
		{in: 7, dec: "7", str: "7", flt: 7},
		{in: uint64(18446744073709551615), dec: "18446744073709551615", str: "18446744073709551615", flt: 18446744073709551615},
		{in: 1.25, dec: "1.25", str: "1.25", flt: 1.25},
		{in: decimal.New(12340, -2), dec: "123.4", str: "123.40", flt: 123.4},
		{in: " 42.5 ", dec: "42.5", str: " 42.5 ", flt: 42.5},
	} {
		d, err := Decimal(tc.in)
		if err != nil || d.String() != tc.dec {
			t.Errorf("Decimal(%v) = %v, %v", tc.in, d, err)
		}
		s, err := String(tc.in)
		if err != nil || s != tc.str {
			t.Errorf("String(%v) = %q, %v", tc.in, s, err)
		}
		f, err := Float(tc.in)
		if err != nil || f != tc.flt {
			t.Errorf("Float(%v) = %v, %v", tc.in, f, err)
		}
	}
	if _, err := Decimal("abc"); err == nil {
		t.Error("Decimal(abc)")
	}
	if _, err := Decimal([]any{}); err == nil {
		t.Error("Decimal(list)")
	}
	if _, err := Float(true); err == nil {
		t.Error("Float(bool)")
	}
	if _, err := String(map[string]any{}); err == nil {
		t.Error("String(map)")
	}
	if s, _ := String(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)); s != "2024-01-02T03:04:05Z" {
		t.Errorf("String(time) = %s", s)
	}
}

func TestCache(t *testing.T) {
	c := NewCache(2)
	if _, ok := c.Get(0, nil); ok {
		t.Error("empty cache hit on empty bytes")
	}
	c.Put(0, []byte("AB"), "ab")
	if v, ok := c.Get(0, []byte("AB")); !ok || v != "ab" {
		t.Errorf("got %v %v", v, ok)
	}
	for _, raw := range []string{"A", "ABC", "AC"} {
		if _, ok := c.Get(0, []byte(raw)); ok {
			t.Errorf("hit for %q", raw)
		}
	}
	if _, ok := c.Get(1, []byte("AB")); ok {
		t.Error("fields share entries")
	}
	c.Put(1, nil, nil)
	if v, ok := c.Get(1, []byte{}); !ok || v != nil {
		t.Errorf("empty bytes: %v %v", v, ok)
	}
}

// A field that changes every time goes cold, then is cached again; hits
// keep a field warm.
func TestCacheCold(t *testing.T) {
	c := NewCache(2)
	for i := 0; i < coldAfter; i++ {
		raw := []byte{byte(i)}
		if _, ok := c.Get(1, raw); ok {
			t.Fatalf("hit on a new value %d", i)
		}
		c.Put(1, raw, i)
	}
	c.Put(1, []byte("Z"), "z")
	for i := 0; i < coldFor; i++ {
		if _, ok := c.Get(1, []byte("Z")); ok {
			t.Fatalf("cold entry hit after %d lookups", i)
		}
	}
	c.Put(1, []byte("Z"), "z")
	if v, ok := c.Get(1, []byte("Z")); !ok || v != "z" {
		t.Fatalf("after the cold period: %v, %v", v, ok)
	}
	for i := 0; i < 3*coldAfter; i++ {
		raw := []byte{'x', byte(i / 4)} // each value four times in a row
		v, ok := c.Get(0, raw)
		if !ok {
			c.Put(0, raw, i/4)
		} else if v != i/4 {
			t.Fatalf("%d: got %v", i, v)
		}
	}
	if c.entries[0].cold != 0 {
		t.Fatal("a field with hits went cold")
	}
}
