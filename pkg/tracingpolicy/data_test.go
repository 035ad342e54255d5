package tracingpolicy

import (
	"errors"
	"strings"
	"testing"
)

// connectData is the hook of Tetragon's cve-2026-65960.yaml (lines 6-16);
// selectors follow from line 17.
const connectData = `  kprobes:
  - call: security_socket_connect
    syscall: false
    args:
    - index: 1
      type: sockaddr
    data:
    - index: 0
      source: current_task
      type: uint32
      resolve: cred.euid.val
      label: euid
`

// data: entries are parsed as arguments read from the current task, and
// matchData filters them by position with matchArgs' operators.
func TestDataParsed(t *testing.T) {
	ps, err := Parse("x.yaml", []byte(header+connectData+`    - source: current_task
      type: string
      resolve: comm
    selectors:
    - matchArgs:
      - {index: 1, operator: SPort, values: ["54321"]}
      matchData:
      - {index: 0, operator: NotEqual, values: ["0"]}
      - {index: 1, operator: Prefix, values: ["sh"]}
      - {index: 0, operator: InRange, values: ["1:999"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	k := ps[0].Spec.KProbes[0]
	if len(k.Data) != 2 {
		t.Fatalf("data %+v, want 2 entries", k.Data)
	}
	d0, d1 := k.Data[0], k.Data[1]
	if d0.Index != 0 || d0.Type != TypeUint32 || d0.Resolve != "cred.euid.val" || d0.Label != "euid" ||
		d1.Index != 1 || d1.Type != TypeString || d1.Resolve != "comm" || d1.Label != "" {
		t.Fatalf("data %+v", k.Data)
	}
	md := k.Selectors[0].MatchData
	if len(md) != 3 {
		t.Fatalf("matchData %+v", md)
	}
	if md[0].Operator != OpNotEqual || md[0].ArgType != TypeUint32 || len(md[0].IntValues) != 1 || md[0].IntValues[0] != 0 {
		t.Errorf("matchData[0] %+v", md[0])
	}
	if md[1].Operator != OpPrefix || md[1].ArgType != TypeString || md[1].Values[0] != "sh" {
		t.Errorf("matchData[1] %+v", md[1])
	}
	if md[2].Operator != OpInRange || len(md[2].Ranges) != 1 {
		t.Errorf("matchData[2] %+v", md[2])
	}
	if len(k.Selectors[0].MatchArgs) != 1 {
		t.Errorf("matchArgs %+v", k.Selectors[0].MatchArgs)
	}
}

// The example itself parses but for its name: Tetragon validates
// metadata.name as a DNS subdomain (RFC 1123: lower case) when a policy is
// added through gRPC as through Kubernetes, and so does this agent.
func TestDataExample(t *testing.T) {
	_, err := ParseFile("../../test/testdata/tetragon/examples/tracingpolicy/cves/cve-2026-65960.yaml")
	var list *ErrorList
	if !errors.As(err, &list) || len(list.Errors) != 1 || !strings.Contains(list.Errors[0].Error(), `metadata.name: invalid policy name "CVE-2026-65960"`) {
		t.Fatalf("parse: %v, want only the name refused", err)
	}
}

func TestDataErrors(t *testing.T) {
	sel := "    selectors:\n    - matchData:\n"
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"pt_regs", strings.Replace(connectData, "current_task", "pt_regs", 1),
			[]string{`x.yaml:14:15: spec.kprobes[0].data[0].source: source pt_regs (a register of the probed context) is not supported by this agent (supported: current_task)`}},
		{"unknown source", strings.Replace(connectData, "current_task", "parent_task", 1),
			[]string{`x.yaml:14:15: spec.kprobes[0].data[0].source: unknown source "parent_task" (supported: current_task)`}},
		{"no source", strings.Replace(connectData, "      source: current_task\n", "", 1),
			[]string{`x.yaml:13:7: spec.kprobes[0].data[0]: missing required field "source"`}},
		{"no resolve", strings.Replace(connectData, "      resolve: cred.euid.val\n", "", 1),
			[]string{`x.yaml:14:15: spec.kprobes[0].data[0].source: source current_task needs resolve, the path of task_struct members to read (cred.euid.val)`}},
		{"bad resolve", strings.Replace(connectData, "cred.euid.val", "cred..euid", 1),
			[]string{`x.yaml:16:16: spec.kprobes[0].data[0].resolve: invalid resolve path "cred..euid": a member name is empty (write members joined by single dots)`}},
		{"char_buf", strings.Replace(connectData, "type: uint32", "type: char_buf", 1),
			[]string{`x.yaml:15:13: spec.kprobes[0].data[0].type: type char_buf cannot be a data entry (a resolve path ends at an integer, a string or a kernel object)`}},
		{"maxData", connectData + "      maxData: true\n",
			[]string{`x.yaml:18:7: spec.kprobes[0].data[0].maxData: maxData is not supported by this agent`}},
		{"matchData out of range", connectData + sel + "      - {index: 1, operator: Equal, values: [\"0\"]}\n",
			[]string{`x.yaml:20:17: spec.kprobes[0].selectors[0].matchData[0].index: data index 1 is not declared: matchData's index is a data entry's position, and data has 1 entries`}},
		{"matchData operator", connectData + sel + "      - {index: 0, operator: Prefix, values: [\"0\"]}\n",
			[]string{`x.yaml:20:30: spec.kprobes[0].selectors[0].matchData[0].operator: operator Prefix does not apply to type uint32 (integers take Equal, NotEqual, Mask, GreaterThan, LessThan, InRange, NotInRange, InMap, NotInMap)`}},
		{"matchData value", connectData + sel + "      - {index: 0, operator: Equal, values: [\"root\"]}\n",
			[]string{`x.yaml:20:46: spec.kprobes[0].selectors[0].matchData[0].values[0]: value "root" is not an integer (type uint32)`}},
		{"matchData without data", `  kprobes:
  - call: security_socket_connect
    syscall: false
` + sel + "      - {index: 0, operator: Equal, values: [\"0\"]}\n",
			[]string{`x.yaml:11:9: spec.kprobes[0].selectors[0].matchData[0]: matchData filters the hook's data entries, and this hook declares none (data: is read on kprobes)`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(header+c.yaml))
			var list *ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %v, want an *ErrorList", err)
			}
			var got []string
			for _, e := range list.Errors {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}
