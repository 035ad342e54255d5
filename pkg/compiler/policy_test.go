package compiler

import (
	"strings"
	"testing"
	"time"

	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

func parse(t *testing.T, y string) *tp.TracingPolicy {
	t.Helper()
	ps, err := tp.Parse("p.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return ps[0]
}

const killOpen = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: kill
spec:
  %s
  kprobes:
  - call: fd_install
    syscall: false
    args:
    - index: 1
      type: file
    selectors:
    - matchArgs:
      - index: 1
        operator: Postfix
        values: [".key"]
      matchActions:
      - action: Sigkill
      - action: Post
        rateLimit: 2s
        rateLimitScope: process
`

func TestFromPolicyModes(t *testing.T) {
	enforce := parse(t, strings.Replace(killOpen, "  %s\n", "", 1))
	d, err := FromPolicy(enforce, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 1 || d[0].Call != "fd_install" || d[0].Syscall || d[0].Src.Line != 7 {
		t.Fatalf("decls %+v", d)
	}
	acts := d[0].Selectors[0].MatchActions
	if len(acts) != 2 || acts[0].Action != "Sigkill" || acts[1].RateLimit != 2*time.Second || acts[1].RateLimitScope != "process" {
		t.Fatalf("actions %+v", acts)
	}
	if m := d[0].Selectors[0].MatchArgs[0]; m.Operator != "Postfix" || m.Values[0] != ".key" {
		t.Fatalf("match %+v", m)
	}

	monitor := parse(t, strings.Replace(killOpen, "%s", "options:\n  - name: policy-mode\n    value: monitor", 1))
	d, err = FromPolicy(monitor, false)
	if err != nil {
		t.Fatal(err)
	}
	if acts := d[0].Selectors[0].MatchActions; len(acts) != 1 || acts[0].Action != "Post" {
		t.Fatalf("monitor mode kept %+v, want only Post", acts)
	}
}

func TestFromPolicyRefusesWhatItCannotServe(t *testing.T) {
	p := parse(t, `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: partial
spec:
  podSelector:
    matchLabels:
      app: web
  kprobes:
  - call: sys_read
    args:
    - index: 1
      type: char_buf
      sizeArgIndex: 3
  uprobes:
  - path: /bin/sh
    symbols: ["main"]
    return: true
    returnArg:
      type: int
`)
	_, err := FromPolicy(p, false)
	if err == nil {
		t.Fatal("a policy with a podSelector, a char_buf without its size argument and a uprobe returnArg loaded")
	}
	for _, want := range []string{
		`policy "partial"`,
		"p.yaml:7:5: spec.podSelector: podSelector needs Kubernetes pod labels",
		// the size argument (index 2) is not declared
		"p.yaml:12:7: spec.kprobes[0].args[0]: sizeArgIndex 3 names argument 2, the buffer's length, which args must declare with an integer type",
		"p.yaml:20:7: spec.uprobes[0].returnArg: returnArg is not supported on uprobes",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestFromPolicyScopes: where the agent knows pods (Kubernetes), a
// namespaced policy, podSelector and containerSelector become every
// hook's scope; elsewhere each is refused with its place.
func TestFromPolicyScopes(t *testing.T) {
	p := parse(t, `apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata:
  name: scoped
  namespace: shop
spec:
  podSelector:
    matchLabels: {app: web}
  containerSelector:
    matchLabels: {name: nginx}
  kprobes:
  - call: sys_read
  - call: sys_write
`)
	decls, err := FromPolicy(p, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(decls) != 2 {
		t.Fatalf("%d hooks", len(decls))
	}
	for _, d := range decls {
		s := d.Scope
		if s == nil || s.Namespace != "shop" || s.Pods.MatchLabels["app"] != "web" || s.Containers.MatchLabels["name"] != "nginx" {
			t.Fatalf("%s: scope %+v", d.Call, s)
		}
	}
	// a cluster-wide policy without selectors has no scope
	plain := parse(t, "apiVersion: cilium.io/v1alpha1\nkind: TracingPolicy\nmetadata:\n  name: plain\nspec:\n  kprobes:\n  - call: sys_read\n")
	if decls, err := FromPolicy(plain, true); err != nil || decls[0].Scope != nil {
		t.Fatalf("plain policy: %v, scope %+v", err, decls[0].Scope)
	}
	_, err = FromPolicy(p, false)
	if err == nil {
		t.Fatal("a scoped policy loaded without pods to scope it to")
	}
	for _, want := range []string{
		"p.yaml:1:1: a TracingPolicyNamespaced applies to the pods of its namespace, which only an agent in Kubernetes knows",
		"p.yaml:8:5: spec.podSelector: podSelector needs Kubernetes pod labels",
		"p.yaml:10:5: spec.containerSelector: containerSelector needs Kubernetes container names",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
