package hookevent

import (
	"bytes"
	"fmt"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/observer"
)

func TestLoaders(t *testing.T) {
	l := NewLoaders()
	proc := &api.Process{ExecId: "e1", Pid: wrapperspb.UInt32(5)}
	parent := &api.Process{ExecId: "e0"}
	rec := &observer.Loader{Pid: 5, Path: "/lib/libc.so.6", BuildID: []byte{1, 2}}
	ev := l.Event(rec, proc, parent)
	pl := ev.GetProcessLoader()
	if pl == nil || pl.GetProcess() != proc || pl.GetParent() != parent || pl.GetPath() != "/lib/libc.so.6" || !bytes.Equal(pl.GetBuildid(), []byte{1, 2}) {
		t.Fatalf("event %v", ev)
	}
	// the library's other segments: reported once
	if ev := l.Event(rec, proc, parent); ev != nil {
		t.Errorf("second mapping of the same file reported: %v", ev)
	}
	// another file is reported; the same file after the process executed
	// again is not (as Tetragon: keyed by pid): the program itself is
	// mapped inside exec, before its exec event, and again by its
	// startup code after
	if l.Event(&observer.Loader{Pid: 5, Path: "/lib/libm.so.6"}, proc, parent) == nil {
		t.Error("another file of the process not reported")
	}
	if ev := l.Event(rec, &api.Process{ExecId: "e2", Pid: wrapperspb.UInt32(5)}, proc); ev != nil {
		t.Errorf("the file reported again after exec: %v", ev)
	}
	// once the process exited, its pid used again reports the file again
	l.Exited(5)
	if l.Event(rec, &api.Process{ExecId: "e3", Pid: wrapperspb.UInt32(5)}, nil) == nil {
		t.Error("a new process with the pid of one that exited: file not reported")
	}
	if len(l.life) != 1 {
		t.Errorf("%d live pids remembered, want 1", len(l.life))
	}
	// a process the cache does not know is told apart by its pid
	if l.Event(&observer.Loader{Pid: 6, Path: "/lib/libc.so.6"}, nil, nil) == nil || l.Event(&observer.Loader{Pid: 6, Path: "/lib/libc.so.6"}, nil, nil) != nil {
		t.Error("unknown process: want one event per file")
	}
	// a path that is not UTF-8 is escaped (protobuf strings must be UTF-8)
	if got := l.Event(&observer.Loader{Pid: 5, Path: "/lib/\xff.so"}, proc, parent).GetProcessLoader().GetPath(); got != `/lib/\xff.so` {
		t.Errorf("path %q", got)
	}
	// the oldest pairs are forgotten first: after LoaderSeen others, the
	// first file is reported again
	for i := range LoaderSeen {
		l.Event(&observer.Loader{Pid: 7, Path: fmt.Sprint("/f", i)}, nil, nil)
	}
	if len(l.seen) != LoaderSeen {
		t.Errorf("remembers %d pairs, want %d", len(l.seen), LoaderSeen)
	}
	if l.Event(rec, proc, parent) == nil {
		t.Error("a forgotten pair is not reported again")
	}
	if l.Event(&observer.Loader{Pid: 7, Path: fmt.Sprint("/f", LoaderSeen-1)}, nil, nil) != nil {
		t.Error("a recent pair was forgotten")
	}
}
