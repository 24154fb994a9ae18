package transform

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/adapters"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestTimeFunctions(t *testing.T) {
	paris := mustZone(t, "Europe/Paris")
	ny := mustZone(t, "America/New_York")
	utc := func(y int, m time.Month, d, hh, mm, ss int) time.Time {
		return time.Date(y, m, d, hh, mm, ss, 0, time.UTC)
	}
	rec := testRecord()
	rec["ymd"], rec["ymdInt"], rec["zero"], rec["yymmdd"] = "20240131", int64(20240131), "00000000", int64(10131)
	runCases(t, rec, nil, []fcase{
		{src: `parse_time("2024-01-31 13:45:00", "2006-01-02 15:04:05")`, want: utc(2024, 1, 31, 13, 45, 0)},
		{src: `parse_time(record.ymd, "YYYYMMDD")`, want: utc(2024, 1, 31, 0, 0, 0)},
		{src: `parse_time(record.ymdInt, "YYYYMMDD")`, want: utc(2024, 1, 31, 0, 0, 0)},
		{src: `parse_time(record.yymmdd, "YYMMDD")`, want: utc(2001, 1, 31, 0, 0, 0)},
		{src: `parse_time("991231", "YYMMDD")`, want: utc(1999, 12, 31, 0, 0, 0)},
		{src: `parse_time("131500", "HHMMSS")`, want: utc(0, 1, 1, 13, 15, 0)},
		{src: `parse_time("2024-01-31T13:45:00+02:00", "RFC3339")`, want: time.Date(2024, 1, 31, 13, 45, 0, 0, time.FixedZone("", 7200))},
		{src: `parse_time("2024-07-01 12:00", "2006-01-02 15:04", "Europe/Paris")`, want: time.Date(2024, 7, 1, 12, 0, 0, 0, paris)},
		{src: `unix(parse_time("2024-07-01 12:00", "2006-01-02 15:04", "Europe/Paris"))`, want: int64(1719828000)},
		{src: `parse_time("124031", "CYYDDD")`, want: utc(2024, 1, 31, 0, 0, 0)},
		{src: `parse_time("124031", "CYYDDD", "Europe/Paris")`, want: time.Date(2024, 1, 31, 0, 0, 0, 0, paris)},
		{src: `parse_time(record.zero, "YYYYMMDD")`, want: nil},
		{src: `parse_time(record.blank, "YYYYMMDD")`, want: nil},
		{src: `parse_time(record.nil, "YYYYMMDD")`, want: nil},
		{src: `parse_time(record.when, "YYYYMMDD")`, want: utc(2024, 1, 31, 13, 45, 0)},
		{src: `parse_time("20241301", "YYYYMMDD")`, err: `parse_time: "20241301" does not match layout "YYYYMMDD": month out of range`},
		{src: `parse_time("2024-01-31", "YYYYMMDD")`, err: `does not match layout "YYYYMMDD"`},
		{src: `parse_time("x", "YYYYMMDD", "Mars/Olympus")`, err: `parse_time: argument 3: unknown time zone "Mars/Olympus"`},
		{src: `parse_time("x", "YYYYMMDD", record.s)`, err: `argument 3 (tz): unknown time zone "abc"`},
		{src: `parse_time(record.customer, "YYYYMMDD")`, err: "argument 1 (s) must be a string or an integer, got object"},
		{src: `parse_time("20240131")`, err: "parse_time: want 2 or 3 arguments, got 1"},
		{src: `format_time(record.when, "YYYYMMDD")`, want: "20240131"},
		{src: `format_time(record.when, "2006-01-02T15:04:05Z07:00", "Europe/Paris")`, want: "2024-01-31T14:45:00+01:00"},
		{src: `format_time(record.when, "15:04 MST", "America/New_York")`, want: "08:45 EST"},
		{src: `format_time(record.when, "CYYDDD")`, want: "124031"},
		{src: `format_time(record.nil, "YYYYMMDD")`, want: nil},
		{src: `format_time(record.s, "YYYYMMDD")`, err: `format_time: argument 1 (t) must be a time, got string "abc"`},
		{src: `format_time("x", "YYYYMMDD")`, err: "format_time: argument 1 (t) must be a time, got string"},
		{src: `to_timezone(record.when, "America/New_York")`, want: time.Date(2024, 1, 31, 8, 45, 0, 0, ny)},
		{src: `add_duration(record.when, "90m")`, want: utc(2024, 1, 31, 15, 15, 0)},
		{src: `add_duration(record.when, "-1h30m")`, want: utc(2024, 1, 31, 12, 15, 0)},
		{src: `add_duration(record.when, duration("1h"))`, want: utc(2024, 1, 31, 14, 45, 0)},
		{src: `add_duration(record.when, "soon")`, err: `argument 2 (d): "soon" is not a duration`},
		{src: `record.when + duration("1h")`, want: utc(2024, 1, 31, 14, 45, 0)},
		{src: `record.when - duration("24h")`, want: utc(2024, 1, 30, 13, 45, 0)},
		{src: `add_days(record.when, 1)`, want: utc(2024, 2, 1, 13, 45, 0)},
		{src: `add_days(record.when, -31)`, want: utc(2023, 12, 31, 13, 45, 0)},
		// across the spring DST change in Paris: the wall clock stays 12:00
		{src: `format_time(add_days(parse_time("2024-03-30 12:00", "2006-01-02 15:04", "Europe/Paris"), 1), "2006-01-02 15:04 MST")`, want: "2024-03-31 12:00 CEST"},
		{src: `unix(record.when)`, want: int64(1706708700)},
		{src: `unix_millis(record.when)`, want: int64(1706708700000)},
		{src: `unix(record.nil)`, want: nil},
		{src: `from_unix(1706708700)`, want: utc(2024, 1, 31, 13, 45, 0)},
		{src: `from_unix_millis(1706708700000, "Europe/Paris")`, want: time.Date(2024, 1, 31, 14, 45, 0, 0, paris)},
		{src: `from_unix(record.nil)`, want: nil},
		{src: `from_unix("x")`, err: "from_unix: argument 1 (n) must be an integer, got string"},
		{src: `len(today("YYYYMMDD"))`, want: 8},
		{src: `today("YYYYMMDD", "UTC") == format_time(now(), "YYYYMMDD", "UTC")`, want: true},
		{src: `today("YYYYMMDD", "Nowhere/Else")`, err: `today: argument 2: unknown time zone "Nowhere/Else"`},
	})
}

