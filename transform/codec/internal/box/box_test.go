package box

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestLayoutsHold(t *testing.T) {
	if !ok {
		t.Fatal("the layout check failed: values are boxed the slow way")
	}
}

// Values boxed by an Arena behave as Go's own: equality, type switches,
// reflection, formatting, decimal arithmetic; and survive collections while
// referenced.
func TestValues(t *testing.T) {
	var a Arena
	t0 := time.Date(2026, 11, 23, 10, 17, 0, 5, time.FixedZone("CET", 3600))
	cases := []struct {
		got, want any
	}{
		{a.String(""), ""},
		{a.String("héllo"), "héllo"},
		{a.Int64(0), int64(0)},
		{a.Int64(255), int64(255)},
		{a.Int64(256), int64(256)},
		{a.Int64(-1), int64(-1)},
		{a.Int64(math.MinInt64), int64(math.MinInt64)},
		{a.Int64(math.MaxInt64), int64(math.MaxInt64)},
		{a.Float64(0.1), 0.1},
		{a.Float64(math.Inf(-1)), math.Inf(-1)},
		{a.Time(t0), t0},
		{a.Time(time.Time{}), time.Time{}},
	}
	for i, c := range cases {
		if c.got != c.want || !reflect.DeepEqual(c.got, c.want) || fmt.Sprint(c.got) != fmt.Sprint(c.want) || reflect.TypeOf(c.got) != reflect.TypeOf(c.want) {
			t.Errorf("%d: got %#v, want %#v", i, c.got, c.want)
		}
	}
	decs := []struct {
		v   int64
		exp int32
	}{{0, 0}, {0, -2}, {1, 0}, {-1, -1}, {12345, -2}, {-12345, -2}, {999999999999999999, -18}, {math.MinInt64, 0}, {math.MaxInt64, 3}, {7, 5}}
	for _, d := range decs {
		got := a.Decimal(d.v, d.exp)
		gd, isDec := got.(decimal.Decimal)
		want := decimal.New(d.v, d.exp)
		if !isDec || !gd.Equal(want) || gd.String() != want.String() || gd.Exponent() != want.Exponent() || gd.Coefficient().Cmp(want.Coefficient()) != 0 {
			t.Errorf("decimal %d e%d: got %v (%T), want %v", d.v, d.exp, got, got, want)
		}
		// arithmetic leaves the boxed value as it was
		if sum := gd.Add(decimal.New(1, 0)); !sum.Equal(want.Add(decimal.New(1, 0))) || !gd.Equal(want) {
			t.Errorf("decimal %d e%d: arithmetic: %v", d.v, d.exp, sum)
		}
	}
}

func TestSurvivesCollection(t *testing.T) {
	var a Arena
	const n = 10 * slabSize
	var vals []any
	for i := 0; i < n; i++ {
		vals = append(vals, a.String(fmt.Sprint("s", i)), a.Int64(int64(1000+i)), a.Float64(float64(i)/4), a.Decimal(int64(-i*1001), -2))
	}
	a = Arena{} // only the interfaces reference the slabs now
	for r := 0; r < 3; r++ {
		runtime.GC()
		_ = make([]byte, 1<<20) // reuse freed memory, were the slabs freed
	}
	for i := 0; i < n; i++ {
		if vals[4*i] != any(fmt.Sprint("s", i)) || vals[4*i+1] != any(int64(1000+i)) || vals[4*i+2] != any(float64(i)/4) {
			t.Fatalf("%d: %v %v %v", i, vals[4*i], vals[4*i+1], vals[4*i+2])
		}
		if d := vals[4*i+3].(decimal.Decimal); !d.Equal(decimal.New(int64(-i*1001), -2)) {
			t.Fatalf("%d: decimal %v", i, d)
		}
	}
}

// BenchmarkBox compares boxing a record's worth of values (a string, two
// ints, a float, a time, two decimals) with an Arena and with Go's boxing
// and decimal.New.
func BenchmarkBox(b *testing.B) {
	t0 := time.Now()
	var sink [7]any
	b.Run("arena", func(b *testing.B) {
		var a Arena
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			sink[0], sink[1], sink[2] = a.String("customer"), a.Int64(int64(i)+1000), a.Int64(int64(i)*7+300)
			sink[3], sink[4] = a.Float64(float64(i)), a.Time(t0)
			sink[5], sink[6] = a.Decimal(int64(i)*37, -2), a.Decimal(-int64(i), -2)
		}
	})
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			s := "customer"
			sink[0], sink[1], sink[2] = s, int64(i)+1000, int64(i)*7+300
			sink[3], sink[4] = float64(i), t0
			sink[5], sink[6] = decimal.New(int64(i)*37, -2), decimal.New(-int64(i), -2)
		}
	})
}
