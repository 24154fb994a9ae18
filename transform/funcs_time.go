package transform

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // IANA zones even on hosts without /usr/share/zoneinfo
)

// Date and time functions. Layouts are Go layouts ("2006-01-02 15:04:05")
// or one of the names in namedLayouts, including the COBOL-style YYYYMMDD
// and the Julian forms YYDDD, CYYDDD and YYYYDDD. Time zones are IANA names
// ("Europe/Paris"); parsing defaults to UTC so results do not depend on the
// host.

var locationType = reflect.TypeOf((*time.Location)(nil))

// namedLayouts are layout names accepted wherever a layout is.
var namedLayouts = map[string]string{
	"RFC3339":        time.RFC3339,
	"RFC3339Nano":    time.RFC3339Nano,
	"RFC1123":        time.RFC1123,
	"RFC1123Z":       time.RFC1123Z,
	"DateTime":       time.DateTime,
	"DateOnly":       time.DateOnly,
	"TimeOnly":       time.TimeOnly,
	"YYYYMMDD":       "20060102",
	"YYMMDD":         "060102",
	"YYYY-MM-DD":     "2006-01-02",
	"HHMMSS":         "150405",
	"HHMM":           "1504",
	"YYYYMMDDHHMMSS": "20060102150405",
}

// Julian date forms: DDD is the day of the year (001-366). YY alone pivots
// like Go's two-digit years (69-99 are 19YY, 00-68 are 20YY); C is IBM's
// century digit: 0 is 19YY, 1 is 20YY, up to 9.
const (
	julianYYDDD   = "YYDDD"
	julianCYYDDD  = "CYYDDD"
	julianYYYYDDD = "YYYYDDD"
)

func julianWidth(form string) int {
	switch form {
	case julianYYDDD:
		return 5
	case julianCYYDDD:
		return 6
	case julianYYYYDDD:
		return 7
	}
	return 0
}

