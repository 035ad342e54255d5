package filters

import (
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// FuzzMatch feeds arbitrary regexes (as an untrusted client would send) to
// New and checks Match against the plain regexp package: New accepts exactly
// the compilable regexes within the length bound, an allow filter passes
// what the regex matches and the same filter as deny passes the rest.
func FuzzMatch(f *testing.F) {
	f.Add("curl$", "/usr/bin/curl", "-s https://example.com", "web-1", uint32(42))
	f.Add("(a+)+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "", "", uint32(1))
	f.Add("a(", "/bin/a(", "", "", uint32(0))
	f.Add(`\p{Greek}+`, "/opt/αβγ", "x", "ctr", uint32(7))
	f.Add("", "", "", "", uint32(0))
	f.Fuzz(func(t *testing.T, re, binary, args, ctrName string, pid uint32) {
		allow := []*api.Filter{{BinaryRegex: []string{re}}}
		m, err := New(allow, nil)
		ref, refErr := regexp.Compile(re)
		size, _ := programSize(re)
		tooBig := len(re) > MaxRegexLen || size > MaxRegexProgram
		switch {
		case tooBig && err == nil:
			t.Fatalf("New accepted a %d-byte regex of %d instructions", len(re), size)
		case !tooBig && (err == nil) != (refErr == nil):
			t.Fatalf("New error %v, regexp.Compile error %v", err, refErr)
		case err != nil:
			if !strings.Contains(err.Error(), "binary_regex") {
				t.Fatalf("error %q does not name the field", err)
			}
			return
		}

		p := &api.Process{Binary: binary, Arguments: args}
		if ctrName != "" {
			p.Container = &api.Container{Name: ctrName}
		}
		ev := execEvent(p, &api.Process{Binary: args})
		want := ref.MatchString(binary)
		if got := m.Match(ev); got != want {
			t.Fatalf("allow binary_regex %q on %q: Match = %v, regexp says %v", re, binary, got, want)
		}
		d, err := New(nil, allow)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Match(ev); got == want {
			t.Fatalf("deny binary_regex %q on %q: Match = %v, want %v", re, binary, got, !want)
		}

		// The same regex in every regex field: all must hold for the filter.
		every := &api.Filter{
			BinaryRegex: []string{re}, ArgumentsRegex: []string{re}, ParentBinaryRegex: []string{re},
			PodRegex: []string{re}, ContainerNameRegex: []string{re}, Pid: []uint32{pid},
		}
		all, err := New([]*api.Filter{every}, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Pid = wrapperspb.UInt32(pid)
		wantAll := ref.MatchString(binary) && ref.MatchString(args) && ctrName != "" && ref.MatchString(ctrName)
		if got := all.Match(ev); got != wantAll {
			t.Fatalf("filter %v on %v: Match = %v, want %v", every, ev, got, wantAll)
		}
		p.Pid = wrapperspb.UInt32(pid + 1)
		if all.Match(ev) {
			t.Fatalf("filter %v matched pid %d", every, pid+1)
		}
	})
}

// FuzzLabels feeds arbitrary label selectors to New and checks Match
// against the selector library's own reading: New accepts what it parses
// within the length bound, a pod passes when the selector matches its
// labels, and an event without a pod never does.
func FuzzLabels(f *testing.F) {
	f.Add("app=web,tier!=db", "app", "web")
	f.Add("env in (a,b)", "env", "c")
	f.Add("!canary", "canary", "")
	f.Add("app in (a", "app", "a")
	f.Fuzz(func(t *testing.T, sel, key, value string) {
		m, err := New([]*api.Filter{{Labels: []string{sel}}}, nil)
		ref, refErr := labels.Parse(sel)
		switch {
		case len(sel) > MaxSelectorLen && err == nil:
			t.Fatalf("New accepted a %d-byte selector", len(sel))
		case len(sel) <= MaxSelectorLen && (err == nil) != (refErr == nil):
			t.Fatalf("New error %v, labels.Parse error %v", err, refErr)
		case err != nil:
			if !strings.Contains(err.Error(), "labels 0") {
				t.Fatalf("error %q does not name the field", err)
			}
			return
		}
		p := &api.Process{Binary: "/bin/x", Pod: &api.Pod{Name: "p", PodLabels: map[string]string{key: value}}}
		if got, want := m.Match(execEvent(p, nil)), ref.Matches(labels.Set{key: value}); got != want {
			t.Fatalf("selector %q on %q=%q: Match = %v, the library says %v", sel, key, value, got, want)
		}
		if m.Match(execEvent(&api.Process{Binary: "/bin/x"}, nil)) {
			t.Fatalf("selector %q matched an event without a pod", sel)
		}
	})
}
