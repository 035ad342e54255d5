package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/rs/zerolog"
)

const testImage = "tetragon-test/busybox:latest"

func TestWatcherMissingSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	w, logs, stop := newTestWatcher(t, Options{SocketPath: sock, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})

	// Many attempts fail meanwhile; only the first may warn.
	eventually(t, 5*time.Second, "five retries logged at debug level", func() bool {
		return logs.count(t, "debug", "docker API still unavailable") >= 5
	})
	if n := logs.count(t, "warn", ""); n != 1 {
		t.Errorf("logged %d warnings for one outage, want 1: %+v", n, logs.lines(t))
	}

	id := randomID(t)
	if info, ok := w.Lookup(context.Background(), id); ok {
		t.Errorf("Lookup without docker = %+v, true", info)
	}
	st := w.Stats()
	if st.Connected || st.Lookups != 1 || st.Misses != 1 || st.Inspects != 0 {
		t.Errorf("Stats() = %+v, want disconnected, 1 lookup, 1 miss, no inspect", st)
	}

	if err := stop(); err != nil {
		t.Errorf("Run returned %v after cancel, want nil", err)
	}
}

func TestWatcherCloseStopsRun(t *testing.T) {
	w := New(zerolog.Nop(), Options{SocketPath: filepath.Join(t.TempDir(), "docker.sock")})
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after Close, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of Close")
	}
}