func init() {
	tz := libParam{"tz", kTZ}
	t := libParam{"t", kTime}
	layout := libParam{"layout", kStr}
	registerLib(
		libFunc{name: "parse_time", params: []libParam{{"s", kStr}, layout, tz}, opt: 1,
			doc: "parse_time(s, layout[, tz]) → time: s read with a Go layout or a named one (YYYYMMDD, YYMMDD, CYYDDD, RFC3339, ...), in time zone tz (IANA name, default UTC) unless s names its zone; an integer is zero-padded to the layout's width; nil, a blank string or all zeros (\"00000000\") give nil",
			fn:  parseTime},
		libFunc{name: "format_time", params: []libParam{t, layout, tz}, opt: 1,
			doc: "format_time(t, layout[, tz]) → string: t written with a Go or named layout, after conversion to time zone tz when given; nil gives nil",
			fn: func(a []any) (any, error) {
				tm, ok, err := timeOf(0, "t", a[0])
				if err != nil || !ok {
					return nil, err
				}
				if len(a) > 2 {
					loc, err := locationArg(2, a[2])
					if err != nil {
						return nil, err
					}
					tm = tm.In(loc)
				}
				l, err := layoutArg(1, a[1])
				if err != nil {
					return nil, err
				}
				if julianWidth(l) > 0 {
					return formatJulian(tm, l)
				}
				return tm.Format(l), nil
			}},
		libFunc{name: "parse_julian", params: []libParam{{"s", kStr}, {"form", kStr}}, opt: 1,
			doc: "parse_julian(s[, form]) → time: a Julian date YYDDD, CYYDDD (C: 0 = 19YY, 1 = 20YY, ...) or YYYYDDD as midnight UTC; without form the length of s decides (5, 6 or 7 digits), so give form for integers; nil, blank or all zeros give nil",
			fn: func(a []any) (any, error) {
				form := ""
				if len(a) > 1 {
					f, err := julianForm(1, a[1])
					if err != nil {
						return nil, err
					}
					form = f
				}
				s, ok, err := dateText(a[0], julianWidth(form))
				if err != nil || !ok {
					return nil, err
				}
				return parseJulian(s, form)
			}},
		libFunc{name: "format_julian", params: []libParam{t, {"form", kStr}},
			doc: "format_julian(t, form) → string: t's date as YYDDD, CYYDDD or YYYYDDD: format_julian(t, \"CYYDDD\") is \"124001\" for 2024-01-01; nil gives nil",
			fn: func(a []any) (any, error) {
				tm, ok, err := timeOf(0, "t", a[0])
				if err != nil || !ok {
					return nil, err
				}
				form, err := julianForm(1, a[1])
				if err != nil {
					return nil, err
				}
				return formatJulian(tm, form)
			}},
		libFunc{name: "today", params: []libParam{layout, tz}, opt: 1, out: stringType,
			doc: "today(layout[, tz]) → string: the current date (and time, if the layout has one) written with layout, in time zone tz (default: the agent's local zone): today(\"YYYYMMDD\")",
			fn: func(a []any) (any, error) {
				l, err := layoutArg(0, a[0])
				if err != nil {
					return nil, err
				}
				now := time.Now()
				if len(a) > 1 {
					loc, err := locationArg(1, a[1])
					if err != nil {
						return nil, err
					}
					now = now.In(loc)
				}
				if julianWidth(l) > 0 {
					return formatJulian(now, l)
				}
				return now.Format(l), nil
			}},
		libFunc{name: "to_timezone", params: []libParam{t, tz},
			doc: "to_timezone(t, tz) → time: the same instant in time zone tz (IANA name); nil gives nil",
			fn: func(a []any) (any, error) {
				tm, ok, err := timeOf(0, "t", a[0])
				if err != nil || !ok {
					return nil, err
				}
				loc, err := locationArg(1, a[1])
				if err != nil {
					return nil, err
				}
				return tm.In(loc), nil
			}},
		libFunc{name: "add_duration", params: []libParam{t, {"d", kAny}},
			doc: "add_duration(t, d) → time: t plus d, a duration or a duration string (\"90m\", \"-1h30m\", \"36h\"); nil gives nil. t + duration(\"1h\") and t - duration(\"1h\") work too",
			fn: func(a []any) (any, error) {
				tm, ok, err := timeOf(0, "t", a[0])
				if err != nil || !ok {
					return nil, err
				}
				var d time.Duration
				switch x := a[1].(type) {
				case time.Duration:
					d = x
				case string:
					d, err = time.ParseDuration(strings.TrimSpace(x))
					if err != nil {
						return nil, fmt.Errorf("argument 2 (d): %q is not a duration like 90m or -1h30m", x)
					}
				default:
					return nil, argError(1, "d", "a duration", a[1])
				}
				return tm.Add(d), nil
			}},
		libFunc{name: "add_days", params: []libParam{t, {"n", kInt}},
			doc: "add_days(t, n) → time: t plus n calendar days (negative n goes back), keeping the wall clock across daylight-saving changes; nil gives nil",
			fn: func(a []any) (any, error) {
				tm, ok, err := timeOf(0, "t", a[0])
				if err != nil || !ok {
					return nil, err
				}
				n, err := intOf(1, "n", a[1])
				if err != nil {
					return nil, err
				}
				if n > 1e6 || n < -1e6 {
					return nil, fmt.Errorf("argument 2 (n) must be between -1000000 and 1000000, got %d", n)
				}
				return tm.AddDate(0, 0, int(n)), nil
			}},
		libFunc{name: "unix", params: []libParam{t},
			doc: "unix(t) → int: seconds since 1970-01-01 UTC; nil gives nil",
			fn:  func(a []any) (any, error) { return unixOf(a[0], time.Time.Unix) }},
		libFunc{name: "unix_millis", params: []libParam{t},
			doc: "unix_millis(t) → int: milliseconds since 1970-01-01 UTC; nil gives nil",
			fn:  func(a []any) (any, error) { return unixOf(a[0], time.Time.UnixMilli) }},
		libFunc{name: "from_unix", params: []libParam{{"n", kInt}, tz}, opt: 1,
			doc: "from_unix(n[, tz]) → time: the time n seconds after 1970-01-01 UTC, in time zone tz (default UTC); nil gives nil",
			fn:  func(a []any) (any, error) { return fromUnix(a, func(n int64) time.Time { return time.Unix(n, 0) }) }},
		libFunc{name: "from_unix_millis", params: []libParam{{"n", kInt}, tz}, opt: 1,
			doc: "from_unix_millis(n[, tz]) → time: the time n milliseconds after 1970-01-01 UTC, in time zone tz (default UTC); nil gives nil",
			fn:  func(a []any) (any, error) { return fromUnix(a, time.UnixMilli) }},
	)
	prepTZ := func(s string) (any, error) { return loadLocation(s) }
	for name, i := range map[string]int{"parse_time": 2, "format_time": 2, "today": 1, "to_timezone": 1, "from_unix": 1, "from_unix_millis": 1} {
		constArgs[name] = append(constArgs[name], constArg{index: i, typ: locationType, prepare: prepTZ})
	}
	// A julian form or a layout name can be checked, not prepared.
	checkForm := func(s string) (any, error) {
		if julianWidth(s) == 0 {
			return nil, fmt.Errorf("unknown Julian form %q (known: YYDDD, CYYDDD, YYYYDDD)", s)
		}
		return nil, nil
	}
	constArgs["format_julian"] = append(constArgs["format_julian"], constArg{index: 1, prepare: checkForm})
	constArgs["parse_julian"] = append(constArgs["parse_julian"], constArg{index: 1, prepare: checkForm})
}

