package agent

import (
	"bufio"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
)

// examplesDir holds Tetragon's example policies as published
// (test/testdata/tetragon/examples/README.md).
const examplesDir = "../../test/testdata/tetragon"

// examplesTable is the expected outcome of each example on each kind of
// kernel; TestTetragonExamples fails when the running kernel's outcome
// differs, so the table (and the census in docs/compatibility.md) stays
// true.
const examplesTable = "testdata/tetragon-examples.txt"

// refusalClasses are the reasons issue 18 allows an example to be refused
// for; any other refusal is a defect, and the table cannot name it.
var refusalClasses = map[string]string{
	// a uprobe or USDT target (a binary or library) missing on this system
	"binary": "the binary the hook is in does not exist here",
	// the kernel's configuration forbids the action on this hook (Override
	// without CONFIG_BPF_KPROBE_OVERRIDE, say)
	"kconfig": "the kernel's configuration forbids the action",
	// the running kernel lacks the hook mechanism the policy needs (a
	// kernel function hook without kprobes, fentry or BPF LSM, and that
	// the syscall-tracepoint mapping does not serve), or the function as
	// the policy declares it (an example for an older kernel)
	"kernel": "the running kernel lacks the hook mechanism or the hook as declared",
	// podSelector, namespaced policies: Kubernetes only
	"kubernetes": "a Kubernetes-only selector or kind",
	// a template, not a policy as published ({{.Pid}}, ${PODCIDR})
	"template": "the example is a template with placeholders",
	// a feature this agent has not built yet (issue 18)
	"unbuilt": "a feature not built yet",
	// wrong as published: Tetragon's own parser refuses it too (its
	// current one for FollowFD/UnfollowFD/CopyFD), or it names a buffer
	// as its own length
	"invalid": "the example is wrong as published",
}

// column names the kind of kernel by the features the probe found, not
// by the lane's name: host is a kernel without kprobes (this project's
// machines), debian-6.1 one with kprobes but no kprobe_multi, debian-6.12
// one with both. A kernel that differs in a way the outcomes depend on
// (override_return, say) has no column.
func column(r kernelfeatures.Report) (string, error) {
	switch {
	case r.Has(kernelfeatures.OverrideReturn):
		return "", fmt.Errorf("kernel %s has %s, which no column of %s describes", r.Kernel, kernelfeatures.OverrideReturn, examplesTable)
	case !r.Has(kernelfeatures.Kprobe):
		return "host", nil
	case !r.Has(kernelfeatures.Fentry) || !r.Has(kernelfeatures.BPFLSM) || !r.Has(kernelfeatures.FmodRet):
		return "", fmt.Errorf("kernel %s has kprobes but not fentry, fmod_ret and BPF LSM, which no column of %s describes", r.Kernel, examplesTable)
	case r.Has(kernelfeatures.KprobeMulti):
		return "debian-6.12", nil
	default:
		return "debian-6.1", nil
	}
}

// outcome is "loads", or "<class> <reason substring>" for a refusal.
type outcome struct {
	class, reason string
}

func (o outcome) String() string {
	if o.class == "loads" {
		return o.class
	}
	return o.class + " " + o.reason
}

// readExamplesTable reads lines "<path> <column> loads" and "<path>
// <column> <class> <reason substring>"; # starts a comment.
func readExamplesTable(t *testing.T) map[string]map[string]outcome {
	t.Helper()
	f, err := os.Open(examplesTable)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table := map[string]map[string]outcome{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.SplitN(line, " ", 4)
		if len(fields) < 3 {
			t.Fatalf("%s:%d: want <path> <column> loads|<class> <reason>: %q", examplesTable, n, line)
		}
		path, col, o := fields[0], fields[1], outcome{class: fields[2]}
		if o.class != "loads" {
			if _, ok := refusalClasses[o.class]; !ok || len(fields) < 4 {
				t.Fatalf("%s:%d: %q is no refusal class with a reason (classes: %v)", examplesTable, n, o.class, slices.Sorted(maps.Keys(refusalClasses)))
			}
			o.reason = fields[3]
		} else if len(fields) > 3 {
			t.Fatalf("%s:%d: a load has no reason: %q", examplesTable, n, line)
		}
		if table[path] == nil {
			table[path] = map[string]outcome{}
		}
		if _, dup := table[path][col]; dup {
			t.Fatalf("%s:%d: %s on %s given twice", examplesTable, n, path, col)
		}
		table[path][col] = o
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return table
}

// examplePolicies lists the example policy files, relative to examplesDir.
func examplePolicies(t *testing.T) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(examplesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			rel, err := filepath.Rel(examplesDir, p)
			if err != nil {
				return err
			}
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		t.Fatalf("no example policies under %s", examplesDir)
	}
	return paths
}