func TestWatcherDocker(t *testing.T) {
	requireDockerd(t)
	const forget = 2 * time.Second
	w, logs, _ := newTestWatcher(t, Options{ForgetAfter: forget, NegativeTTL: time.Minute})
	eventually(t, 10*time.Second, "watcher connected", func() bool { return w.Stats().Connected })
	if n := logs.count(t, "warn", ""); n != 0 {
		t.Errorf("logged %d warnings with dockerd up: %+v", n, logs.lines(t))
	}
	ctx := context.Background()

	t.Run("running container from events", func(t *testing.T) {
		name := uniqueName("run")
		id := docker(t, "run", "-d", "--network", "none", "--name", name,
			"--label", LabelComposeProject+"=tlproject", "--label", LabelComposeService+"=tlservice",
			testImage, "sleep", "300")
		t.Cleanup(func() { removeContainer(id) })

		// The events alone must bring it in, without a Lookup's inspect: the
		// create event names it, the start event adds the image id and the
		// start time.
		eventually(t, 2*time.Second, "start event applied", func() bool { return w.started(id) })
		before := w.Stats()
		info, ok := w.Lookup(ctx, id)
		if !ok {
			t.Fatalf("Lookup(%s) after its start event: not found", id)
		}
		if st := w.Stats(); st.Inspects != before.Inspects {
			t.Errorf("Lookup of a known container made %d inspect calls", st.Inspects-before.Inspects)
		}
		checkInfo(t, info, id, name)
		if info.ComposeProject != "tlproject" || info.ComposeService != "tlservice" {
			t.Errorf("compose project/service = %q/%q, want tlproject/tlservice", info.ComposeProject, info.ComposeService)
		}

		newName := name + "-renamed"
		docker(t, "rename", name, newName)
		eventually(t, 2*time.Second, "rename event applied", func() bool {
			info, ok := w.Lookup(ctx, id)
			return ok && info.Name == newName
		})
		if st := w.Stats(); st.Inspects != before.Inspects {
			t.Errorf("rename needed %d inspect calls by Lookup", st.Inspects-before.Inspects)
		}

		// taken before the command: the container dies (and its forget
		// clock starts) early in "rm -f", which a busy machine can take
		// most of a second to finish
		removedAt := time.Now()
		docker(t, "rm", "-f", id)
		// Kept a while for events of its processes still in flight ...
		if info, ok := w.Lookup(ctx, id); !ok || info.Name != newName {
			t.Errorf("Lookup right after removal = %+v, %v; want it still known", info, ok)
		}
		eventually(t, 2*time.Second, "destroy event applied", func() bool { return w.gone(id) })
		// ... and forgotten after ForgetAfter.
		eventually(t, forget+3*time.Second, "removed container forgotten", func() bool { return !w.known(id) })
		if since := time.Since(removedAt); since < forget-200*time.Millisecond {
			t.Errorf("removed container forgotten after %v, before ForgetAfter %v", since, forget)
		}
		if _, ok := w.Lookup(ctx, id); ok {
			t.Error("Lookup of a removed and forgotten container succeeded")
		}
	})

	t.Run("created container named by its create event", func(t *testing.T) {
		name := uniqueName("created")
		before := w.Stats()
		id := docker(t, "create", "--network", "none", "--name", name, testImage, "sleep", "300")
		t.Cleanup(func() { removeContainer(id) })

		// Known before anything runs in it, without an inspect call: a
		// container whose first process comes and goes at once (docker run
		// --rm) is still named.
		eventually(t, 2*time.Second, "create event applied", func() bool { return w.known(id) })
		info, ok := w.Lookup(ctx, id)
		if !ok {
			t.Fatalf("Lookup(%s) of a created container: not found", id)
		}
		if st := w.Stats(); st.Inspects != before.Inspects {
			t.Errorf("stats went from %+v to %+v, want no inspect", before, st)
		}
		if info.ID != id || info.Name != name || info.Image != testImage || !info.Started.IsZero() {
			t.Errorf("Lookup = %+v; want id %s, name %s, image %s, no start time", info, id, name, testImage)
		}
		// the image id comes from the inspect that follows the create event
		imageID := docker(t, "inspect", "-f", "{{.Image}}", id)
		eventually(t, 2*time.Second, "image id of the created container", func() bool {
			info, ok := w.Lookup(ctx, id)
			return ok && info.ImageID == imageID
		})

		docker(t, "start", id)
		eventually(t, 2*time.Second, "start event filled the start time", func() bool {
			info, ok := w.Lookup(ctx, id)
			return ok && !info.Started.IsZero()
		})
		info, _ = w.Lookup(ctx, id)
		checkInfo(t, info, id, name)
	})

	t.Run("short-lived containers under CPU load are named", func(t *testing.T) {
		stopLoad := cpuLoad(t, 4)
		defer stopLoad()
		for i := range 8 {
			name := fmt.Sprintf("%s-%d", uniqueName("short"), i)
			// The agent learns the id from the process's cgroup, and on a busy
			// host handles its events after the container is gone.
			out := docker(t, "run", "--rm", "--network", "none", "--name", name, testImage, "sh", "-c", "echo foo >> /etc/bar; cat /proc/self/cgroup")
			id := out[strings.LastIndex(out, "/")+1:]
			// As the agent asks: under the same 1 s deadline.
			lctx, cancel := context.WithTimeout(ctx, time.Second)
			info, ok := w.Lookup(lctx, id)
			cancel()
			if !ok || info.Name != name {
				t.Errorf("container %d: Lookup = %+v, %v; want name %s", i, info, ok, name)
			}
		}
	})

	t.Run("unknown id is inspected once then cached", func(t *testing.T) {
		id := randomID(t)
		before := w.Stats()
		for range 3 {
			if info, ok := w.Lookup(ctx, id); ok {
				t.Fatalf("Lookup of unknown id = %+v, true", info)
			}
		}
		st := w.Stats()
		if st.Inspects != before.Inspects+1 || st.Misses != before.Misses+3 || st.InspectErrors != before.InspectErrors {
			t.Errorf("stats went from %+v to %+v; want 1 inspect, 3 misses, no inspect error", before, st)
		}
	})

	t.Run("names and prefixes are not ids", func(t *testing.T) {
		name := uniqueName("byname")
		id := docker(t, "create", "--network", "none", "--name", name, testImage, "true")
		t.Cleanup(func() { removeContainer(id) })
		for _, key := range []string{name, id[:12]} {
			if info, ok := w.Lookup(ctx, key); ok {
				t.Errorf("Lookup(%q) = %+v, true; want only full ids to match", key, info)
			}
		}
	})

	t.Run("running containers listed at connect", func(t *testing.T) {
		name := uniqueName("listed")
		id := docker(t, "run", "-d", "--network", "none", "--name", name, testImage, "sleep", "300")
		t.Cleanup(func() { removeContainer(id) })

		w2, _, _ := newTestWatcher(t, Options{})
		eventually(t, 10*time.Second, "second watcher connected", func() bool { return w2.Stats().Connected })
		if !w2.known(id) {
			t.Fatalf("container %s running before connect is not in the map", id)
		}
		info, ok := w2.Lookup(ctx, id)
		if !ok {
			t.Fatal("Lookup of a listed container: not found")
		}
		checkInfo(t, info, id, name)
		if st := w2.Stats(); st.Inspects != 0 {
			t.Errorf("Lookup of a listed container made %d inspect calls", st.Inspects)
		}
	})

	t.Run("reconnects when the socket appears", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "docker.sock")
		w3, logs3, _ := newTestWatcher(t, Options{SocketPath: sock, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
		eventually(t, 5*time.Second, "missing socket retried", func() bool {
			return logs3.count(t, "debug", "docker API still unavailable") >= 2
		})
		if err := os.Symlink("/var/run/docker.sock", sock); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "watcher connected after the socket appeared", func() bool { return w3.Stats().Connected })
		if n := logs3.count(t, "warn", ""); n != 1 {
			t.Errorf("logged %d warnings, want 1", n)
		}
		if n := logs3.count(t, "info", "docker API is back"); n != 1 {
			t.Errorf("logged %d recovery messages, want 1: %+v", n, logs3.lines(t))
		}
	})
}

