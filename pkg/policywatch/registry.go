// Package policywatch keeps the loaded policies in step with the policy
// files on disk and with what clients add through the API.
package policywatch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/hooks"
	"github.com/tetragon-lite/tetragon/pkg/policydir"
	"github.com/tetragon-lite/tetragon/pkg/regfile"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// Loader attaches and detaches policies; *hooks.Manager is one.
type Loader interface {
	LoadPolicy(p *tp.TracingPolicy) error
	ReplacePolicy(p *tp.TracingPolicy) error
	// Unload detaches a policy; on error the policy is still loaded.
	Unload(name string) error
	Status() []hooks.PolicyStatus
	// Sweep retries removing old versions that could not be removed, and
	// returns how many are left.
	Sweep() int
}

// State is a policy's state, as `tetra tracingpolicy list` shows it.
type State string

// Policy states.
const (
	Enabled  State = "enabled"
	Disabled State = "disabled"
	// LoadError: the policy is known but no version of it is loaded.
	LoadError State = "load_error"
)

// SourceAPI marks policies added through the API rather than from a file.
const SourceAPI = "api"

// Entry is one policy the registry knows.
type Entry struct {
	// ID numbers the policies from 1 in the order the registry first saw
	// them (Tetragon's TracingPolicyStatus.id).
	ID   uint64
	Name string
	// Source is the file the policy comes from, or SourceAPI.
	Source string
	State  State
	// Error is the last load error. An enabled policy with an error is
	// still enforcing its last good version.
	Error  string
	Policy *tp.TracingPolicy
	Hooks  []hooks.HookStatus
}

// ErrNotFound means no policy has that name.
var ErrNotFound = errors.New("no such policy")

// Registry holds the policies of files and of the API, and their states.
// It is safe for concurrent use.
type Registry struct {
	log    zerolog.Logger
	loader Loader

	mu      sync.Mutex
	entries map[string]*Entry
	files   map[string]fileState
	// apiDir, when set, keeps a copy of each API-added policy, so that it
	// survives a restart (--keep-sensors-on-exit)
	apiDir string
	// lastID is the ID of the newest entry
	lastID uint64

	reloads atomic.Uint64
	errors  atomic.Uint64
}

// fileState is what the last sync made of a file.
type fileState struct {
	hash  [32]byte
	names []string
	// conflicted: some of the file's policies were refused for their
	// name; they are tried again when another file goes
	conflicted bool
	// again: a load or an unload failed for a reason that may pass (too
	// many open files); the next sync tries the file again, unchanged
	again bool
	// err is why the file gives nothing to enforce: it cannot be read or
	// parsed and no earlier version of it loaded, or some of its policies
	// were refused for their name. Load errors of its policies are on
	// their entries.
	err error
	// external: the source is no policy file but an object fed in by
	// SyncSource (a Kubernetes TracingPolicy); directory scans leave it be
	external bool
}

// NewRegistry returns an empty registry loading through loader.
func NewRegistry(log zerolog.Logger, loader Loader) *Registry {
	return &Registry{log: log, loader: loader, entries: map[string]*Entry{}, files: map[string]fileState{}}
}

// Counters returns how many policy versions were loaded (first loads and
// reloads) and how many load attempts failed.
func (r *Registry) Counters() (reloads, errors uint64) { return r.reloads.Load(), r.errors.Load() }

// Sync brings the file-sourced policies in line with a scan of the policy
// files: new files load, changed files reload make-before-break, files gone
// unload. A file that fails keeps its last good policies enforcing. What
// could not be read is not taken as gone: the files of a directory the scan
// could not list keep their policies. Sync reports whether it should run
// again later, for something that may pass (a read or a load that failed
// for want of file descriptors or memory, an unload that failed).
func (r *Registry) Sync(scan policydir.Scan) (retry bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	retry = scan.Retry
	present := map[string]bool{}
	for _, f := range scan.Files {
		// deleted while it was being read: gone
		present[f.Path] = !errors.Is(f.Err, fs.ErrNotExist)
	}
	// removals first: a name a removed file frees can go to another file
	freed := false
	for path, st := range r.files {
		if st.external || present[path] || slices.Contains(scan.Unreadable, filepath.Dir(path)) {
			continue
		}
		var left []string
		for _, name := range st.names {
			if !r.remove(name, path) {
				left = append(left, name)
			}
		}
		if len(left) > 0 {
			// still enforcing: the registry keeps them, as the kernel does
			r.files[path] = fileState{names: left}
			retry = true
			continue
		}
		delete(r.files, path)
		freed = true
		r.log.Info().Str("file", path).Msg("Policy file removed; its policies are unloaded")
	}
	// A changed file can free a name too; a file refused that name earlier
	// in this pass gets it in a second one.
	for pass := 0; pass < 2; pass++ {
		freedBefore := freed
		for _, f := range scan.Files {
			if !present[f.Path] {
				continue
			}
			prev, known := r.files[f.Path]
			// unchanged content: no reload, unless a name was freed for it or
			// its last load or unload failed for something that may pass
			// (tried once a sync)
			if known && prev.hash == f.Hash && !(freed && prev.conflicted) && !(pass == 0 && prev.again) {
				continue
			}
			if f.Err != nil {
				r.fail(f.Path, prev.names, f.Err)
				st := fileState{hash: f.Hash, names: prev.names}
				if len(prev.names) == 0 {
					st.err = f.Err
				}
				r.files[f.Path] = st
				continue
			}
			names, again, refused := r.syncFile(f, prev.names)
			r.files[f.Path] = fileState{hash: f.Hash, names: names, conflicted: refused != nil, err: refused, again: again}
			retry = retry || again
			for _, n := range prev.names {
				freed = freed || !slices.Contains(names, n)
			}
		}
		if freed == freedBefore {
			break
		}
	}
	if r.loader.Sweep() > 0 {
		retry = true
	}
	return retry
}

