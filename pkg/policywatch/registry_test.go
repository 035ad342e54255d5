package policywatch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/hooks"
	"github.com/tetragon-lite/tetragon/pkg/policydir"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// recorder is a Loader that logs what the registry asks of the kernel
// side, and fails loads of calls named "fail_me" as an unmapped function
// would. The kernel side itself is covered by cmd/tetragon's e2e tests.
type recorder struct {
	ops    []string
	loaded map[string]bool
	// failWith, when set, fails every load, replace and unload as the
	// kernel side does when the agent is out of file descriptors
	failWith error
	// stale is what Sweep reports left
	stale int
}

func (r *recorder) do(op string, p *tp.TracingPolicy) error {
	r.ops = append(r.ops, op+" "+p.Metadata.Name)
	if r.failWith != nil {
		return r.failWith
	}
	if p.Spec.KProbes[0].Call == "fail_me" {
		return errors.New("fail_me: no such function")
	}
	r.loaded[p.Metadata.Name] = true
	return nil
}
func (r *recorder) Sweep() int                              { return r.stale }
func (r *recorder) LoadPolicy(p *tp.TracingPolicy) error    { return r.do("load", p) }
func (r *recorder) ReplacePolicy(p *tp.TracingPolicy) error { return r.do("replace", p) }
func (r *recorder) Unload(name string) error {
	r.ops = append(r.ops, "unload "+name)
	if r.failWith != nil {
		return r.failWith
	}
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
	log *bytes.Buffer
	// retry is what the last sync said
	retry bool
}

func newFixture(t *testing.T) *fixture {
	rec := &recorder{loaded: map[string]bool{}}
	log := &bytes.Buffer{}
	return &fixture{t: t, dir: t.TempDir(), rec: rec, reg: NewRegistry(zerolog.New(log), rec), log: log}
}