// cpuLoad keeps n busy-looping processes running until the returned stop is
// called: a busy host, where the events stream and inspect calls lag.
func cpuLoad(t *testing.T, n int) (stop func()) {
	t.Helper()
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting a CPU burner: %v", err)
		}
		cmds = append(cmds, cmd)
	}
	return func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
}

// checkInfo compares a Lookup answer with what docker inspect says.
func checkInfo(t *testing.T, info Info, id, name string) {
	t.Helper()
	imageID := docker(t, "inspect", "-f", "{{.Image}}", id)
	startedAt, err := time.Parse(time.RFC3339Nano, docker(t, "inspect", "-f", "{{.State.StartedAt}}", id))
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != id || info.Name != name || info.Image != testImage || info.ImageID != imageID {
		t.Errorf("Info = %+v; want id %s, name %s, image %s, image id %s", info, id, name, testImage, imageID)
	}
	if !info.Started.Equal(startedAt) {
		t.Errorf("Started = %v, want %v", info.Started, startedAt)
	}
	if d := time.Since(info.Started); d < 0 || d > time.Minute {
		t.Errorf("Started = %v, %v ago", info.Started, d)
	}
}

func (w *Watcher) known(id string) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	_, ok := w.entries[id]
	return ok
}

func (w *Watcher) started(id string) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	e, ok := w.entries[id]
	return ok && !e.info.Started.IsZero()
}

func (w *Watcher) gone(id string) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	e, ok := w.entries[id]
	return ok && !e.goneAt.IsZero()
}

func uniqueName(kind string) string {
	return fmt.Sprintf("tl-container-test-%s-%d", kind, time.Now().UnixNano())
}

func randomID(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// removeContainer is for cleanups: the container may be gone already.
func removeContainer(id string) {
	_ = exec.Command("docker", "rm", "-f", id).Run()
}

// TestLookupWaitsForTheStream: a daemon that does not answer the inspect in
// time (a busy host) must not leave a container unnamed when the events stream
// names it meanwhile, and the failed inspect must not be remembered.
func TestLookupWaitsForTheStream(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// A daemon that accepts and never answers.
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()

	w := New(zerolog.Nop(), Options{SocketPath: sock, InspectTimeout: 50 * time.Millisecond})
	defer w.Close()
	cli, err := client.NewClientWithOpts(w.clientOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	w.cli.Store(cli) // as a live session does

	id := randomID(t)
	want := Info{ID: id, Name: "xwing"}
	go func() {
		time.Sleep(300 * time.Millisecond) // past the inspect's timeout
		w.upsert(want, true)               // what the create event does
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got, ok := w.Lookup(ctx, id)
	if !ok || got != want {
		t.Fatalf("Lookup = %+v, %v; want %+v from the stream", got, ok, want)
	}
	if st := w.Stats(); st.Inspects != 1 || st.InspectErrors != 1 {
		t.Errorf("stats = %+v, want one inspect that failed", st)
	}

	// The deadline still bounds a miss nobody answers.
	other := randomID(t)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	start := time.Now()
	if info, ok := w.Lookup(ctx2, other); ok {
		t.Fatalf("Lookup of an id nobody knows = %+v, true", info)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a miss took %v with a 200ms deadline", d)
	}
	if _, _, negative, _ := w.fromMap(other, time.Now()); negative {
		t.Error("a timed-out inspect was remembered as unknown")
	}
}
