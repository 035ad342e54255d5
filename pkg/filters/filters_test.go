package filters

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

func proc(pid uint32, binary, args string) *api.Process {
	return &api.Process{Pid: wrapperspb.UInt32(pid), Binary: binary, Arguments: args}
}

func execEvent(p, parent *api.Process) *api.GetEventsResponse {
	return &api.GetEventsResponse{
		Event:    &api.GetEventsResponse_ProcessExec{ProcessExec: &api.ProcessExec{Process: p, Parent: parent}},
		NodeName: "node1",
	}
}

func exitEvent(p, parent *api.Process) *api.GetEventsResponse {
	return &api.GetEventsResponse{
		Event:    &api.GetEventsResponse_ProcessExit{ProcessExit: &api.ProcessExit{Process: p, Parent: parent, Status: 1}},
		NodeName: "node1",
	}
}

func inCtr(p *api.Process, id, name string) *api.Process {
	p.Docker = id
	p.Container = &api.Container{Id: id, Name: name}
	return p
}

func TestFields(t *testing.T) {
	curl := execEvent(proc(42, "/usr/bin/curl", "-s https://example.com"), proc(10, "/usr/bin/bash", ""))
	curlExit := exitEvent(proc(42, "/usr/bin/curl", "-s https://example.com"), proc(10, "/usr/bin/bash", ""))
	web := execEvent(inCtr(proc(77, "/usr/sbin/nginx", "-g daemon off;"), "0123456789abcdef0123", "web-1"), proc(1, "/sbin/init", ""))
	idOnly := execEvent(inCtr(proc(78, "/bin/sh", ""), "fedcba9876543210", ""), nil)
	noProcess := &api.GetEventsResponse{NodeName: "node1"}
	podProc := inCtr(proc(80, "/usr/bin/xwing", "--fly"), "aaaa1111", "xwing")
	podProc.Pod = &api.Pod{Namespace: "default", Name: "xwing", PodLabels: map[string]string{"app": "xwing", "org": "alliance"}}
	podProc.Cap = &api.Capabilities{
		Permitted: []api.CapabilitiesType{api.CapabilitiesType_CAP_CHOWN, api.CapabilitiesType_CAP_NET_RAW},
		Effective: []api.CapabilitiesType{api.CapabilitiesType_CAP_NET_RAW},
	}
	xwing := execEvent(podProc, proc(1, "/sbin/init", "--pod"))
	netRaw, chown, sysAdmin := api.CapabilitiesType_CAP_NET_RAW, api.CapabilitiesType_CAP_CHOWN, api.CapabilitiesType_CAP_SYS_ADMIN
	capsFilter := func(eff *api.CapFilterSet) *api.Filter {
		return &api.Filter{Capabilities: &api.CapFilter{Effective: eff}}
	}

	tests := []struct {
		name   string
		filter *api.Filter
		pass   []*api.GetEventsResponse
		reject []*api.GetEventsResponse
	}{
		{"empty filter matches all", &api.Filter{}, []*api.GetEventsResponse{curl, curlExit, web, idOnly, noProcess}, nil},
		{"binary_regex", &api.Filter{BinaryRegex: []string{"curl$"}}, []*api.GetEventsResponse{curl, curlExit}, []*api.GetEventsResponse{web, idOnly, noProcess}},
		{"binary_regex any entry", &api.Filter{BinaryRegex: []string{"^/nope", "nginx"}}, []*api.GetEventsResponse{web}, []*api.GetEventsResponse{curl}},
		{"binary_regex is unanchored", &api.Filter{BinaryRegex: []string{"bin/cu"}}, []*api.GetEventsResponse{curl}, []*api.GetEventsResponse{web}},
		{"pid", &api.Filter{Pid: []uint32{7, 77}}, []*api.GetEventsResponse{web}, []*api.GetEventsResponse{curl, noProcess}},
		{"event_set exec", &api.Filter{EventSet: []api.EventType{api.EventType_PROCESS_EXEC}}, []*api.GetEventsResponse{curl, web}, []*api.GetEventsResponse{curlExit, noProcess}},
		{"event_set exit or kprobe", &api.Filter{EventSet: []api.EventType{api.EventType_PROCESS_KPROBE, api.EventType_PROCESS_EXIT}}, []*api.GetEventsResponse{curlExit}, []*api.GetEventsResponse{curl}},
		{"pod_regex matches container name", &api.Filter{PodRegex: []string{"^web-"}}, []*api.GetEventsResponse{web}, []*api.GetEventsResponse{curl, idOnly}},
		{"container_name_regex", &api.Filter{ContainerNameRegex: []string{"web"}}, []*api.GetEventsResponse{web}, []*api.GetEventsResponse{curl, idOnly}},
		{"empty regex needs a container name", &api.Filter{ContainerNameRegex: []string{""}}, []*api.GetEventsResponse{web}, []*api.GetEventsResponse{curl, idOnly}},
		{"arguments_regex", &api.Filter{ArgumentsRegex: []string{`https://`}}, []*api.GetEventsResponse{curl, curlExit}, []*api.GetEventsResponse{web, idOnly}},
		{"policy_names never match events without a policy", &api.Filter{PolicyNames: []string{"p"}}, nil, []*api.GetEventsResponse{curl, curlExit, web, noProcess}},
		{"parent_binary_regex", &api.Filter{ParentBinaryRegex: []string{"bash"}}, []*api.GetEventsResponse{curl, curlExit}, []*api.GetEventsResponse{web, idOnly}},
		{"in_container true", &api.Filter{InContainer: wrapperspb.Bool(true)}, []*api.GetEventsResponse{web, idOnly}, []*api.GetEventsResponse{curl, noProcess}},
		{"in_container false", &api.Filter{InContainer: wrapperspb.Bool(false)}, []*api.GetEventsResponse{curl, curlExit}, []*api.GetEventsResponse{web, idOnly, noProcess}},
		{"parent_arguments_regex", &api.Filter{ParentArgumentsRegex: []string{"^--pod$"}}, []*api.GetEventsResponse{xwing}, []*api.GetEventsResponse{curl, web, idOnly, noProcess}},
		{"container_id", &api.Filter{ContainerId: []string{"^0123"}}, []*api.GetEventsResponse{web}, []*api.GetEventsResponse{curl, idOnly, xwing, noProcess}},
		{"labels", &api.Filter{Labels: []string{"app=tiefighter", "app in (xwing,ywing),org!=empire"}}, []*api.GetEventsResponse{xwing}, []*api.GetEventsResponse{curl, web, noProcess}},
		{"labels need a pod", &api.Filter{Labels: []string{"!app"}}, nil, []*api.GetEventsResponse{curl, web, xwing, noProcess}},
		{"capabilities any", capsFilter(&api.CapFilterSet{Any: []api.CapabilitiesType{sysAdmin, netRaw}}), []*api.GetEventsResponse{xwing}, []*api.GetEventsResponse{curl, web}},
		{"capabilities all", capsFilter(&api.CapFilterSet{All: []api.CapabilitiesType{chown, netRaw}}), nil, []*api.GetEventsResponse{xwing, curl}},
		{"capabilities exactly", capsFilter(&api.CapFilterSet{Exactly: []api.CapabilitiesType{netRaw}}), []*api.GetEventsResponse{xwing}, []*api.GetEventsResponse{curl}},
		{"capabilities none", capsFilter(&api.CapFilterSet{None: []api.CapabilitiesType{netRaw}}), []*api.GetEventsResponse{curl, web}, []*api.GetEventsResponse{xwing}},
		{"capabilities sets are ANDed", &api.Filter{Capabilities: &api.CapFilter{
			Permitted: &api.CapFilterSet{All: []api.CapabilitiesType{chown, netRaw}},
			Effective: &api.CapFilterSet{None: []api.CapabilitiesType{chown}},
		}}, []*api.GetEventsResponse{xwing}, []*api.GetEventsResponse{curl}},
		{"every set field must match", &api.Filter{BinaryRegex: []string{"curl"}, EventSet: []api.EventType{api.EventType_PROCESS_EXIT}}, []*api.GetEventsResponse{curlExit}, []*api.GetEventsResponse{curl, web}},
		{"pod and container both must match", &api.Filter{PodRegex: []string{"web"}, ContainerNameRegex: []string{"db"}}, nil, []*api.GetEventsResponse{web}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New([]*api.Filter{tt.filter}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range tt.pass {
				if !m.Match(ev) {
					t.Errorf("allow %v rejected %v", tt.filter, ev)
				}
			}
			for _, ev := range tt.reject {
				if m.Match(ev) {
					t.Errorf("allow %v passed %v", tt.filter, ev)
				}
			}
			// The same filter in the deny list inverts the outcome.
			d, err := New(nil, []*api.Filter{tt.filter})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range tt.pass {
				if d.Match(ev) {
					t.Errorf("deny %v passed %v", tt.filter, ev)
				}
			}
			for _, ev := range tt.reject {
				if !d.Match(ev) {
					t.Errorf("deny %v rejected %v", tt.filter, ev)
				}
			}
		})
	}
}

