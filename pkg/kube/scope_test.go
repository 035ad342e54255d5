package kube

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/policywatch"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

func TestSelects(t *testing.T) {
	c := Container{ID: idA, Name: "main", Namespace: "default", Labels: map[string]string{"class": "xwing", "org": "alliance"}}
	for _, tc := range []struct {
		name string
		s    compiler.Scope
		want bool
	}{
		{"empty", compiler.Scope{}, true},
		{"namespace", compiler.Scope{Namespace: "default"}, true},
		{"other namespace", compiler.Scope{Namespace: "kube-system"}, false},
		{"matchLabels", compiler.Scope{Pods: &tp.LabelSelector{MatchLabels: map[string]string{"class": "xwing"}}}, true},
		{"matchLabels other value", compiler.Scope{Pods: &tp.LabelSelector{MatchLabels: map[string]string{"class": "tiefighter"}}}, false},
		{"matchLabels missing", compiler.Scope{Pods: &tp.LabelSelector{MatchLabels: map[string]string{"app": ""}}}, false},
		{"In", compiler.Scope{Pods: &tp.LabelSelector{MatchExpressions: []tp.LabelSelectorRequirement{{Key: "org", Operator: "In", Values: []string{"empire", "alliance"}}}}}, true},
		{"NotIn", compiler.Scope{Pods: &tp.LabelSelector{MatchExpressions: []tp.LabelSelectorRequirement{{Key: "org", Operator: "NotIn", Values: []string{"alliance"}}}}}, false},
		{"NotIn absent", compiler.Scope{Pods: &tp.LabelSelector{MatchExpressions: []tp.LabelSelectorRequirement{{Key: "x", Operator: "NotIn", Values: []string{"y"}}}}}, true},
		{"Exists", compiler.Scope{Pods: &tp.LabelSelector{MatchExpressions: []tp.LabelSelectorRequirement{{Key: "class", Operator: "Exists"}}}}, true},
		{"DoesNotExist", compiler.Scope{Pods: &tp.LabelSelector{MatchExpressions: []tp.LabelSelectorRequirement{{Key: "class", Operator: "DoesNotExist"}}}}, false},
		{"container name", compiler.Scope{Containers: &tp.LabelSelector{MatchLabels: map[string]string{"name": "main"}}}, true},
		{"other container", compiler.Scope{Containers: &tp.LabelSelector{MatchLabels: map[string]string{"name": "sidecar"}}}, false},
		{"all of them", compiler.Scope{Namespace: "default", Pods: &tp.LabelSelector{MatchLabels: map[string]string{"class": "xwing"}},
			Containers: &tp.LabelSelector{MatchExpressions: []tp.LabelSelectorRequirement{{Key: "name", Operator: "In", Values: []string{"main"}}}}}, true},
	} {
		if got := Selects(tc.s, c); got != tc.want {
			t.Errorf("%s: Selects = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/sys/fs/cgroup/unified`: "/sys/fs/cgroup/unified", `/a\040b`: "/a b", `/a\0`: `/a\0`, `/x\9ab`: `/x\9ab`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCgroupTree finds a container's cgroup in the host's real cgroup v2
// hierarchy: a cgroup named as containerd names a pod's container, and one
// the container made below it.
func TestCgroupTree(t *testing.T) {
	testutil.RequireRoot(t) // creating cgroups
	tree := &cgroupTree{}
	root, err := tree.root()
	if err != nil {
		t.Fatalf("root: %v", err)
	}
	if mounted, err := cgroup2Mount("/proc/self/mountinfo"); err != nil || mounted != root {
		t.Fatalf("root %q, the mount table has %q (%v)", root, mounted, err)
	}
	parent := filepath.Join(root, "tetragon-test-kube-"+strings.Repeat("0", 8)+string(rune('a'+os.Getpid()%26)))
	ctr := filepath.Join(parent, "cri-containerd-"+idB+".scope")
	sub := filepath.Join(ctr, "sub")
	for _, d := range []string{parent, ctr, sub} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("creating cgroup: %v", err)
		}
	}
	t.Cleanup(func() {
		for _, d := range []string{sub, ctr, parent} {
			os.Remove(d)
		}
	})
	ids, err := tree.ids()
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for _, d := range []string{ctr, sub} {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			t.Fatal(err)
		}
		want = append(want, st.Ino)
	}
	got := slices.Sorted(slices.Values(ids[idB]))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("cgroups of %s: %v, want %v", idB[:8], got, want)
	}
}

// registryState is what a registry tells of its policies, as data.
type registryState struct {
	problems []policywatch.Problem
	entries  []policywatch.Entry
}

func (r registryState) Problems(paths ...string) []policywatch.Problem {
	var out []policywatch.Problem
	for _, p := range r.problems {
		if slices.Contains(paths, p.Source) {
			out = append(out, p)
		}
	}
	return out
}

func (r registryState) List() []policywatch.Entry { return r.entries }

func TestStatusState(t *testing.T) {
	src := "kubernetes:tracingpolicy/p"
	for _, tc := range []struct {
		name                string
		reg                 registryState
		typ, reason, inText string
	}{
		{"enforced", registryState{entries: []policywatch.Entry{{Name: "p", Source: src, State: policywatch.Enabled}}},
			"Normal", ReasonEnforced, "enforced on node n1"},
		{"not loaded", registryState{problems: []policywatch.Problem{{Source: src, Policy: "p", Err: "no such function"}},
			entries: []policywatch.Entry{{Name: "p", Source: src, State: policywatch.LoadError, Error: "no such function"}}},
			"Warning", ReasonNotEnforced, "not enforced on node n1: no such function"},
		{"bad edit", registryState{entries: []policywatch.Entry{{Name: "p", Source: src, State: policywatch.Enabled, Error: "bad operator"}}},
			"Warning", ReasonEditRefused, "the version before it still enforces: bad operator"},
		{"another object's", registryState{entries: []policywatch.Entry{{Name: "q", Source: src + "x", State: policywatch.Enabled}}},
			"", "", ""},
	} {
		typ, reason, msg := state(tc.reg, src, "n1")
		if typ != tc.typ || reason != tc.reason || !strings.Contains(msg, tc.inText) {
			t.Errorf("%s: %s %s %q, want %s %s with %q", tc.name, typ, reason, msg, tc.typ, tc.reason, tc.inText)
		}
	}
}