// TestTetragonExamples adds each of Tetragon's example policies, one at a
// time, through the agent's policy API (what `tetra tracingpolicy add`
// calls) on the running kernel, and compares the outcome with the table:
// a policy that loads must be listed with its hooks and then deleted; a
// refused one must be refused with the table's reason, and leave nothing
// loaded. The census (counts per outcome) is logged.
func TestTetragonExamples(t *testing.T) {
	a := startAgent(t)
	col, err := column(a.kernel)
	if err != nil {
		t.Skip(err)
	}
	t.Logf("kernel %s: column %s", a.kernel.Kernel, col)
	table := readExamplesTable(t)
	paths := examplePolicies(t)
	for p := range table {
		if !slices.Contains(paths, p) {
			t.Errorf("%s lists %s, which is not under %s", examplesTable, p, examplesDir)
		}
	}

	census := map[string]int{}
	var got []string
	for _, p := range paths {
		o := addExample(t, a, p)
		want, ok := table[p][col]
		if ok && o.class == "refused" && want.class != "loads" && strings.Contains(o.reason, want.reason) {
			// the refusal the table expects, counted under its class
			o.class = want.class
		}
		census[o.class]++
		got = append(got, fmt.Sprintf("%s %s %s", p, col, o))
		switch {
		case !ok:
			t.Errorf("%s on %s: %s; the table has no expectation", p, col, o)
		case o.class == want.class:
		case want.class == "loads":
			t.Errorf("%s on %s: refused (%s), the table says it loads", p, col, o.reason)
		case o.class == "loads":
			t.Errorf("%s on %s: loads, the table says %s", p, col, want)
		default:
			t.Errorf("%s on %s: refused with %q, the table says %s %q", p, col, o.reason, want.class, want.reason)
		}
	}
	var counts []string
	for _, c := range slices.Sorted(maps.Keys(census)) {
		counts = append(counts, fmt.Sprintf("%s %d", c, census[c]))
	}
	t.Logf("census on %s (%d examples): %s", col, len(paths), strings.Join(counts, ", "))
	// the outcomes as table lines; refusal classes are the table's to
	// name, so a refusal the table does not expect shows as "refused"
	t.Logf("outcomes on %s:\n%s", col, strings.Join(got, "\n"))
}

// addExample adds one example through the policy registry and returns its
// outcome; a loaded one is deleted again. A refusal's class is taken from
// the table by the caller: here it is "refused".
func addExample(t *testing.T, a *Agent, rel string) outcome {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(examplesDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	name, err := a.policies.Add(text)
	if err != nil {
		if st := a.Hooks().Status(); len(st) != 0 {
			t.Fatalf("%s was refused (%v), but %+v stays loaded", rel, err, st)
		}
		return outcome{class: "refused", reason: err.Error()}
	}
	loaded := false
	for _, p := range a.Hooks().Status() {
		if p.Name == name && len(p.Hooks) > 0 {
			loaded = true
		}
	}
	if !loaded {
		t.Errorf("%s: added as %q, but no hook of it is loaded: %+v", rel, name, a.Hooks().Status())
	}
	if err := a.policies.Delete(name); err != nil {
		t.Fatalf("%s: deleting %q: %v", rel, name, err)
	}
	if st := a.Hooks().Status(); len(st) != 0 {
		t.Fatalf("%s: deleted, but %+v stays loaded", rel, st)
	}
	return outcome{class: "loads"}
}
