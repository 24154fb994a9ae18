package copybook

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyntaxErrors checks that each kind of copybook error names the file
// and the line at fault, both from the parser and through the codec config.
func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		want      string
	}{
		{"unclosed literal", "01 R.\n  05 A PIC X VALUE 'ABC.\n", 2, "literal 'ABC. is not closed"},
		{"bad level", "01 R.\n  55 A PIC X.\n", 2, "invalid level number 55"},
		{"no level", "01 R.\n  05 A PIC X.\n  B PIC X.\n", 3, `want a level number, got "B"`},
		{"copy", "01 R.\n  05 A PIC X.\n COPY OTHER.\n", 3, "COPY statements are not supported"},
		{"bad repetition", "01 R.\n  05 A PIC 9(5.\n", 2, "PIC 9(5: repetition count without ')'"},
		{"zero repetition", "01 R.\n  05 A PIC X(0).\n", 2, "invalid repetition count (0)"},
		{"national", "01 R.\n  05 A PIC N(5).\n", 2, "national and DBCS pictures"},
		{"mixed picture", "01 R.\n  05 A PIC X9Z.\n", 2, "mixes alphanumeric and numeric editing symbols"},
		{"two V", "01 R.\n  05 A PIC 9V9V9.\n", 2, "more than one V"},
		{"S not first", "01 R.\n  05 A PIC 9S9.\n", 2, "the S must come first"},
		{"P in middle", "01 R.\n  05 A PIC 9P9.\n", 2, "the Ps must be at one end"},
		{"CR not last", "01 R.\n  05 A PIC 9CR9.\n", 2, "the CR or DB must end the picture"},
		{"too many digits", "01 R.\n  05 A PIC 9(39).\n", 2, "39 digits is more than 38"},
		{"unknown clause", "01 R.\n  05 A PIC X COLOUR RED.\n", 2, `unknown clause "COLOUR" in the entry of A`},
		{"pointer", "01 R.\n  05 A USAGE POINTER.\n", 2, "USAGE POINTER is not supported"},
		{"two usages", "01 R.\n  05 A PIC 9 COMP COMP-3.\n", 2, "A has two different usages"},
		{"two pictures", "01 R.\n  05 A PIC 9 PIC X.\n", 2, "A has two PICTURE clauses"},
		{"range without depending", "01 R.\n  05 N PIC 9.\n  05 A PIC X OCCURS 1 TO 5.\n", 3, "OCCURS 1 TO 5 needs DEPENDING ON"},
		{"range reversed", "01 R.\n  05 N PIC 9.\n  05 A PIC X OCCURS 5 TO 1 DEPENDING ON N.\n", 3, "the maximum is below the minimum"},
		{"occurs count", "01 R.\n  05 A PIC X OCCURS MANY TIMES.\n", 2, `want a number of occurrences, got "MANY"`},
		{"occurs too many", "01 R.\n  05 A PIC X OCCURS 2000000.\n", 2, "OCCURS 2000000 is more than 1000000"},
		{"depending unknown", "01 R.\n  05 A PIC X OCCURS 1 TO 5 DEPENDING ON CNT.\n", 2, "DEPENDING ON CNT: no such item"},
		{"depending after", "01 R.\n  05 A PIC X OCCURS 1 TO 5 DEPENDING ON CNT.\n  05 CNT PIC 9.\n", 2, "the counter must come before the table"},
		{"depending not integer", "01 R.\n  05 CNT PIC X.\n  05 A PIC X OCCURS 1 TO 5 DEPENDING ON CNT.\n", 3, "the counter must be an integer item"},
		{"depending ambiguous", "01 R.\n  05 G1.\n    10 CNT PIC 9.\n  05 G2.\n    10 CNT PIC 9.\n  05 A PIC X OCCURS 1 TO 5 DEPENDING ON CNT.\n", 6, "the name is ambiguous"},
		{"redefines not adjacent", "01 R.\n  05 A PIC X(4).\n  05 B PIC X(4).\n  05 C REDEFINES A PIC 9(4).\n", 4, "C REDEFINES A: it must follow A at the same level"},
		{"redefines occurs", "01 R.\n  05 A PIC X OCCURS 4.\n  05 C REDEFINES A PIC 9(4).\n", 3, "items with OCCURS cannot redefine"},
		{"duplicate", "01 R.\n  05 A-B PIC X.\n  05 A_B PIC X.\n", 3, "A_B: duplicate name in group R (first at line 2)"},
		{"no picture", "01 R.\n  05 A.\n  05 B PIC X.\n", 2, "A has no PICTURE"},
		{"picture and children", "01 R.\n  05 A PIC X.\n    10 B PIC X.\n", 3, "A has a PICTURE, so it cannot have subordinate items like B"},
		{"77 children", "77 A PIC X.\n  05 B PIC X.\n", 2, "level 77 items cannot have subordinate items"},
		{"sign unsigned", "01 R.\n  05 A PIC 9(3) SIGN LEADING.\n", 2, "a SIGN clause needs a signed numeric picture"},
		{"sign keyword", "01 R.\n  05 A PIC S9(3) SIGN SEPARATE.\n", 2, "SIGN needs LEADING or TRAILING"},
		{"justified numeric", "01 R.\n  05 A PIC 9(3) JUSTIFIED RIGHT.\n", 2, "JUSTIFIED applies to alphanumeric items only"},
		{"comp-1 picture", "01 R.\n  05 A PIC 9(3) COMP-1.\n", 2, "COMP-1 and COMP-2 items take no PICTURE"},
		{"alnum packed", "01 R.\n  05 A PIC X(3) COMP-3.\n", 2, "PIC X(3) cannot have a binary or packed USAGE"},
		{"binary too wide", "01 R.\n  05 A PIC 9(19) COMP.\n", 2, "binary items hold at most 18 digits"},
		{"sync in occurs", "01 R.\n  05 T OCCURS 3.\n    10 A PIC S9(4) COMP SYNC.\n", 3, "SYNCHRONIZED inside OCCURS is not supported"},
		{"usage differs from group", "01 R.\n  05 G COMP-3.\n    10 A PIC 9 COMP.\n", 3, "USAGE differs from its group's"},
		{"renames unknown", "01 R.\n  05 A PIC X.\n66 X RENAMES NOPE.\n", 3, "RENAMES NOPE: no such item"},
		{"renames level", "01 R.\n  05 A PIC X RENAMES B.\n", 2, "RENAMES is only allowed at level 66"},
		{"66 without renames", "01 R.\n  05 A PIC X.\n66 X.\n", 3, "needs a RENAMES clause"},
		{"occurs at 01", "01 R OCCURS 2.\n  05 A PIC X.\n", 1, "OCCURS is not allowed at level 01"},
		{"value not literal", "01 R.\n  05 A PIC X VALUE.\n", 2, "VALUE needs a literal"},
		{"blank when", "01 R.\n  05 A PIC 9 BLANK WHEN.\n", 2, "BLANK needs WHEN ZERO"},
		{"bad name", "01 R.\n  05 A$B PIC X.\n", 2, `invalid data name "A$B"`},
		{"missing period", "01 R.\n  05 A PIC X", 2, "unexpected end of copybook: want a clause or a period"},
		{"empty", "      * nothing here\n", 1, "no data description entries"},
		{"only 88", "88 A VALUE 1.\n", 1, "no records"},
		{"group of nothing", "01 R.\n  66 X RENAMES R.\n", 1, "R has no PICTURE"},
		{"edited no digits", "01 R.\n  05 A PIC ,,,.\n", 2, "an edited picture needs digit positions"},
		{"float edited", "01 R.\n  05 A PIC +9.9E+99.\n", 2, "floating-point edited pictures"},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".cpy")
			if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			prefix := fmt.Sprintf("copybook %s:%d: ", path, tc.line)
			_, err := buildCodec("copybook: "+path+"\nsource_format: free\n", "pipe.yaml")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), prefix) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got  %v\nwant %s...%s", err, prefix, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "pipe.yaml: codec.copybook: ") {
				t.Errorf("config error does not name the config key: %v", err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	multi := filepath.Join(dir, "multi.cpy")
	if err := os.WriteFile(multi, []byte("01 A.\n  05 X PIC X.\n01 B.\n  05 Y PIC X.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ conf, want string }{
		{"copybook: " + multi, "codec.record: copybook " + multi + " defines several records (A, B): set record to choose one"},
		{"copybook: " + multi + "\nrecord: C", `codec.record: copybook ` + multi + ` has no record "C" (records: A, B)`},
		{"copybook: " + filepath.Join(dir, "missing.cpy"), "codec.copybook: read copybook: open " + filepath.Join(dir, "missing.cpy")},
		{"copybook: " + multi + "\nrecord: A\nencoding: cp999", `codec.encoding: invalid value "cp999"`},
		{"copybook: " + multi + "\nrecord: A\nrecord_format: vb", `codec.record_format: invalid value "vb" (allowed: fixed, variable, text)`},
		{"record: A", "codec.copybook: required string is missing"},
	}
	for _, tc := range tests {
		_, err := buildCodec(tc.conf, "pipe.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.conf, err, tc.want)
		}
	}
	if _, err := buildCodec("copybook: "+multi+"\nrecord: b", "pipe.yaml"); err != nil {
		t.Errorf("record names are case-insensitive: %v", err)
	}
}

func TestSourceFormats(t *testing.T) {
	fixed := strings.Join([]string{
		"000100* comment line with 01 LEVEL that is not code",
		fmt.Sprintf("%-72s%s", "000200 01  REC.", "IDENT001"),
		"000300     05  LONG-NAME-SPLIT-AC",
		"000400-        ROSS-LINES PIC X(2).",
		"000500D    05  DEBUG-ONLY PIC X.",
		"000600/    page eject",
		"000700     05  LIT PIC X(3) VALUE 'A B",
		"000800-    'C'.",
		"000900     05  NUM PIC 9(3) VALUE 12. 05 NEXT-ONE PIC X.",
		"001000     05  SPLIT-CLAUSE PIC",
		"001100         S9(3)V99",
		"001200         COMP-3.",
	}, "\n")
	roots, err := parseCopybook("f.cpy", []byte(fixed), formatAuto)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ch := range roots[0].children {
		names = append(names, ch.name)
	}
	if got := strings.Join(names, ","); got != "LONG-NAME-SPLIT-ACROSS-LINES,LIT,NUM,NEXT-ONE,SPLIT-CLAUSE" {
		t.Errorf("fixed: items %s", got)
	}
	free := "*> free format\n01 REC. *> a record\n   05 A PIC X(2).\n      05 B PIC S9(3)V99\n   COMP-3.\n"
	roots, err = parseCopybook("f.cpy", []byte(free), formatAuto)
	if err != nil || len(roots[0].children) != 2 || roots[0].children[1].usage != usagePacked {
		t.Fatalf("free: %v %+v", err, roots)
	}
	if detectFormat(strings.Split(fixed, "\n")) != formatFixed || detectFormat(strings.Split(free, "\n")) != formatFree {
		t.Error("format detection")
	}
}

func TestPictures(t *testing.T) {
	tests := []struct {
		pic                 string
		class               picClass
		size, digits, scale int
		signed              bool
	}{
		{"X(10)", picAlnum, 10, 0, 0, false},
		{"XXBXX", picAlnum, 5, 0, 0, false},
		{"A(3)", picAlnum, 3, 0, 0, false},
		{"9(5)V99", picNumeric, 7, 7, 2, false},
		{"S9(5)V9(2)", picNumeric, 7, 7, 2, true},
		{"s9v9", picNumeric, 2, 2, 1, true},
		{"SV99", picNumeric, 2, 2, 2, true},
		{"9(3)PP", picNumeric, 3, 3, -2, false},
		{"PPP99", picNumeric, 2, 2, 5, false},
		{"VPP99", picNumeric, 2, 2, 4, false},
		{"ZZ9.99", picEdited, 6, 5, 2, false},
		{"-9(3).99", picEdited, 7, 5, 2, true},
		{"$$,$$9.99CR", picEdited, 11, 6, 2, true},
		{"+++9", picEdited, 4, 3, 0, true},
		{"**,**9.99", picEdited, 9, 7, 2, false},
		{"99/99/99", picEdited, 8, 6, 0, false},
		{"ZZZV99", picEdited, 5, 5, 2, false},
	}
	for _, tc := range tests {
		p, err := parsePicture(tc.pic)
		if err != nil {
			t.Errorf("%s: %v", tc.pic, err)
			continue
		}
		if p.class != tc.class || p.size != tc.size || p.digits != tc.digits || p.scale != tc.scale || p.signed != tc.signed {
			t.Errorf("%s: got class %d size %d digits %d scale %d signed %v", tc.pic, p.class, p.size, p.digits, p.scale, p.signed)
		}
	}
}