// SyncSource loads, reloads (make-before-break) or keeps the policies of one
// source that is no policy file: a Kubernetes TracingPolicy object, named by
// f.Path ("kubernetes:tracingpolicy/NAME"). As for a file, a bad edit (f.Err)
// keeps the last good version enforcing and is reported; unchanged content
// is not loaded again. It reports whether it should be called again later,
// for a load or unload that failed for something that may pass.
func (r *Registry) SyncSource(f policydir.File) (retry bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, known := r.files[f.Path]
	if known && prev.hash == f.Hash && !prev.again && !prev.conflicted {
		return false
	}
	if f.Err != nil {
		if !known || prev.hash != f.Hash {
			r.fail(f.Path, prev.names, f.Err)
		}
		st := fileState{hash: f.Hash, names: prev.names, external: true}
		if len(prev.names) == 0 {
			st.err = f.Err
		}
		r.files[f.Path] = st
		return false
	}
	names, again, refused := r.syncFile(f, prev.names)
	r.files[f.Path] = fileState{hash: f.Hash, names: names, conflicted: refused != nil, err: refused, again: again, external: true}
	return again || refused != nil || r.loader.Sweep() > 0
}

// RemoveSource unloads the policies of a source SyncSource fed, when its
// object is deleted. A policy that cannot be unloaded stays (it still
// enforces) and it reports retry.
func (r *Registry) RemoveSource(path string) (retry bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.files[path]
	if !ok {
		return false
	}
	var left []string
	for _, name := range st.names {
		if !r.remove(name, path) {
			left = append(left, name)
		}
	}
	if len(left) > 0 {
		r.files[path] = fileState{names: left, external: true, again: true}
		return true
	}
	delete(r.files, path)
	r.log.Info().Str("source", path).Msg("Policy source removed; its policies are unloaded")
	return r.loader.Sweep() > 0
}

// transient reports whether a load failed for want of a resource that may
// come back, so that the same file is tried again without a change.
func transient(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EAGAIN, syscall.EINTR, syscall.ENOBUFS} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// syncFile loads a good file's policies and unloads the ones it no longer
// has; it returns the names it now owns, whether a load or an unload should
// be tried again, and why some of its policies were refused because another
// source has their name (nil if none was). r.mu is held.
func (r *Registry) syncFile(f policydir.File, before []string) (owned []string, again bool, refused error) {
	for _, p := range f.Policies {
		name := p.Metadata.Name
		e := r.entries[name]
		if e != nil && e.Source != f.Path {
			err := fmt.Errorf("policy %q: a policy of that name is already loaded from %s; this one is ignored", name, e.Source)
			refused = errors.Join(refused, err)
			r.fail(f.Path, nil, err)
			continue
		}
		owned = append(owned, name)
		if e == nil {
			r.lastID++
			e = &Entry{ID: r.lastID, Name: name, Source: f.Path, State: Enabled}
			r.entries[name] = e
		}
		if err := r.load(e, p, e.State == Enabled && e.Policy != nil); err != nil && transient(err) {
			again = true
		}
	}
	for _, name := range before {
		if !slices.Contains(owned, name) && !r.remove(name, f.Path) {
			owned = append(owned, name) // still loaded, still the file's
			again = true
		}
	}
	return owned, again, refused
}

// Problem is a policy file, or a policy of one, that does not enforce.
type Problem struct {
	// Source is the policy file.
	Source string
	// Policy is the policy's name; empty when the whole file failed.
	Policy string
	Err    string
}

