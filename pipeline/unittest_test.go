package pipeline

import (
	"strings"
	"testing"
)

func TestRunTestFile(t *testing.T) {
	files, err := FindTestFiles("testdata/unit")
	if err != nil || len(files) != 1 {
		t.Fatalf("FindTestFiles = %v, %v", files, err)
	}
	results, err := RunTestFile(files[0], LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 {
		t.Fatalf("%d results", len(results))
	}
	if !results[0].Passed() || !results[1].Passed() {
		t.Fatalf("passing tests failed: %+v", results[:2])
	}
	// The third test is wrong on purpose: amount is 1, not 2, and EXTRA is unexpected.
	if results[2].Passed() {
		t.Fatal("a wrong expectation passed")
	}
	all := strings.Join(results[2].Failures, "\n")
	for _, want := range []string{"amount:", "- want 2", "+ got  1", "EXTRA: unexpected field"} {
		if !strings.Contains(all, want) {
			t.Errorf("failure output lacks %q:\n%s", want, all)
		}
	}
}
