package policywatch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/hooks"
	"github.com/tetragon-lite/tetragon/pkg/policydir"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// recorder is a Loader that logs what the registry asks of the kernel
// side, and fails loads of calls named "fail_me" as an unmapped function
// would. The kernel side itself is covered by cmd/tetragon's e2e tests.
type recorder struct {
	ops    []string
	loaded map[string]bool
}

func (r *recorder) do(op string, p *tp.TracingPolicy) error {
	r.ops = append(r.ops, op+" "+p.Metadata.Name)
	if p.Spec.KProbes[0].Call == "fail_me" {
		return errors.New("fail_me: no such function")
	}
	r.loaded[p.Metadata.Name] = true
	return nil
}
func (r *recorder) LoadPolicy(p *tp.TracingPolicy) error    { return r.do("load", p) }
func (r *recorder) ReplacePolicy(p *tp.TracingPolicy) error { return r.do("replace", p) }
func (r *recorder) Unload(name string) error {
	r.ops = append(r.ops, "unload "+name)
	delete(r.loaded, name)
	return nil
}
func (r *recorder) Status() []hooks.PolicyStatus { return nil }

func policy(name, call string) string {
	return fmt.Sprintf("apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: %s\nspec:\n  kprobes:\n  - call: %s\n    syscall: false\n", name, call)
}

type fixture struct {
	t   *testing.T
	dir string
	rec *recorder
	reg *Registry
}

func newFixture(t *testing.T) *fixture {
	rec := &recorder{loaded: map[string]bool{}}
	return &fixture{t: t, dir: t.TempDir(), rec: rec, reg: NewRegistry(zerolog.Nop(), rec)}
}

