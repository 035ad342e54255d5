package policywatch

import (
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/policydir"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

func sourceFile(t *testing.T, src, yaml string) policydir.File {
	t.Helper()
	f := policydir.File{Path: src, Hash: sha256.Sum256([]byte(yaml))}
	f.Policies, f.Err = tp.Parse(src, []byte(yaml))
	return f
}

// A Kubernetes object goes through the registry as a file does: loaded,
// replaced make-before-break on an edit, kept on a bad edit, unloaded on
// delete; and a directory scan leaves it alone.
func TestSyncSource(t *testing.T) {
	f := newFixture(t)
	src := "kubernetes:tracingpolicy/k"
	f.reg.SyncSource(sourceFile(t, src, policy("k", "do_sys_open")))
	// a scan of the (empty) policy directories does not remove it
	f.reg.Sync(policydir.Read([]string{f.dir}, nil))
	// unchanged content: nothing done
	f.reg.SyncSource(sourceFile(t, src, policy("k", "do_sys_open")))
	f.reg.SyncSource(sourceFile(t, src, policy("k", "security_file_open")))
	bad := policydir.File{Path: src, Hash: sha256.Sum256([]byte("bad")), Err: errors.New("kubernetes:tracingpolicy/k: spec: bad edit")}
	f.reg.SyncSource(bad)
	want := []string{"load k", "replace k"}
	if !slices.Equal(f.rec.ops, want) {
		t.Fatalf("ops %v, want %v", f.rec.ops, want)
	}
	l := f.reg.List()
	if len(l) != 1 || l[0].Source != src || l[0].State != Enabled || !strings.Contains(l[0].Error, "bad edit") {
		t.Fatalf("after a bad edit: %+v; want the last good version enabled, with the error", l)
	}
	// a file of the same name is refused: the name is the object's
	f.write("k.yaml", policy("k", "do_sys_open"))
	f.sync()
	if p := f.reg.Problems(); len(p) != 1 || !strings.Contains(p[0].Err, "already loaded from "+src) {
		t.Fatalf("problems %v", p)
	}
	if f.reg.RemoveSource(src) {
		t.Fatal("RemoveSource asks for a retry after a good unload")
	}
	if !slices.Contains(f.rec.ops, "unload k") {
		t.Fatalf("ops %v: not unloaded", f.rec.ops)
	}
}