func (p Problem) String() string { return p.Source + ": " + p.Detail() }

// Detail is the error, naming the policy once (the loader's errors name
// it already).
func (p Problem) Detail() string {
	if prefix := fmt.Sprintf("policy %q", p.Policy); p.Policy != "" && !strings.HasPrefix(p.Err, prefix) {
		return prefix + ": " + p.Err
	}
	return p.Err
}

// Problems lists what of the policy files does not enforce: files that
// cannot be read or parsed and never loaded, policies that failed to
// load, and policies refused for a name another file has. A policy that
// keeps its last good version after a bad edit enforces and is not a
// problem; nor is a disabled one (disabling is a choice). With paths,
// only those files count.
func (r *Registry) Problems(paths ...string) []Problem {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Problem
	for path, st := range r.files {
		if len(paths) > 0 && !slices.Contains(paths, path) {
			continue
		}
		if st.err != nil {
			out = append(out, Problem{Source: path, Err: st.err.Error()})
		}
		for _, n := range st.names {
			if e := r.entries[n]; e != nil && e.Source == path && e.State == LoadError {
				out = append(out, Problem{Source: path, Policy: n, Err: e.Error})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].Policy < out[j].Policy
	})
	return out
}

// Known reports whether the last sync read path as a policy file (a file
// without any TracingPolicy in it is not one).
func (r *Registry) Known(path string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.files[path]
	return ok
}

// load loads p as e's policy; replace swaps it for the loaded version.
// On failure an enabled entry keeps its last good version. r.mu is held.
func (r *Registry) load(e *Entry, p *tp.TracingPolicy, replace bool) error {
	if e.State == Disabled {
		e.Policy = p // takes effect when enabled
		return nil
	}
	var err error
	if replace {
		err = r.loader.ReplacePolicy(p)
	} else {
		err = r.loader.LoadPolicy(p)
	}
	if err != nil {
		r.errors.Add(1)
		e.Error = err.Error()
		if !replace {
			e.State = LoadError
			e.Policy = p
		}
		r.logError(e.Source, err, replace)
		return err
	}
	r.reloads.Add(1)
	e.State, e.Error, e.Policy = Enabled, "", p
	ev := r.log.Info().Str("policy", e.Name).Str("source", e.Source).Bool("enforces", p.Enforces() && p.Spec.Mode != tp.ModeMonitor)
	if replace {
		ev.Msg("Reloaded tracing policy")
	} else {
		ev.Msg("Loaded tracing policy")
	}
	return nil
}

// fail records a file that could not be used; its policies keep their
// last good version. r.mu is held.
func (r *Registry) fail(path string, names []string, err error) {
	r.errors.Add(1)
	for _, n := range names {
		if e := r.entries[n]; e != nil && e.Source == path {
			e.Error = err.Error()
		}
	}
	r.logError(path, err, len(names) > 0)
}

func (r *Registry) logError(source string, err error, keptOld bool) {
	msg := "Policy not loaded: "
	if keptOld {
		msg = "Policy not reloaded, the last good version stays: "
	}
	// one line per problem: a file can have many, each with its place
	for _, line := range strings.Split(err.Error(), "\n") {
		r.log.Error().Str("file", source).Msg(msg + line)
	}
}

// remove unloads and forgets the policy name if source owns it. A policy
// that cannot be unloaded stays, enabled, with the error: it still
// enforces, and the registry says what the kernel does. It reports whether
// the policy is gone. r.mu is held.
func (r *Registry) remove(name, source string) bool {
	e := r.entries[name]
	if e == nil || e.Source != source {
		return true
	}
	if e.State == Enabled {
		if err := r.loader.Unload(name); err != nil {
			r.errors.Add(1)
			e.Error = fmt.Sprintf("not unloaded, still enforcing: %v", err)
			r.log.Error().Err(err).Str("policy", name).Str("source", source).Msg("Policy not unloaded; it still enforces, and unloading is tried again")
			return false
		}
		r.log.Info().Str("policy", name).Str("source", source).Msg("Unloaded tracing policy")
	}
	delete(r.entries, name)
	return true
}

// ErrNotKept means an API-added policy could not be kept in the API policy
// directory, so it would not survive a restart; it is not loaded.
var ErrNotKept = errors.New("the policy would not survive a restart")

// PersistAPI keeps API-added policies as files in dir from now on, and
// loads the ones a previous run kept there. From the call on, an add that
// cannot be kept fails, even when dir cannot be created now.
func (r *Registry) PersistAPI(dir string) error {
	r.mu.Lock()
	r.apiDir = dir
	r.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the API policy directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading the API policy directory: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || !policydir.IsPolicyFile(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := regfile.Read(path, tp.MaxFileSize)
		if err == nil {
			_, err = r.add(data, false)
		}
		if err != nil {
			r.logError(path, err, false)
		}
	}
	return nil
}