var locations sync.Map // IANA name → *time.Location

// loadLocation loads a time zone once; time.LoadLocation reads a file.
func loadLocation(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("empty time zone name")
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (want an IANA name like Europe/Paris, or UTC)", name)
	}
	locations.Store(name, l)
	return l, nil
}

func locationArg(i int, v any) (*time.Location, error) {
	switch x := v.(type) {
	case *time.Location:
		return x, nil
	case string:
		l, err := loadLocation(x)
		if err != nil {
			return nil, fmt.Errorf("argument %d (tz): %w", i+1, err)
		}
		return l, nil
	}
	return nil, argError(i, "tz", "a time zone name", v)
}

func layoutArg(i int, v any) (string, error) {
	s, ok := v.(string)
	if !ok || s == "" {
		return "", argError(i, "layout", "a layout string", v)
	}
	if l, ok := namedLayouts[s]; ok {
		return l, nil
	}
	return s, nil
}

func julianForm(i int, v any) (string, error) {
	s, ok := v.(string)
	if !ok || julianWidth(s) == 0 {
		return "", argError(i, "form", "YYDDD, CYYDDD or YYYYDDD", v)
	}
	return s, nil
}

// dateText reads a date argument as text: an integer is zero-padded to
// width (when known). ok is false for nil, a blank string or all zeros.
func dateText(v any, width int) (string, bool, error) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", false, nil
	case string:
		s = strings.TrimSpace(x)
	case []byte:
		s = strings.TrimSpace(string(x))
	default:
		n, err := intOf(0, "s", v)
		if err != nil {
			return "", false, argError(0, "s", "a string or an integer", v)
		}
		if n < 0 {
			return "", false, fmt.Errorf("argument 1 (s): a date cannot be negative, got %d", n)
		}
		s = strconv.FormatInt(n, 10)
		if len(s) < width {
			s = strings.Repeat("0", width-len(s)) + s
		}
	}
	if strings.Trim(s, "0") == "" {
		return "", false, nil
	}
	return s, true, nil
}

