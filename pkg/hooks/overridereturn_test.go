package hooks

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/compiler"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// An Override selector on a hook that reports the return value, as
// cve-2023-2640-overlayfs-ubuntu.yaml has, on a function a test can call:
// opening the protected file fails with EPERM and is reported with the
// overridden value; opening the watched one is reported with the value
// the function returned.
const overrideReturnPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "override-return"
spec:
  kprobes:
  - call: "security_file_open"
    syscall: false
    return: true
    args:
    - index: 0
      type: "file"
    returnArg:
      index: 0
      type: "int"
    selectors:
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "%[2]s/tetragon"
      matchActions:
      - action: Override
        argError: -1
    - matchArgs:
      - index: 0
        operator: "Equal"
        values:
        - "%[2]s/watched"
`

// Override with return: true: the fmod_ret program decides at entry, the
// fexit program reports the value the caller got; files no selector
// matches are opened without an event.
func TestOverrideReturn(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireFeature(t, "fmod_ret")
	testutil.RequireFeature(t, "fexit")
	h := newHarness(t, compiler.MechKprobe, testutil.Kernel(t).Map())
	writeFiles(t, h.dir, map[string]string{"tetragon": "secret", "watched": "w", "other": "x"})
	name, err := h.tryLoad(t, overrideReturnPolicy, "auto")
	if err != nil {
		t.Fatal(err)
	}
	if mech := h.mechanismOf(t, name); mech != compiler.MechFmodRet {
		t.Fatalf("served by %s, want %s", mech, compiler.MechFmodRet)
	}
	if out, _ := h.runFails(t, "cat", filepath.Join(h.dir, "tetragon")); !strings.Contains(out, "Operation not permitted") {
		t.Fatalf("cat of the protected file: %q, want EPERM", out)
	}
	for _, f := range []struct{ name, want string }{{"watched", "w"}, {"other", "x"}} {
		if out, killed := h.run(t, "cat", filepath.Join(h.dir, f.name)); killed || out != f.want {
			t.Fatalf("cat %s: %q, want %q", f.name, out, f.want)
		}
	}
	evs := h.events(t)
	var got []string
	for _, e := range evs {
		got = append(got, e.text+" ret "+e.ret)
	}
	want := []string{
		"cat security_file_open OVERRIDE file:$DIR/tetragon ret int:-1",
		"cat security_file_open POST file:$DIR/watched ret int:0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st := h.stats(t); st.Matched != 2 || st.Posted != 2 {
		t.Fatalf("stats %+v, want 2 matched and 2 posted (once each, not at entry and return)", st)
	}
}