// Add loads a policy given as YAML through the API. It returns once the
// policy enforces.
func (r *Registry) Add(yaml []byte) (string, error) { return r.add(yaml, true) }

func (r *Registry) add(yaml []byte, persist bool) (string, error) {
	pols, err := tp.Parse("request", yaml)
	if err != nil {
		return "", err
	}
	if len(pols) != 1 {
		return "", fmt.Errorf("the request holds %d policies; add them one at a time", len(pols))
	}
	p := pols[0]
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.entries[p.Metadata.Name]; e != nil {
		return "", fmt.Errorf("policy %q (from %s): %w", e.Name, e.Source, hooks.ErrConflict)
	}
	// Kept before it loads: "added" with --keep-sensors-on-exit promises
	// that the policy survives a restart, and a policy that would not is
	// refused (fail closed) rather than loaded with a warning only the
	// agent's log shows.
	kept := ""
	if persist && r.apiDir != "" {
		kept = r.apiFile(p.Metadata.Name)
		if err := writeFile(kept, yaml); err != nil {
			r.errors.Add(1)
			return "", fmt.Errorf("policy %q not added: %w: keeping it in the API policy directory (--api-policy-dir): %w", p.Metadata.Name, ErrNotKept, err)
		}
	}
	if err := r.loader.LoadPolicy(p); err != nil {
		r.errors.Add(1)
		if kept != "" {
			if rerr := os.Remove(kept); rerr != nil {
				r.log.Warn().Err(rerr).Str("file", kept).Msg("A policy that failed to load stays in the API policy directory; the next start tries it again")
			}
		}
		return "", err
	}
	r.reloads.Add(1)
	r.lastID++
	r.entries[p.Metadata.Name] = &Entry{ID: r.lastID, Name: p.Metadata.Name, Source: SourceAPI, State: Enabled, Policy: p}
	r.log.Info().Str("policy", p.Metadata.Name).Str("source", SourceAPI).Msg("Loaded tracing policy")
	return p.Metadata.Name, nil
}

// Delete unloads an API-added policy. A file's policy goes with its file.
func (r *Registry) Delete(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.entry(name)
	if err != nil {
		return err
	}
	if e.Source != SourceAPI {
		return fmt.Errorf("policy %q comes from %s: remove the file (or disable the policy)", name, e.Source)
	}
	if !r.remove(name, SourceAPI) {
		return fmt.Errorf("policy %q: %s", name, r.entries[name].Error)
	}
	if r.apiDir != "" {
		if err := os.Remove(r.apiFile(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("policy %q is unloaded, but its kept copy is not removed: %w", name, err)
		}
	}
	return nil
}

// writeFile writes a kept policy whole or not at all: a crash mid-write
// must not leave a truncated policy for the next start.
func writeFile(path string, data []byte) error {
	// created now if it could not be when the agent started
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up a failure
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	return err
}

// apiFile is where an API-added policy is kept; policy names are DNS
// subdomains (the parser checks), safe as file names.
func (r *Registry) apiFile(name string) string { return filepath.Join(r.apiDir, name+".yaml") }

// Enable loads a disabled policy again.
func (r *Registry) Enable(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.entry(name)
	if err != nil {
		return err
	}
	if e.State == Enabled {
		return nil
	}
	// not loaded, so a first load; load() leaves a disabled entry alone
	e.State = LoadError
	r.load(e, e.Policy, false)
	if e.State != Enabled {
		return errors.New(e.Error)
	}
	return nil
}

// Disable unloads a policy but keeps it listed, to be enabled again.
func (r *Registry) Disable(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.entry(name)
	if err != nil {
		return err
	}
	if e.State == Enabled {
		if err := r.loader.Unload(name); err != nil {
			return err
		}
	}
	e.State = Disabled
	r.log.Info().Str("policy", name).Msg("Disabled tracing policy")
	return nil
}

// entry looks a policy up by name; r.mu is held.
func (r *Registry) entry(name string) (*Entry, error) {
	if e := r.entries[name]; e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("policy %q: %w", name, ErrNotFound)
}

// List returns every known policy, sorted by name, with its hooks' state.
func (r *Registry) List() []Entry {
	status := map[string][]hooks.HookStatus{}
	for _, ps := range r.loader.Status() {
		status[ps.Name] = ps.Hooks
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Entry, 0, len(r.entries))
	for _, e := range r.entries {
		c := *e
		c.Hooks = status[e.Name]
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
