package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/pipeline"

	_ "github.com/sluicehq/sluice/adapters/all"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// Every pipeline snippet in the README and docs/ must validate, and a
// snippet introduced by a link to a repository file must be that file, so
// the front door cannot drift from what runs.
func TestDocumentationSnippets(t *testing.T) {
	root := repoRoot(t)
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	env := func(name string) (string, bool) { return "placeholder", true }
	checked, linked := 0, 0
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, m := range yamlBlock.FindAllStringSubmatchIndex(text, -1) {
			snippet := text[m[2]:m[3]]
			if !strings.HasPrefix(snippet, "pipelines:") {
				continue
			}
			checked++
			name := filepath.Base(doc)
			if _, err := pipeline.LoadBytes(name, []byte(snippet), pipeline.LoadOptions{Env: env}); err != nil {
				t.Errorf("%s: a pipeline snippet does not validate:\n%v", name, err)
			}
			// "### Title ([path/to/file.yaml](path/to/file.yaml))" before the block
			head := text[:m[0]]
			if i := strings.LastIndex(head, "\n#"); i >= 0 {
				line := head[i:]
				if lm := regexp.MustCompile(`\]\(([^)]+\.yaml)\)`).FindStringSubmatch(line); lm != nil {
					file, err := os.ReadFile(filepath.Join(filepath.Dir(doc), lm[1]))
					if err != nil {
						t.Errorf("%s links %s: %v", name, lm[1], err)
					} else if linked++; !strings.Contains(string(file), strings.TrimSpace(snippet)) {
						t.Errorf("%s: the snippet under %q differs from %s", name, strings.TrimSpace(line), lm[1])
					}
				}
			}
		}
	}
	if checked == 0 || linked == 0 {
		t.Fatalf("%d pipeline snippets found, %d linked to their file; the README's tour should have one of each", checked, linked)
	}
}
