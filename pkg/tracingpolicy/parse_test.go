package tracingpolicy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func parseOne(t *testing.T, yaml string) *TracingPolicy {
	t.Helper()
	pols, err := Parse("x.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if len(pols) != 1 {
		t.Fatalf("got %d policies, want 1", len(pols))
	}
	return pols[0]
}

// The persistent-enforcement guide's policy, verbatim.
func TestSeedEnforcement(t *testing.T) {
	pols, err := ParseFile("testdata/enforcement.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := pols[0]
	if p.APIVersion != APIVersion || p.Kind != KindTracingPolicy || p.Namespaced() || p.Metadata.Name != "enforcement" {
		t.Fatalf("identity: %+v", p)
	}
	if len(p.Spec.KProbes) != 1 || p.Spec.Hooks() != 1 {
		t.Fatalf("hooks: %+v", p.Spec)
	}
	k := p.Spec.KProbes[0]
	want := KProbeSpec{
		Call: "fd_install",
		Args: []ArgSpec{
			{Index: 0, Type: TypeInt, Src: Source{"enforcement.yaml", 10, 7, "spec.kprobes[0].args[0]"},
				TypeSrc: Source{"enforcement.yaml", 11, 13, "spec.kprobes[0].args[0].type"}},
			{Index: 1, Type: TypeFile, Src: Source{"enforcement.yaml", 12, 7, "spec.kprobes[0].args[1]"},
				TypeSrc: Source{"enforcement.yaml", 13, 13, "spec.kprobes[0].args[1].type"}},
		},
		Selectors: []Selector{{
			MatchArgs: []ArgSelector{{Index: 1, Operator: OpEqual, ArgType: TypeFile, Values: []string{"/tmp/tetragon"},
				Src: Source{"enforcement.yaml", 16, 9, "spec.kprobes[0].selectors[0].matchArgs[0]"}}},
			MatchActions: []ActionSelector{{Action: ActionSigkill,
				Src: Source{"enforcement.yaml", 21, 9, "spec.kprobes[0].selectors[0].matchActions[0]"}}},
			Src: Source{"enforcement.yaml", 15, 7, "spec.kprobes[0].selectors[0]"},
		}},
		Src: Source{"enforcement.yaml", 7, 5, "spec.kprobes[0]"},
	}
	if !reflect.DeepEqual(k, want) {
		t.Fatalf("kprobe:\n got %+v\nwant %+v", k, want)
	}
	if s := k.Selectors[0].MatchArgs[0].Src.String(); s != "enforcement.yaml:16:9: spec.kprobes[0].selectors[0].matchArgs[0]" {
		t.Fatalf("Source.String() = %q", s)
	}
}

// The file-monitoring scenario mounts Tetragon's quickstart policy: its
// shape (return probes, returnArg, Equal masks, Postfix, Mask) must parse.
func TestSeedFileMonitoring(t *testing.T) {
	pols, err := ParseFile("testdata/file_monitoring.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := pols[0].Spec
	if len(s.KProbes) != 3 {
		t.Fatalf("%d kprobes", len(s.KProbes))
	}
	perm, mmap, trunc := s.KProbes[0], s.KProbes[1], s.KProbes[2]
	for _, k := range s.KProbes {
		if k.Syscall || !k.Return || k.ReturnArg == nil || k.ReturnArg.Type != TypeInt {
			t.Errorf("%s: syscall %v return %v returnArg %+v", k.Call, k.Syscall, k.Return, k.ReturnArg)
		}
	}
	if perm.Call != "security_file_permission" || len(perm.Selectors) != 3 {
		t.Fatalf("permission hook: %+v", perm)
	}
	reads, rc, writes := perm.Selectors[0], perm.Selectors[1], perm.Selectors[2]
	if m := reads.MatchArgs[0]; m.Operator != OpPrefix || m.ArgType != TypeFile || len(m.Values) != 9 || m.Values[2] != "/etc/shadow" {
		t.Errorf("reads paths: %+v", m)
	}
	if m := reads.MatchArgs[1]; m.Operator != OpEqual || !reflect.DeepEqual(m.IntValues, []int64{4}) {
		t.Errorf("reads mask: %+v", m)
	}
	if m := rc.MatchArgs[0]; m.Operator != OpPostfix || m.Values[0] != ".bashrc" {
		t.Errorf("rc files: %+v", m)
	}
	if m := writes.MatchArgs[1]; !reflect.DeepEqual(m.IntValues, []int64{2}) {
		t.Errorf("writes mask: %+v", m)
	}
	if mmap.Call != "security_mmap_file" || mmap.Args[1].Type != TypeUint32 || mmap.Args[2].Type != TypeUint32 {
		t.Fatalf("mmap hook args: %+v", mmap.Args)
	}
	if m := mmap.Selectors[1].MatchArgs[2]; m.Operator != OpMask || m.ArgType != TypeUint32 || !reflect.DeepEqual(m.IntValues, []int64{1}) {
		t.Errorf("mmap MAP_SHARED: %+v", m)
	}
	if trunc.Call != "security_path_truncate" || trunc.Args[0].Type != TypePath || trunc.Selectors[0].MatchArgs[0].ArgType != TypePath {
		t.Errorf("truncate hook: %+v", trunc)
	}
}

// Every file under policies/ is a valid policy with a comment header.
func TestShippedPolicies(t *testing.T) {
	dir := filepath.Join("..", "..", "policies")
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	examples, _ := filepath.Glob(filepath.Join(dir, "examples", "*"))
	files = append(files, examples...)
	want := []string{"enforcement.yaml", "file-monitoring.yaml",
		"file-monitoring-enforce.yaml", "kill-binary-exec.yaml", "ptrace-attach.yaml", "sys-openat-write.yaml", "tcp-connect.yaml"}
	var yamls []string
	names := map[string]string{}
	for _, f := range files {
		base := filepath.Base(f)
		if !strings.HasSuffix(base, ".yaml") {
			if base != "README.md" && base != "examples" {
				t.Errorf("unexpected file %s in policies/", base)
			}
			continue
		}
		yamls = append(yamls, base)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "# "+base+": ") {
			t.Errorf("%s: does not start with a comment header naming the file", base)
		}
		pols, err := Parse(base, data)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, p := range pols {
			if other, dup := names[p.Metadata.Name]; dup {
				t.Errorf("%s: policy name %q already used by %s", base, p.Metadata.Name, other)
			}
			names[p.Metadata.Name] = base
		}
	}
	if !reflect.DeepEqual(yamls, want) {
		t.Errorf("policies/ holds %v, want %v", yamls, want)
	}
	pols, err := ParseFile(filepath.Join(dir, "examples", "file-monitoring-enforce.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if pols[0].Spec.Mode != ModeMonitor || !pols[0].Enforces() {
		t.Errorf("file-monitoring-enforce.yaml ships in mode %q, enforcing %v: want monitor mode on enforcing selectors", pols[0].Spec.Mode, pols[0].Enforces())
	}
	for file, enforces := range map[string]bool{"file-monitoring.yaml": false, "examples/tcp-connect.yaml": false, "enforcement.yaml": true, "examples/kill-binary-exec.yaml": true} {
		pols, err := ParseFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if pols[0].Enforces() != enforces {
			t.Errorf("%s: Enforces() = %v", file, !enforces)
		}
	}
	pols, err = ParseFile(filepath.Join(dir, "examples", "sys-openat-write.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if a := pols[0].Spec.KProbes[1].Selectors[0].MatchActions[0]; a.RateLimit != time.Minute || a.RateLimitScope != ScopeThread {
		t.Errorf("sys_write rate limit: %+v", a)
	}
}

func TestDefaults(t *testing.T) {
	p := parseOne(t, header+`  kprobes:
  - call: sys_openat
    selectors:
    - matchPIDs:
      - {operator: NotIn, values: [1]}
      matchCapabilities:
      - {operator: In, values: [cap_sys_admin, CAP_BPF]}
      matchBinaries:
      - {operator: In, values: [/usr/bin/cat]}
      matchActions:
      - {action: Post, rateLimit: "30"}
`)
	k := p.Spec.KProbes[0]
	if !k.Syscall || k.Return || k.SyscallName() != "openat" {
		t.Fatalf("kprobe defaults: syscall %v return %v name %q", k.Syscall, k.Return, k.SyscallName())
	}
	sel := k.Selectors[0]
	if pid := sel.MatchPIDs[0]; pid.FollowForks || pid.IsNamespacePID || pid.Operator != OpNotIn || !reflect.DeepEqual(pid.Values, []uint32{1}) {
		t.Errorf("matchPIDs: %+v", pid)
	}
	c := sel.MatchCapabilities[0]
	if c.Type != CapEffective || c.IsNamespaceCapability || !reflect.DeepEqual(c.Values, []string{"CAP_SYS_ADMIN", "CAP_BPF"}) || c.Mask != 1<<21|1<<39 {
		t.Errorf("matchCapabilities: %+v", c)
	}
	if b := sel.MatchBinaries[0]; b.FollowChildren || b.Operator != BinIn {
		t.Errorf("matchBinaries: %+v", b)
	}
	if a := sel.MatchActions[0]; a.RateLimit != 30*time.Second || a.RateLimitScope != ScopeThread {
		t.Errorf("rate limit: %+v", a)
	}
	if p.Spec.Mode != "" {
		t.Errorf("mode %q, want unset", p.Spec.Mode)
	}
}

func TestSyscallNames(t *testing.T) {
	for call, want := range map[string]string{
		"sys_openat": "openat", "__x64_sys_openat": "openat", "__arm64_sys_write": "write",
		"fd_install": "", "sys_": "", "ksys_write": "",
	} {
		k := KProbeSpec{Call: call}
		if got := k.SyscallName(); got != want {
			t.Errorf("SyscallName(%q) = %q, want %q", call, got, want)
		}
	}
}

func TestIntValues(t *testing.T) {
	cases := []struct {
		typ    string
		values string
		want   []int64
	}{
		{"int", `["0", "-1", "2147483647", "0x10", "010", "0b11", "+5"]`, []int64{0, -1, 2147483647, 16, 8, 3, 5}},
		{"uint32", `["4294967295", "0xffffffff"]`, []int64{4294967295, 4294967295}},
		{"uint64", `["18446744073709551615"]`, []int64{-1}},
		{"int8", `["-128", "127"]`, []int64{-128, 127}},
		{"size_t", `[4096, 0x1000]`, []int64{4096, 4096}},
	}
	for _, c := range cases {
		p := parseOne(t, header+fmt.Sprintf(`  kprobes:
  - call: sys_write
    args: [{index: 2, type: %s}]
    selectors:
    - matchArgs: [{index: 2, operator: Equal, values: %s}]
`, c.typ, c.values))
		if got := p.Spec.KProbes[0].Selectors[0].MatchArgs[0].IntValues; !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %s: %v, want %v", c.typ, c.values, got, c.want)
		}
	}
	for _, c := range []struct{ typ, value string }{{"int8", "128"}, {"uint16", "65536"}, {"int", "2147483648"}, {"uint8", "-1"}} {
		_, err := Parse("x.yaml", []byte(header+fmt.Sprintf(`  kprobes:
  - call: sys_write
    args: [{index: 2, type: %s}]
    selectors:
    - matchArgs: [{index: 2, operator: Equal, values: ["%s"]}]
`, c.typ, c.value)))
		if err == nil {
			t.Errorf("%s %s: accepted", c.typ, c.value)
		}
	}
}

// Tetragon decodes policies through JSON, whose field names match
// regardless of case; its own docs write followforks.
func TestFieldNamesIgnoreCase(t *testing.T) {
	p := parseOne(t, header+`  kprobes:
  - call: sys_openat
    selectors:
    - matchPIDs:
      - operator: In
        followforks: true
        values: [1]
`)
	if !p.Spec.KProbes[0].Selectors[0].MatchPIDs[0].FollowForks {
		t.Fatal("followforks not read as followForks")
	}
	_, err := Parse("x.yaml", []byte(header+`  kprobes:
  - call: sys_openat
    Call: sys_write
`))
	if err == nil || !strings.Contains(err.Error(), "x.yaml:8:5: spec.kprobes[0].call: duplicate field (first set at line 7)") {
		t.Fatalf("case-insensitive duplicate: %v", err)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	p := parseOne(t, header+`  kprobes:
  - &base
    call: security_file_permission
    syscall: false
    args: [{index: 0, type: file}, {index: 1, type: int}]
    selectors:
    - matchArgs:
      - {index: 0, operator: Prefix, values: &paths ["/etc/", "/boot/"]}
  - <<: *base
    call: security_mmap_file
    selectors:
    - matchArgs:
      - {index: 0, operator: Prefix, values: *paths}
`)
	a, b := p.Spec.KProbes[0], p.Spec.KProbes[1]
	if b.Call != "security_mmap_file" || b.Syscall || len(b.Args) != 2 || b.Args[1].Type != TypeInt {
		t.Fatalf("merged kprobe: %+v", b)
	}
	if !reflect.DeepEqual(a.Selectors[0].MatchArgs[0].Values, b.Selectors[0].MatchArgs[0].Values) {
		t.Fatalf("aliased values differ: %v %v", a.Selectors[0].MatchArgs[0].Values, b.Selectors[0].MatchArgs[0].Values)
	}
}

func TestMultipleDocuments(t *testing.T) {
	data := "# agent configuration, kept in the same directory\nlog-level: debug\n---\n" +
		header + "  kprobes: [{call: sys_openat}]\n---\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n# only a comment\n---\n" +
		strings.Replace(header, "name: p", "name: q", 1) + "  kprobes: [{call: sys_write}]\n"
	docs, err := ParseDocuments("multi.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		switch {
		case d.Policy != nil:
			got = append(got, fmt.Sprintf("%d policy %s line %d", d.Index, d.Policy.Metadata.Name, d.Line))
		case errors.Is(d.Skipped, ErrNotPolicy):
			got = append(got, fmt.Sprintf("%d skipped: %v", d.Index, d.Skipped))
		default:
			t.Fatalf("document %d neither policy nor skipped: %+v", d.Index, d)
		}
	}
	want := []string{
		"0 skipped: document 1 (line 2): no kind: not a TracingPolicy",
		"1 policy p line 4",
		`2 skipped: document 3 (line 11): kind "ConfigMap": not a TracingPolicy`,
		"3 skipped: document 4 (line 16): empty: not a TracingPolicy",
		"4 policy q line 17",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("documents:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	pols, err := Parse("multi.yaml", []byte(data))
	if err != nil || len(pols) != 2 || pols[1].Metadata.Name != "q" {
		t.Fatalf("Parse: %v %v", pols, err)
	}

	// A file without any policy is skipped as a whole.
	for _, data := range []string{"log-level: debug\n", "", "# nothing\n", "- a\n- b\n"} {
		_, err := Parse("config.yaml", []byte(data))
		if !errors.Is(err, ErrNotPolicy) {
			t.Errorf("%q: %v, want ErrNotPolicy", data, err)
		}
	}
}

func TestNamespacedPolicy(t *testing.T) {
	p := parseOne(t, `apiVersion: cilium.io/v1alpha1
kind: TracingPolicyNamespaced
metadata:
  name: web.watch
  namespace: shop
  labels: {app.kubernetes.io/name: web, tier: ""}
  annotations: {example.com/owner: "team a"}
  uid: 5c0b1f0e-0000-4000-8000-000000000000
  resourceVersion: "42"
spec:
  podSelector:
    matchLabels: {app: web}
    matchExpressions:
    - {key: tier, operator: In, values: [front]}
    - {key: canary, operator: DoesNotExist}
  containerSelector:
    matchLabels: {name: nginx}
  kprobes: [{call: sys_openat}]
`)
	m := p.Metadata
	if !p.Namespaced() || m.Name != "web.watch" || m.Namespace != "shop" || m.Labels["tier"] != "" ||
		m.Annotations["example.com/owner"] != "team a" {
		t.Fatalf("metadata: %+v", m)
	}
	ps := p.Spec.PodSelector
	if ps.MatchLabels["app"] != "web" || len(ps.MatchExpressions) != 2 || ps.MatchExpressions[1].Operator != "DoesNotExist" {
		t.Fatalf("podSelector: %+v", ps)
	}
	if p.Spec.ContainerSelector.MatchLabels["name"] != "nginx" {
		t.Fatalf("containerSelector: %+v", p.Spec.ContainerSelector)
	}
	_, err := Parse("x.yaml", []byte(header+"  containerSelector: {matchLabels: {image: nginx}}\n  kprobes: [{call: sys_openat}]\n"))
	if err == nil || !strings.Contains(err.Error(), `containerSelector supports only the key "name", got "image"`) {
		t.Fatalf("containerSelector with another key: %v", err)
	}
}

func TestOtherHooks(t *testing.T) {
	p := parseOne(t, header+`  tracepoints:
  - subsystem: sched
    event: sched_process_exec
    args: [{index: 4, type: nop}]
    selectors:
    - matchBinaries: [{operator: In, values: [/usr/bin/nc]}]
      matchActions: [{action: Sigkill}]
  lsmhooks:
  - hook: file_open
    args: [{index: 0, type: file}]
    selectors:
    - matchArgs: [{index: 0, operator: Equal, values: [/etc/shadow]}]
      matchActions: [{action: Override, argError: -13}]
  uprobes:
  - path: /bin/bash
    symbols: [readline, "net/http.(*Server).Serve"]
    return: true
    returnArg: {index: 0, type: string}
    selectors:
    - matchReturnArgs: [{operator: Prefix, values: [sudo]}]
      matchActions: [{action: Signal, argSig: 19}]
  options:
  - {name: policy-mode, value: monitor}
  - {name: disable-kprobe-multi, value: "true"}
  - {name: hook-mechanism, value: syscall-tracepoint}
`)
	s := p.Spec
	if tp := s.Tracepoints[0]; tp.Subsystem != "sched" || tp.Event != "sched_process_exec" || tp.Raw || tp.Args[0].Index != 4 ||
		tp.Selectors[0].MatchBinaries[0].Values[0] != "/usr/bin/nc" {
		t.Errorf("tracepoint: %+v", tp)
	}
	if l := s.LsmHooks[0]; l.Hook != "file_open" || l.Selectors[0].MatchActions[0].ArgError != -13 {
		t.Errorf("lsm hook: %+v", l)
	}
	if u := s.UProbes[0]; u.Path != "/bin/bash" || u.Symbols[0] != "readline" || u.Selectors[0].MatchReturnArgs[0].ArgType != TypeString ||
		u.Selectors[0].MatchActions[0].ArgSig != 19 {
		t.Errorf("uprobe: %+v", u)
	}
	if s.Mode != ModeMonitor || len(s.Options) != 3 || s.Options[1].Value != "true" || s.HookMechanism != MechanismSyscallTracepoint {
		t.Errorf("options: mode %q mechanism %q %+v", s.Mode, s.HookMechanism, s.Options)
	}
}

// Hundreds of paths in one filter are ordinary; the bounds are reported.
func TestValueLimits(t *testing.T) {
	policyWith := func(n int) string {
		var b strings.Builder
		b.WriteString(header + fdInstall + "    - matchArgs:\n      - index: 1\n        operator: Prefix\n        values:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "        - /srv/data/%04d/\n", i)
		}
		return b.String()
	}
	p := parseOne(t, policyWith(MaxValues))
	if got := len(p.Spec.KProbes[0].Selectors[0].MatchArgs[0].Values); got != MaxValues {
		t.Fatalf("%d values, want %d", got, MaxValues)
	}
	_, err := Parse("x.yaml", []byte(policyWith(MaxValues+1)))
	if err == nil || err.Error() != "x.yaml:17:9: spec.kprobes[0].selectors[0].matchArgs[0].values: has 4097 entries, at most 4096 are allowed" {
		t.Fatalf("too many values: %v", err)
	}
}

func TestFileSizeLimit(t *testing.T) {
	big := header + "  kprobes: [{call: sys_openat}]\n" + strings.Repeat("#", MaxFileSize)
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("big.yaml: file is larger than the %d-byte limit for policy files", MaxFileSize)
	if _, err := ParseFile(path); err == nil || err.Error() != want {
		t.Fatalf("ParseFile: %v", err)
	}
	if _, err := Parse("big.yaml", []byte(big)); err == nil || err.Error() != want {
		t.Fatalf("Parse: %v", err)
	}
	if _, err := ParseFile(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// measure runs f and returns its allocations and duration.
func measure(f func()) (uint64, time.Duration) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, elapsed
}

// Anchors and aliases cannot make parsing expand exponentially: the walk
// stops after a bounded number of nodes.
func TestAliasBombs(t *testing.T) {
	// Billion laughs through merge keys: m9 merges nine m8s, each merging
	// nine m7s, ... 9^9 mappings.
	var merge strings.Builder
	merge.WriteString(header + "  kprobes:\n  - call: sys_openat\n    x-anchors:\n      m0: &m0 {call: sys_openat}\n")
	for i := 1; i <= 9; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d, ", i-1), 9), ", ")
		fmt.Fprintf(&merge, "      m%d: &m%d {<<: [%s]}\n", i, i, refs)
	}
	merge.WriteString("  - <<: *m9\n")

	// Billion laughs within the schema: 128 kprobes sharing 5 selectors
	// sharing 8 matchArgs sharing 4096 values would be 21 million values.
	var schema strings.Builder
	schema.WriteString(header + "  kprobes:\n  - &k\n    call: sys_write\n    args: [{index: 0, type: fd}]\n    selectors: &s\n    - matchArgs: &m\n      - index: 0\n        operator: Prefix\n        values: &v\n")
	for i := 0; i < MaxValues; i++ {
		fmt.Fprintf(&schema, "        - /%d/\n", i)
	}
	schema.WriteString("      " + strings.Repeat("- *m0\n      ", 0))
	for i := 1; i < MaxFilters; i++ {
		schema.WriteString("- {index: 0, operator: Prefix, values: *v}\n      ")
	}
	schema.WriteString("\n")
	for i := 1; i < MaxSelectors; i++ {
		schema.WriteString("    - {matchArgs: *m}\n")
	}
	for i := 1; i < maxHooks; i++ {
		schema.WriteString("  - *k\n")
	}

	// Wide merges: a mapping of 20000 keys merged 500 times, merged 500
	// times: each level is small, the product is not.
	var wide strings.Builder
	wide.WriteString(header + "  kprobes:\n  - call: sys_openat\n    x-anchors:\n      a: &a {")
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&wide, "k%d: 1, ", i)
	}
	wide.WriteString("}\n      b: &b {<<: [" + strings.TrimSuffix(strings.Repeat("*a, ", 500), ", ") + "]}\n")
	wide.WriteString("  - <<: [" + strings.TrimSuffix(strings.Repeat("*b, ", 500), ", ") + "]\n")

	for _, c := range []struct{ name, doc, want string }{
		{"merge keys", merge.String(), "spec.kprobes[1]: merge keys (<<) nested more than 10 deep"},
		{"wide merges", wide.String(), fmt.Sprintf("spec.kprobes[1]: document too large: more than %d YAML nodes (after expanding aliases)", maxNodes)},
		{"schema", schema.String(), fmt.Sprintf("document too large: more than %d YAML nodes (after expanding aliases)", maxNodes)},
	} {
		doc := c.doc
		t.Run(c.name, func(t *testing.T) {
			var err error
			alloc, elapsed := measure(func() { _, err = Parse("bomb.yaml", []byte(doc)) })
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Count(err.Error(), "\n") > 10 {
				t.Fatalf("%d-byte bomb: %v", len(doc), err)
			}
			if alloc > 512<<20 || elapsed > 10*time.Second {
				t.Fatalf("%d-byte bomb cost %d MiB and %v", len(doc), alloc>>20, elapsed)
			}
			t.Logf("%d-byte bomb rejected in %v, %d MiB allocated", len(doc), elapsed, alloc>>20)
		})
	}
}

func BenchmarkParseFileMonitoring(b *testing.B) {
	data, err := os.ReadFile("testdata/file_monitoring.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("file_monitoring.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// The error examples in policies/README.md are what the parser prints.
func TestReadmeErrorExamples(t *testing.T) {
	readme, err := os.ReadFile("../../policies/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("my-policy.yaml", []byte(header+`  kprobes:
  - call: fd_install
    args:
    - index: 0
      type: int
    - index: 1
      type: fil
`))
	if err == nil {
		t.Fatal("parsed")
	}
	got := strings.Split(err.Error(), "\n")
	examples := 0
	for _, line := range strings.Split(string(readme), "\n") {
		if !strings.HasPrefix(line, "my-policy.yaml:") {
			continue
		}
		examples++
		prefix := strings.TrimSuffix(line, "...)")
		found := false
		for _, g := range got {
			found = found || g == line || prefix != line && strings.HasPrefix(g, prefix)
		}
		if !found {
			t.Errorf("README example %q is not among the errors:\n%s", line, err)
		}
	}
	if examples != 2 {
		t.Errorf("found %d examples in the README", examples)
	}
}

// spec.fentries (Tetragon 1.6) takes the kprobe spec, defaults included.
func TestFentries(t *testing.T) {
	ps, err := ParseFile("../../test/testdata/tetragon/examples/tracingpolicy/fentry.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := ps[0].Spec
	if len(s.KProbes) != 0 || len(s.Fentries) != 2 || s.Hooks() != 2 {
		t.Fatalf("kprobes %d, fentries %d, hooks %d: want 0, 2, 2", len(s.KProbes), len(s.Fentries), s.Hooks())
	}
	c, cl := s.Fentries[0], s.Fentries[1]
	if c.Call != "tcp_connect" || c.Syscall || !c.Return || c.ReturnArg == nil || c.ReturnArg.Type != TypeInt ||
		len(c.Args) != 1 || c.Args[0].Type != TypeSock {
		t.Errorf("tcp_connect: %+v", c)
	}
	if cl.Call != "tcp_close" || cl.Syscall || cl.Return || len(cl.Args) != 1 || cl.Args[0].Type != TypeSock {
		t.Errorf("tcp_close: %+v", cl)
	}
}

// spec.rawtracepoints are tracepoints read raw.
func TestRawTracepointsParse(t *testing.T) {
	ps, err := ParseFile("../../test/testdata/tetragon/examples/tracingpolicy/rawtp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := ps[0].Spec
	if len(s.Tracepoints) != 1 || !s.Tracepoints[0].Raw || s.Tracepoints[0].Event != "sched_process_exec" ||
		len(s.Tracepoints[0].Args) != 1 || s.Tracepoints[0].Args[0].Type != TypeLinuxBinprm {
		t.Fatalf("tracepoints %+v", s.Tracepoints)
	}
}
