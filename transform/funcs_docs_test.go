package transform

import (
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the generated parts of docs/functions.md and docs/stages.md")

// checkDocPart compares the part of file between begin and end (end "" means
// up to the next level-2 heading or the end of the file) with want, and
// rewrites it with -update-docs.
func checkDocPart(t *testing.T, file, begin, end, want string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil && !(*updateDocs && os.IsNotExist(err)) {
		t.Fatal(err)
	}
	doc := string(data)
	i := strings.Index(doc, begin)
	if i < 0 {
		if !*updateDocs {
			t.Fatalf("%s has no %q", file, begin)
		}
		if doc != "" && !strings.HasSuffix(doc, "\n\n") {
			doc = strings.TrimRight(doc, "\n") + "\n\n"
		}
		i = len(doc)
		doc += begin + "\n"
	}
	start := i + len(begin) + 1
	stop := len(doc)
	if end != "" {
		if j := strings.Index(doc[start:], end); j >= 0 {
			stop = start + j
		}
	} else if j := strings.Index(doc[start:], "\n## "); j >= 0 {
		stop = start + j + 1
	}
	if doc[start:stop] == want {
		return
	}
	if *updateDocs {
		doc = doc[:start] + want + doc[stop:]
		if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date; run go test ./transform -run Doc -update-docs\n--- have\n%s\n--- want\n%s", file, doc[start:stop], want)
}

func TestFunctionsDoc(t *testing.T) {
	var b strings.Builder
	for _, f := range Funcs() {
		sig, rest, _ := strings.Cut(f.Doc, " → ")
		b.WriteString("- `" + sig + "` → " + rest + "\n")
	}
	checkDocPart(t, "../docs/functions.md", "<!-- functions:begin -->", "<!-- functions:end -->", b.String())
}

func TestStagesDoc(t *testing.T) {
	var b strings.Builder
	b.WriteString("\nA pipeline's `stages:` is a list; each item has one key, the stage type, whose value configures it. " +
		"Stages run in order on each message; `route`, when present, is last. This section is generated from the " +
		"stage registry (`go test ./transform -run Doc -update-docs`).\n")
	for _, name := range Stages() {
		doc, _ := StageDocOf(name)
		b.WriteString("\n### " + name + "\n\n" + doc.Summary + "\n\n" + doc.Description + "\n")
		if doc.Example != "" {
			lines := strings.Split(strings.TrimRight(doc.Example, "\n"), "\n")
			b.WriteString("\n```yaml\nstages:\n")
			for i, l := range lines {
				prefix := "    "
				if i == 0 {
					prefix = "  - "
				}
				b.WriteString(prefix + l + "\n")
			}
			b.WriteString("```\n")
		}
		if doc.Schema != nil {
			js, err := json.MarshalIndent(doc.Schema, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString("\n<details><summary>JSON Schema of the value</summary>\n\n```json\n" + string(js) + "\n```\n\n</details>\n")
		}
	}
	checkDocPart(t, "../docs/stages.md", "## Stages", "", b.String())
}
