package logship

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestManyHostsShowsTheTestedExample keeps docs/many-hosts.md's collector
// configuration the one TestCollectorShipsExportFile runs: the docs' YAML
// block after the link to docs/examples/otelcol.yaml must be that file less
// its comments and blank lines.
func TestManyHostsShowsTheTestedExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repo, "docs/many-hosts.md"))
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(filepath.Join(repo, "docs/examples/otelcol.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "(examples/otelcol.yaml)")
	if !ok {
		t.Fatal("docs/many-hosts.md does not link examples/otelcol.yaml")
	}
	_, block, ok := strings.Cut(after, "```yaml\n")
	if !ok {
		t.Fatal("docs/many-hosts.md has no yaml block after its link to examples/otelcol.yaml")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("docs/many-hosts.md: the example's yaml block is not closed")
	}
	var want []string
	for _, line := range strings.Split(string(example), "\n") {
		if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "#") {
			want = append(want, line)
		}
	}
	if got := strings.TrimRight(block, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("docs/many-hosts.md shows\n%s\nbut docs/examples/otelcol.yaml (less comments) is\n%s", got, strings.Join(want, "\n"))
	}
}