func TestPolicyNames(t *testing.T) {
	m, err := New([]*api.Filter{{PolicyNames: []string{"fd-install", "net"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Only kinds not yet in the proto carry a policy: check the field logic on a view.
	f := &m.allow[0]
	if !f.match(&view{policy: "net"}) {
		t.Error("policy net rejected")
	}
	if f.match(&view{policy: "other"}) {
		t.Error("policy other passed")
	}
	if f.match(&view{}) {
		t.Error("event without policy passed")
	}
}

func TestAllowAndDeny(t *testing.T) {
	bash := proc(10, "/usr/bin/bash", "")
	curl := execEvent(proc(42, "/usr/bin/curl", ""), bash)
	wget := execEvent(proc(43, "/usr/bin/wget", ""), bash)
	ls := execEvent(proc(44, "/bin/ls", ""), bash)

	m, err := New(
		[]*api.Filter{{BinaryRegex: []string{"curl"}}, {BinaryRegex: []string{"wget"}}},
		[]*api.Filter{{Pid: []uint32{43}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Match(curl) {
		t.Error("curl: allowed by the first filter, denied by none, was rejected")
	}
	if m.Match(wget) {
		t.Error("wget: denied by pid, passed")
	}
	if m.Match(ls) {
		t.Error("ls: allowed by no filter, passed")
	}

	var none *Matcher
	if !none.Match(ls) {
		t.Error("nil Matcher rejected an event")
	}
	empty, err := New(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !empty.Match(ls) || !empty.Match(&api.GetEventsResponse{}) {
		t.Error("empty Matcher rejected an event")
	}
	nilFilter, err := New([]*api.Filter{nil}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !nilFilter.Match(ls) {
		t.Error("nil allow filter (matches all) rejected an event")
	}
}

func TestBadRegex(t *testing.T) {
	tests := []struct {
		allow, deny []*api.Filter
		want        []string
	}{
		{[]*api.Filter{{BinaryRegex: []string{"ok", "a("}}}, nil, []string{"allow filter 0", "binary_regex", `"a("`, "missing closing )"}},
		{nil, []*api.Filter{{}, {ArgumentsRegex: []string{"[z-a]"}}}, []string{"deny filter 1", "arguments_regex", `"[z-a]"`}},
		{[]*api.Filter{{PodRegex: []string{"*"}}}, nil, []string{"pod_regex", `"*"`}},
		{[]*api.Filter{{ContainerNameRegex: []string{`\`}}}, nil, []string{"container_name_regex"}},
		{[]*api.Filter{{ParentBinaryRegex: []string{"x{2,1}"}}}, nil, []string{"parent_binary_regex"}},
		{[]*api.Filter{{BinaryRegex: []string{"a{1001}"}}}, nil, []string{"binary_regex", "invalid repeat count"}},
		{[]*api.Filter{{BinaryRegex: []string{strings.Repeat("a", MaxRegexLen+1)}}}, nil, []string{"binary_regex", "4097 bytes long, the limit is 4096"}},
		{[]*api.Filter{{ContainerId: []string{"("}}}, nil, []string{"container_id", `"("`}},
		{[]*api.Filter{{ParentArgumentsRegex: []string{"+"}}}, nil, []string{"parent_arguments_regex"}},
		{[]*api.Filter{{Labels: []string{"app=web", "app in (a"}}}, nil, []string{"allow filter 0", "labels 1", `"app in (a"`}},
		{nil, []*api.Filter{{Labels: []string{"a=" + strings.Repeat("b", MaxSelectorLen)}}}, []string{"deny filter 0", "labels 0", "1026 bytes, at most 1024"}},
		{[]*api.Filter{{Capabilities: &api.CapFilter{Effective: &api.CapFilterSet{
			Any: []api.CapabilitiesType{api.CapabilitiesType_CAP_CHOWN}, None: []api.CapabilitiesType{api.CapabilitiesType_CAP_KILL}}}}}, nil,
			[]string{"capabilities effective: 2 of any, all, exactly and none set, want one"}},
		{[]*api.Filter{{Capabilities: &api.CapFilter{Permitted: &api.CapFilterSet{}}}}, nil, []string{"capabilities permitted: 0 of any"}},
		{[]*api.Filter{{Capabilities: &api.CapFilter{}}}, nil, []string{"capabilities: no set"}},
	}
	for _, tt := range tests {
		_, err := New(tt.allow, tt.deny)
		if err == nil {
			t.Errorf("New(%v, %v) succeeded, want an error", tt.allow, tt.deny)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	}
	// A character class is one instruction however long.
	if _, err := New([]*api.Filter{{BinaryRegex: []string{"[" + strings.Repeat("a", MaxRegexLen-2) + "]"}}}, nil); err != nil {
		t.Errorf("a regex of exactly MaxRegexLen bytes: %v", err)
	}
}

// Go's regexp is linear in the input but also in the compiled program: a
// 3 KB regex of counted repetitions took 94 s to match a 4 KB path when
// measured. Such regexes are refused at once.
func TestCostlyRegex(t *testing.T) {
	var alts []string
	for i := 1000; i > 550; i-- {
		alts = append(alts, fmt.Sprintf(".{%d}", i))
	}
	slow := "(?:" + strings.Join(alts, "|") + ")z"
	_, err := New([]*api.Filter{{ArgumentsRegex: []string{slow}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "arguments_regex") || !strings.Contains(err.Error(), "instructions, the limit is 1000") {
		t.Errorf("costly regex: error %v", err)
	}
	if len(err.Error()) > 300 {
		t.Errorf("error message is %d bytes long: %s", len(err.Error()), err)
	}

	// At the per-regex limit, matching a PATH_MAX-long binary stays fast.
	edge := ".{990}z"
	m, err := New([]*api.Filter{{BinaryRegex: []string{edge}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := execEvent(proc(1, "/"+strings.Repeat("a", 4095), ""), nil)
	if m.Match(ev) {
		t.Error("matched a binary without z")
	}

	// The budget is shared by all the regexes of both lists.
	big := ".{900}"
	n, err := programSize(big)
	if err != nil {
		t.Fatal(err)
	}
	var allow, deny []*api.Filter
	for i := range MaxMatcherProgram / n {
		if i%2 == 0 {
			allow = append(allow, &api.Filter{BinaryRegex: []string{big}})
		} else {
			deny = append(deny, &api.Filter{PodRegex: []string{big}})
		}
	}
	if _, err := New(allow, deny); err != nil {
		t.Fatalf("within budget: %v", err)
	}
	deny = append(deny, &api.Filter{ParentBinaryRegex: []string{big}})
	if _, err := New(allow, deny); err == nil || !strings.Contains(err.Error(), "in all") || !strings.Contains(err.Error(), "parent_binary_regex") {
		t.Errorf("over budget: error %v", err)
	}
}

func TestTooManyFilters(t *testing.T) {
	fs := make([]*api.Filter, MaxFilters+1)
	if _, err := New(nil, fs); err == nil || !strings.Contains(err.Error(), "deny list has 257 filters, the limit is 256") {
		t.Errorf("error %v", err)
	}
	if _, err := New(fs[:MaxFilters], fs[:MaxFilters]); err != nil {
		t.Error(err)
	}
}

// The reflective view must agree with the typed one on the kinds both know,
// so that kinds added to the proto later are filtered the same way.
func TestReflectViewAgrees(t *testing.T) {
	p := inCtr(proc(5, "/bin/cat", "/etc/passwd"), "abc", "db")
	bash := proc(10, "/usr/bin/bash", "")
	kprobe := &api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessKprobe{ProcessKprobe: &api.ProcessKprobe{
		Process: p, Parent: bash, PolicyName: "pol", FunctionName: "security_file_permission"}}}
	for _, ev := range []*api.GetEventsResponse{execEvent(p, bash), exitEvent(p, bash), execEvent(p, nil), execEvent(nil, nil), kprobe} {
		got, want := reflectView(ev), viewOf(ev)
		if got.typ != want.typ || got.process != want.process || got.parent != want.parent || got.policy != want.policy {
			t.Errorf("reflectView(%v) = %+v, viewOf = %+v", ev, got, want)
		}
	}
	if v := reflectView(exitEvent(p, bash)); v.typ != api.EventType_PROCESS_EXIT {
		t.Errorf("exit event typed %v", v.typ)
	}
}

// An event of a kind this build does not know (from a newer agent) reaches
// us with an empty oneof and the payload in unknown fields: only filters
// that need no kind or process pass it.
func TestUnknownKind(t *testing.T) {
	raw, err := proto.Marshal(&api.GetEventsResponse{NodeName: "n"})
	if err != nil {
		t.Fatal(err)
	}
	raw = protowire.AppendTag(raw, 50, protowire.BytesType)
	raw = protowire.AppendBytes(raw, []byte{0x0a, 0x00})
	ev := &api.GetEventsResponse{}
	if err := proto.Unmarshal(raw, ev); err != nil {
		t.Fatal(err)
	}
	if ev.GetEvent() != nil {
		t.Fatalf("field 50 decoded as a known kind: %v", ev)
	}
	all, _ := New(nil, nil)
	byKind, _ := New([]*api.Filter{{EventSet: []api.EventType{api.EventType_PROCESS_EXEC}}}, nil)
	host, _ := New([]*api.Filter{{InContainer: wrapperspb.Bool(false)}}, nil)
	if !all.Match(ev) || byKind.Match(ev) || host.Match(ev) {
		t.Errorf("unknown kind: all=%v byKind=%v host=%v, want true false false", all.Match(ev), byKind.Match(ev), host.Match(ev))
	}
}

// BenchmarkRegexAtLimit matches a regex at the per-regex program limit
// against a PATH_MAX-long binary: the worst case a client can ask for.
func BenchmarkRegexAtLimit(b *testing.B) {
	m, err := New([]*api.Filter{{BinaryRegex: []string{".{990}z"}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ev := execEvent(proc(1, "/"+strings.Repeat("a", 4095), ""), nil)
	for b.Loop() {
		if m.Match(ev) {
			b.Fatal("matched a binary without z")
		}
	}
}

func TestParseList(t *testing.T) {
	fs, err := ParseList("{\"event_set\":[\"PROCESS_EXEC\"]}\n\n{\"binaryRegex\":[\"curl$\"],\"in_container\":false}\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || len(fs[0].GetEventSet()) != 1 || fs[0].GetEventSet()[0] != api.EventType_PROCESS_EXEC ||
		fs[1].GetBinaryRegex()[0] != "curl$" || fs[1].GetInContainer() == nil || fs[1].GetInContainer().GetValue() {
		t.Fatalf("parsed %v", fs)
	}
	if fs, err := ParseList("  \n"); err != nil || len(fs) != 0 {
		t.Fatalf("blank list: %v %v", fs, err)
	}
	for _, bad := range []string{`{"event_set":["NO_SUCH_TYPE"]}`, `{"binary_regexp":["x"]}`, `{"pid":[1]`, `[1]`} {
		if _, err := ParseList(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
