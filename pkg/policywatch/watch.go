package policywatch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/policydir"
)

// Watcher keeps a Registry in step with policy directories and files.
type Watcher struct {
	log   zerolog.Logger
	reg   *Registry
	dirs  []string
	files []string
	// Debounce is how long the directories must be quiet after a write
	// before a rescan: a file being written may be incomplete. Settle is
	// the wait after changes that leave whole files (a file renamed into
	// place, as editors and configuration tools write, or removed): just
	// long enough to take a burst of them in one rescan. MaxDelay bounds
	// both under a constant stream of changes.
	Debounce, Settle, MaxDelay time.Duration
	// Reloaded, when set, is told after each rescan that a change in the
	// watched directories caused and that loaded policy versions, how long
	// it took from the first change noticed (debounce included) to the new
	// versions attached: the reload latency metric. It runs on the
	// watcher's goroutine.
	Reloaded func(time.Duration)
	// RetryMin and RetryMax bound the wait before a rescan after one that
	// could not read or load everything (too many open files, say); it
	// doubles from RetryMin while the trouble lasts.
	RetryMin, RetryMax time.Duration

	// retry hears from Sync that a rescan should follow
	retry chan struct{}
}

// NewWatcher returns a watcher of dirs (policy directories, or single
// policy files in their place) and of files named one by one.
func NewWatcher(log zerolog.Logger, reg *Registry, dirs, files []string) *Watcher {
	return &Watcher{log: log, reg: reg, dirs: dirs, files: files, Debounce: 100 * time.Millisecond, Settle: 2 * time.Millisecond, MaxDelay: time.Second,
		RetryMin: 500 * time.Millisecond, RetryMax: 30 * time.Second, retry: make(chan struct{}, 1)}
}

// Sync reads every policy file once and loads what changed. If something
// could not be read or loaded for a reason that may pass, Run (when it
// runs) scans again later.
func (w *Watcher) Sync() {
	if w.sync() {
		select {
		case w.retry <- struct{}{}:
		default:
		}
	}
}

func (w *Watcher) sync() (retry bool) {
	scan := policydir.Read(w.dirs, w.files)
	for _, warn := range scan.Warnings {
		w.log.Warn().Err(warn).Msg("Policy directory")
	}
	for _, sk := range scan.Skipped {
		w.log.Debug().Err(sk).Msg("Not a TracingPolicy file, ignored")
	}
	w.log.Debug().Int("files", len(scan.Files)).Msg("Policy files scanned")
	return w.reg.Sync(scan)
}

// Run watches until ctx is done. It watches directories, not files: editors
// save by renaming a new file over the old one, and Kubernetes ConfigMap
// volumes swap a ..data symlink; both show up as events in the directory,
// and every event leads to a full rescan, which loads only what changed.
func (w *Watcher) Run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("starting the policy watcher: %w", err)
	}
	defer fw.Close()
	watched := map[string]bool{}
	w.addWatches(fw, watched)

	var timer <-chan time.Time
	var first time.Time
	// written: a file was written since the last rescan, so it may be
	// incomplete until the writes stop
	var written bool
	// backoff is the wait before the next retry; 0: none pending
	var backoff time.Duration
	var retryTimer <-chan time.Time
	scheduleRetry := func() {
		backoff = min(max(2*backoff, w.RetryMin), w.RetryMax)
		retryTimer = time.After(backoff)
		w.log.Debug().Dur("in", backoff).Msg("Policy rescan scheduled")
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.retry:
			if retryTimer == nil {
				scheduleRetry()
			}
		case <-retryTimer:
			retryTimer = nil
			if w.sync() {
				scheduleRetry()
			} else {
				backoff = 0
			}
			w.addWatches(fw, watched)
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				delete(watched, ev.Name) // the kernel dropped the watch
			}
			if !w.relevant(ev.Name) {
				continue
			}
			w.log.Trace().Str("event", ev.String()).Msg("Policy directory changed")
			now := time.Now()
			if timer == nil {
				first, written = now, false
			}
			written = written || ev.Has(fsnotify.Write)
			delay := w.Settle
			if written {
				delay = w.Debounce
			}
			if rest := w.MaxDelay - now.Sub(first); rest < delay {
				delay = max(rest, 0)
			}
			timer = time.After(delay)
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			// an overflowed queue lost events: rescan to be safe
			w.log.Warn().Err(err).Msg("Policy watcher")
			timer = time.After(0)
		case <-timer:
			timer = nil
			// loads counted around the rescan: an API add at the same
			// moment may count in, which only makes one sample a reload
			loads, _ := w.reg.Counters()
			if w.sync() {
				if retryTimer == nil {
					scheduleRetry()
				}
			} else {
				backoff, retryTimer = 0, nil
			}
			if after, _ := w.reg.Counters(); after > loads && w.Reloaded != nil {
				w.Reloaded(time.Since(first))
			}
			w.addWatches(fw, watched)
		}
	}
}

// relevant reports whether a change of path can change the policies: it
// is a policy location or directly inside one. Watching a parent (/etc for
// a missing /etc/tetragon) reports much else.
func (w *Watcher) relevant(path string) bool {
	for _, p := range slices.Concat(w.dirs, w.files) {
		if path == p || filepath.Dir(path) == p {
			return true
		}
	}
	return false
}

// addWatches watches every policy location that exists now, and the parent
// of those that do not, to see them created.
func (w *Watcher) addWatches(fw *fsnotify.Watcher, watched map[string]bool) {
	var want []string
	for _, d := range w.dirs {
		if _, err := os.Stat(d); err == nil {
			want = append(want, d)
		} else {
			want = append(want, filepath.Dir(d))
		}
	}
	for _, f := range w.files {
		want = append(want, filepath.Dir(f))
	}
	for _, p := range want {
		if watched[p] {
			continue
		}
		if err := fw.Add(p); err != nil {
			w.log.Debug().Err(err).Str("path", p).Msg("Not watching")
			continue
		}
		watched[p] = true
	}
}