func (f *fixture) write(name, content string) {
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// sync rescans and returns the loader calls it caused.
func (f *fixture) sync() []string {
	return f.syncScan(policydir.Read([]string{f.dir}, nil))
}

func (f *fixture) syncScan(scan policydir.Scan) []string {
	f.rec.ops = nil
	f.retry = f.reg.Sync(scan)
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

// TestFIFOInPolicyDirectory: a symlink x.yaml to a FIFO no one writes to
// once hung the scan for good. It is reported with its place and kind, and
// the other files load.
func TestFIFOInPolicyDirectory(t *testing.T) {
	f := newFixture(t)
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fifo, filepath.Join(f.dir, "x.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(f.dir, "zero.yaml")); err != nil {
		t.Fatal(err)
	}
	f.write("z.yaml", policy("z", "fd_install"))
	done := make(chan []string, 1)
	go func() { done <- f.sync() }()
	select {
	case ops := <-done:
		f.expect("a FIFO, a device and a good file", ops, "load z")
	case <-time.After(10 * time.Second):
		t.Fatal("the scan blocks on the FIFO")
	}
	for _, want := range []string{"x.yaml: not a regular file (fifo)", "zero.yaml: not a regular file (character device)"} {
		if !strings.Contains(f.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, f.log)
		}
	}
	if f.retry {
		t.Error("a FIFO is not a passing trouble; no retry is due")
	}
}

// TestUnreadableDirectoryIsNotEmpty: a directory that cannot be listed
// (the agent out of file descriptors) once counted as "every file deleted"
// and unloaded them all. Its files keep their policies, a retry is asked
// for, and the next good scan loads what was added meanwhile.
func TestUnreadableDirectoryIsNotEmpty(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", policy("a", "fd_install"))
	f.expect("first sync", f.sync(), "load a")
	f.write("b.yaml", policy("b", "fd_install"))

	scan := policydir.Read([]string{f.dir}, nil)
	testutil.WithoutFreeFiles(t, func() { scan = policydir.Read([]string{f.dir}, nil) })
	if !slices.Equal(scan.Unreadable, []string{f.dir}) || !scan.Retry || len(scan.Files) != 0 {
		t.Fatalf("scan out of file descriptors: %+v", scan)
	}
	if len(scan.Warnings) != 1 || !strings.Contains(scan.Warnings[0].Error(), f.dir) || !strings.Contains(scan.Warnings[0].Error(), "too many open files") {
		t.Fatalf("warnings: %v, want one naming the directory and the error", scan.Warnings)
	}
	f.expect("unreadable directory", f.syncScan(scan))
	if e := f.entry("a"); e.State != Enabled || !f.rec.loaded["a"] || !f.retry {
		t.Fatalf("after an unreadable scan: %+v, loaded %v, retry %v", e, f.rec.loaded, f.retry)
	}
	f.expect("readable again", f.sync(), "load b")
	if f.retry || len(f.reg.List()) != 2 {
		t.Fatalf("after recovery: retry %v, %+v", f.retry, f.reg.List())
	}
}

// TestFailedUnloadKeepsThePolicy: a policy whose unload fails (its pins
// could not be removed) still enforces, so the registry keeps it, with
// the error, and unloads it on a later sync; it once forgot it while the
// pins kept killing, then loaded a second, untracked copy.
func TestFailedUnloadKeepsThePolicy(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", policy("a", "fd_install"))
	f.sync()
	os.Remove(filepath.Join(f.dir, "a.yaml"))
	f.rec.failWith = fmt.Errorf("removing pins: %w", syscall.EMFILE)
	f.expect("unload fails", f.sync(), "unload a")
	if e := f.entry("a"); e.State != Enabled || !strings.Contains(e.Error, "still enforcing") || !f.retry {
		t.Fatalf("after a failed unload: %+v, retry %v", e, f.retry)
	}
	// the file comes back before the retry: one copy, replaced
	f.rec.failWith = nil
	f.write("a.yaml", policy("a", "fd_install"))
	f.expect("file back", f.sync(), "replace a")
	os.Remove(filepath.Join(f.dir, "a.yaml"))
	f.rec.failWith = syscall.EMFILE
	f.sync()
	f.rec.failWith = nil
	f.expect("retry", f.sync(), "unload a")
	if len(f.reg.List()) != 0 || f.retry {
		t.Fatalf("after the retry: %+v, retry %v", f.reg.List(), f.retry)
	}
	// old versions the loader could not sweep yet keep the retries going
	f.rec.stale = 1
	if f.sync(); !f.retry {
		t.Fatal("stale versions left, and no retry asked for")
	}
}

// TestTransientLoadFailureIsRetried: a file whose load failed for want of
// file descriptors is loaded again by the next sync, unchanged.
func TestTransientLoadFailureIsRetried(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", policy("a", "fd_install"))
	f.rec.failWith = fmt.Errorf("loading: %w", syscall.EMFILE)
	f.expect("load fails", f.sync(), "load a")
	if e := f.entry("a"); e.State != LoadError || !f.retry {
		t.Fatalf("after a failed load: %+v, retry %v", e, f.retry)
	}
	f.rec.failWith = nil
	f.expect("retry", f.sync(), "load a")
	if e := f.entry("a"); e.State != Enabled || f.retry {
		t.Fatalf("after the retry: %+v, retry %v", e, f.retry)
	}
	// a failure that will not pass is not retried
	f.write("a.yaml", policy("a", "fail_me"))
	f.sync()
	if f.expect("no retry", f.sync()); f.retry {
		t.Fatal("retry asked for a policy that cannot load")
	}
}

// TestAddToReadOnlyAPIDirFails: with --keep-sensors-on-exit, "added"
// promises the policy survives a restart. Where the API policy directory
// is read-only, add fails with the reason and loads nothing.
func TestAddToReadOnlyAPIDirFails(t *testing.T) {
	testutil.RequireRoot(t) // a read-only mount: root writes through mode bits
	keep := t.TempDir()
	if err := syscall.Mount("tmpfs", keep, "tmpfs", syscall.MS_RDONLY, "size=64k"); err != nil {
		t.Fatalf("mounting a read-only tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(keep, syscall.MNT_DETACH) })
	for _, dir := range []string{keep, filepath.Join(keep, "missing")} {
		f := newFixture(t)
		err := f.reg.PersistAPI(dir)
		if (dir == keep) != (err == nil) {
			t.Fatalf("PersistAPI(%s): %v", dir, err)
		}
		_, err = f.reg.Add([]byte(policy("api", "fd_install")))
		if !errors.Is(err, ErrNotKept) || !strings.Contains(err.Error(), "read-only file system") || !strings.Contains(err.Error(), "--api-policy-dir") {
			t.Fatalf("add with %s read-only: %v", dir, err)
		}
		if len(f.rec.ops) != 0 || len(f.reg.List()) != 0 {
			t.Fatalf("add that cannot be kept: loader calls %q, entries %+v", f.rec.ops, f.reg.List())
		}
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