func TestJulianDates(t *testing.T) {
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 0, 0, 0, 0, time.UTC) }
	runCases(t, adapters.Record{"c0": int64(99365), "c1": int64(124001), "short": int64(24001)}, nil, []fcase{
		{src: `parse_julian("24001")`, want: d(2024, 1, 1)},
		{src: `parse_julian("99365")`, want: d(1999, 12, 31)},
		{src: `parse_julian("68001")`, want: d(2068, 1, 1)},
		{src: `parse_julian("69001")`, want: d(1969, 1, 1)},
		{src: `parse_julian("124001")`, want: d(2024, 1, 1)},
		{src: `parse_julian("099365")`, want: d(1999, 12, 31)},
		{src: `parse_julian("024060")`, want: d(1924, 2, 29)},
		{src: `parse_julian("224100")`, want: d(2124, 4, 9)},
		{src: `parse_julian("2024366")`, want: d(2024, 12, 31)},
		{src: `parse_julian("124366", "CYYDDD")`, want: d(2024, 12, 31)},
		// integers lose leading zeros: the form says how to pad them
		{src: `parse_julian(record.c0, "CYYDDD")`, want: d(1999, 12, 31)},
		{src: `parse_julian(record.short, "CYYDDD")`, want: d(1924, 1, 1)},
		{src: `parse_julian(record.short, "YYDDD")`, want: d(2024, 1, 1)},
		{src: `parse_julian(record.c1)`, want: d(2024, 1, 1)},
		{src: `parse_julian("000000")`, want: nil},
		{src: `parse_julian(record.nil)`, want: nil},
		{src: `parse_julian("123366")`, err: `"123366": day of year 366 is out of range for 2023 (1-365)`},
		{src: `parse_julian("124000", "CYYDDD")`, err: "day of year 0 is out of range"},
		{src: `parse_julian("1240", "CYYDDD")`, err: `"1240" is not a CYYDDD Julian date (want 6 digits)`},
		{src: `parse_julian("12A001")`, err: "is not a CYYDDD Julian date"},
		{src: `parse_julian("1234")`, err: "want 5, 6 or 7 digits"},
		{src: `parse_julian("24001", "YYMMDD")`, err: `parse_julian: argument 2: unknown Julian form "YYMMDD"`},
		{src: `parse_julian("24001", record.nil)`, err: "argument 2 (form) must be YYDDD, CYYDDD or YYYYDDD"},
		{src: `format_julian(parse_julian("124001"), "CYYDDD")`, want: "124001"},
		{src: `format_julian(parse_julian("099365"), "CYYDDD")`, want: "099365"},
		{src: `format_julian(parse_julian("2024366"), "YYDDD")`, want: "24366"},
		{src: `format_julian(parse_julian("2024060"), "YYYYDDD")`, want: "2024060"},
		{src: `format_julian(parse_time("18991231", "YYYYMMDD"), "CYYDDD")`, err: "year 1899 has no CYYDDD form"},
		{src: `format_julian(record.nil, "CYYDDD")`, want: nil},
		{src: `format_julian(now(), "JJJ")`, err: `unknown Julian form "JJJ"`},
	})
}