func (f *fixture) write(name, content string) {
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// sync rescans and returns the loader calls it caused.
func (f *fixture) sync() []string {
	f.rec.ops = nil
	f.reg.Sync(policydir.Read([]string{f.dir}, nil))
	return f.rec.ops
}

func (f *fixture) expect(what string, got []string, want ...string) {
	f.t.Helper()
	if !slices.Equal(got, want) {
		f.t.Fatalf("%s: loader calls %q, want %q", what, got, want)
	}
}

func (f *fixture) entry(name string) Entry {
	f.t.Helper()
	for _, e := range f.reg.List() {
		if e.Name == name {
			return e
		}
	}
	f.t.Fatalf("no entry %q in %+v", name, f.reg.List())
	return Entry{}
}

func TestSyncLoadsReloadsAndUnloads(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", policy("a", "fd_install"))
	f.write("tetragon.yaml", "log-level: debug\n") // the agent's config: not a policy
	f.expect("first sync", f.sync(), "load a")
	f.expect("unchanged content", f.sync())

	f.write("a.yaml", policy("a", "security_file_open"))
	f.expect("changed content", f.sync(), "replace a")

	f.write("a.yaml", policy("a", "fail_me"))
	f.expect("failing version", f.sync(), "replace a")
	if e := f.entry("a"); e.State != Enabled || !strings.Contains(e.Error, "fail_me") || e.Policy.Spec.KProbes[0].Call != "security_file_open" {
		t.Fatalf("after a failing reload: %+v, want the last good version enabled with the error", e)
	}
	f.write("a.yaml", "kind: TracingPolicy\n  bad: [")
	f.expect("unparsable version", f.sync())
	if e := f.entry("a"); e.State != Enabled || !strings.Contains(e.Error, "a.yaml:") {
		t.Fatalf("after a broken edit: %+v", e)
	}
	os.Remove(filepath.Join(f.dir, "a.yaml"))
	f.expect("file removed", f.sync(), "unload a")
	if len(f.reg.List()) != 0 {
		t.Fatalf("entries left: %+v", f.reg.List())
	}
	if reloads, errs := f.reg.Counters(); reloads != 2 || errs != 2 {
		t.Fatalf("counters: %d loads, %d errors; want 2 and 2", reloads, errs)
	}
}

func TestSyncSameNameTwiceFirstWins(t *testing.T) {
	f := newFixture(t)
	f.write("1.yaml", policy("same", "fd_install"))
	f.write("2.yaml", policy("same", "security_file_open"))
	f.expect("two files, one name", f.sync(), "load same")
	if e := f.entry("same"); !strings.HasSuffix(e.Source, "1.yaml") || e.Error != "" {
		t.Fatalf("entry %+v, want 1.yaml's, without error", e)
	}
	f.expect("nothing changed", f.sync())
	// the first file goes: the second one's policy takes the name
	os.Remove(filepath.Join(f.dir, "1.yaml"))
	f.expect("first file removed", f.sync(), "unload same", "load same")
	if e := f.entry("same"); !strings.HasSuffix(e.Source, "2.yaml") {
		t.Fatalf("entry %+v, want 2.yaml's", e)
	}
}

func TestFileWithSeveralPolicies(t *testing.T) {
	f := newFixture(t)
	f.write("multi.yaml", policy("x", "fd_install")+"---\n"+policy("y", "fd_install"))
	f.expect("two documents", f.sync(), "load x", "load y")
	f.write("multi.yaml", policy("y", "security_file_open"))
	f.expect("one left", f.sync(), "replace y", "unload x")
}

func TestAPIPoliciesAndStates(t *testing.T) {
	f := newFixture(t)
	f.write("file.yaml", policy("from-file", "fd_install"))
	f.sync()
	keep := t.TempDir()
	if err := f.reg.PersistAPI(keep); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Add([]byte(policy("from-file", "fd_install"))); !errors.Is(err, hooks.ErrConflict) {
		t.Fatalf("adding a name a file has: %v", err)
	}
	if _, err := f.reg.Add([]byte(policy("api", "fd_install"))); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Delete("from-file"); err == nil || !strings.Contains(err.Error(), "remove the file") {
		t.Fatalf("deleting a file's policy: %v", err)
	}
	if err := f.reg.Disable("api"); err != nil || f.rec.loaded["api"] || f.entry("api").State != Disabled {
		t.Fatalf("disable: %v, loaded %v", err, f.rec.loaded)
	}
	if err := f.reg.Enable("api"); err != nil || !f.rec.loaded["api"] || f.entry("api").State != Enabled {
		t.Fatalf("enable: %v, loaded %v", err, f.rec.loaded)
	}

	// a new registry over the same directory loads what the API added
	g := newFixture(t)
	if err := g.reg.PersistAPI(keep); err != nil {
		t.Fatal(err)
	}
	if e := g.entry("api"); e.Source != SourceAPI || e.State != Enabled {
		t.Fatalf("after a restart: %+v", e)
	}
	if err := g.reg.Delete("api"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(keep); len(ents) != 0 {
		t.Fatalf("kept copies left after delete: %v", ents)
	}
	if err := g.reg.Delete("api"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestProblems: what does not enforce is reported, with its file; a bad
// edit that keeps the last good version, and a disabled policy, are not
// problems.
func TestProblems(t *testing.T) {
	f := newFixture(t)
	f.write("good.yaml", policy("good", "fd_install"))
	f.write("broken.yaml", "kind: TracingPolicy\n  bad: [")
	f.write("unloadable.yaml", policy("unloadable", "fail_me"))
	f.write("dup.yaml", policy("good", "security_file_open")+"---\n"+policy("other", "fd_install"))
	f.sync()
	var got []string
	for _, p := range f.reg.Problems() {
		got = append(got, filepath.Base(p.Source)+"|"+p.Policy+"|"+p.Detail())
	}
	want := []string{
		"broken.yaml||broken.yaml:2:",
		`good.yaml||policy "good": a policy of that name is already loaded from ` + filepath.Join(f.dir, "dup.yaml"),
		`unloadable.yaml|unloadable|policy "unloadable": fail_me: no such function`,
	}
	if len(got) != len(want) {
		t.Fatalf("problems %q, want %d like %q", got, len(want), want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("problem %d: %q, want it to start with %q", i, got[i], want[i])
		}
	}
	if p := f.reg.Problems(filepath.Join(f.dir, "dup.yaml")); len(p) != 0 {
		t.Fatalf("dup.yaml: %v", p)
	}

	// fixed (dup.yaml's change frees the name good.yaml was refused,
	// though good.yaml is unchanged), or broken again after a good
	// version, or disabled: enforcing or chosen
	f.write("broken.yaml", policy("was-broken", "fd_install"))
	f.write("unloadable.yaml", policy("unloadable", "fd_install"))
	f.write("dup.yaml", policy("other", "fd_install"))
	f.sync()
	f.write("broken.yaml", "kind: TracingPolicy\n  bad: [")
	f.sync()
	if p := f.reg.Problems(); len(p) != 0 {
		t.Fatalf("after the fixes and a bad edit of a good file: %v", p)
	}
	f.write("late.yaml", policy("late", "fail_me"))
	f.sync()
	if p := f.reg.Problems(); len(p) != 1 || p[0].Policy != "late" {
		t.Fatalf("a failing file added later: %v", p)
	}
	if err := f.reg.Disable("late"); err != nil {
		t.Fatal(err)
	}
	if p := f.reg.Problems(); len(p) != 0 {
		t.Fatalf("after disabling the failing policy: %v", p)
	}
}