func parseTime(a []any) (any, error) {
	if tm, ok := a[0].(time.Time); ok {
		return tm, nil
	}
	l, err := layoutArg(1, a[1])
	if err != nil {
		return nil, err
	}
	width := julianWidth(l)
	if width == 0 && strings.Trim(l, "0123456789") == "" {
		width = len(l)
	}
	s, ok, err := dateText(a[0], width)
	if err != nil || !ok {
		return nil, err
	}
	if julianWidth(l) > 0 {
		t, err := parseJulian(s, l)
		if err != nil || len(a) < 3 {
			return t, err
		}
		loc, err := locationArg(2, a[2])
		if err != nil {
			return nil, err
		}
		tm := t.(time.Time)
		return time.Date(tm.Year(), tm.Month(), tm.Day(), 0, 0, 0, 0, loc), nil
	}
	loc := time.UTC
	if len(a) > 2 {
		if loc, err = locationArg(2, a[2]); err != nil {
			return nil, err
		}
	}
	t, err := time.ParseInLocation(l, s, loc)
	if err != nil {
		var pe *time.ParseError
		if errors.As(err, &pe) && pe.Message != "" {
			return nil, fmt.Errorf("%q does not match layout %q%s", s, a[1], pe.Message)
		}
		return nil, fmt.Errorf("%q does not match layout %q", s, a[1])
	}
	return t, nil
}

// parseJulian reads a Julian date; form "" infers it from the length.
func parseJulian(s, form string) (any, error) {
	if form == "" {
		switch len(s) {
		case 5:
			form = julianYYDDD
		case 6:
			form = julianCYYDDD
		case 7:
			form = julianYYYYDDD
		default:
			return nil, fmt.Errorf("%q is not a Julian date (want 5, 6 or 7 digits: YYDDD, CYYDDD or YYYYDDD)", s)
		}
	}
	if len(s) != julianWidth(form) || strings.Trim(s, "0123456789") != "" {
		return nil, fmt.Errorf("%q is not a %s Julian date (want %d digits)", s, form, julianWidth(form))
	}
	n, _ := strconv.Atoi(s)
	day := n % 1000
	var year int
	switch form {
	case julianYYDDD:
		year = n / 1000
		if year < 69 {
			year += 2000
		} else {
			year += 1900
		}
	case julianCYYDDD:
		year = 1900 + n/1000
	default:
		year = n / 1000
	}
	last := 365
	if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		last = 366
	}
	if day < 1 || day > last {
		return nil, fmt.Errorf("%q: day of year %d is out of range for %d (1-%d)", s, day, year, last)
	}
	return time.Date(year, 1, day, 0, 0, 0, 0, time.UTC), nil
}

func formatJulian(t time.Time, form string) (any, error) {
	y, d := t.Year(), t.YearDay()
	switch form {
	case julianYYDDD:
		return fmt.Sprintf("%02d%03d", y%100, d), nil
	case julianCYYDDD:
		if y < 1900 || y > 2899 {
			return nil, fmt.Errorf("year %d has no CYYDDD form (1900-2899)", y)
		}
		return fmt.Sprintf("%d%02d%03d", (y-1900)/100, y%100, d), nil
	}
	if y < 0 || y > 9999 {
		return nil, fmt.Errorf("year %d has no YYYYDDD form", y)
	}
	return fmt.Sprintf("%04d%03d", y, d), nil
}

func unixOf(v any, f func(time.Time) int64) (any, error) {
	t, ok, err := timeOf(0, "t", v)
	if err != nil || !ok {
		return nil, err
	}
	return f(t), nil
}

func fromUnix(a []any, f func(int64) time.Time) (any, error) {
	if a[0] == nil {
		return nil, nil
	}
	n, err := intOf(0, "n", a[0])
	if err != nil {
		return nil, err
	}
	loc := time.UTC
	if len(a) > 1 {
		if loc, err = locationArg(1, a[1]); err != nil {
			return nil, err
		}
	}
	return f(n).In(loc), nil
}
