package compiler

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// shorter names for the parsed filters the compile test builds
type (
	tpPID       = tp.PIDSelector
	tpBinary    = tp.BinarySelector
	tpNamespace = tp.NamespaceSelector
	tpCaps      = tp.CapabilitiesSelector
)

// TestCompileFilters checks the compile step's refusals: each names the
// filter and what is allowed.
func TestCompileFilters(t *testing.T) {
	args := []tp.ArgSpec{{Index: 1, Type: "file"}}
	nine := make([]uint32, 9)
	for _, c := range []struct {
		name string
		ret  bool
		sel  tp.Selector
		want string
	}{
		{"pid operator", false, tp.Selector{MatchPIDs: []tpPID{{Operator: "Equal", Values: []uint32{1}}}},
			`matchPIDs: operator "Equal" is not supported (supported: In, NotIn)`},
		{"too many pids", false, tp.Selector{MatchPIDs: []tpPID{{Operator: "In", Values: nine}}},
			"matchPIDs: 9 values, at most 8 in the kernel"},
		{"binary operator", false, tp.Selector{MatchBinaries: []tpBinary{{Operator: "Equal", Values: []string{"/bin/sh"}}}},
			`matchBinaries: operator "Equal" is not supported (supported: In, NotIn, Prefix, NotPrefix, Postfix, NotPostfix)`},
		{"long binary", false, tp.Selector{MatchBinaries: []tpBinary{{Operator: "In", Values: []string{"/" + strings.Repeat("x", 300)}}}},
			"is 301 bytes, at most 253 can be matched in the kernel"},
		{"parent binary operator", false, tp.Selector{MatchParentBinaries: []tpBinary{{Operator: "Equal", Values: []string{"/bin/sh"}}}},
			`matchParentBinaries: operator "Equal" is not supported (supported: In, NotIn, Prefix, NotPrefix, Postfix, NotPostfix)`},
		{"namespace", false, tp.Selector{MatchNamespaces: []tpNamespace{{Namespace: "Kube", Operator: "In", IDs: []uint32{1}}}},
			`matchNamespaces: namespace "Kube" is not supported (supported: Uts, Ipc, Mnt, Pid, PidForChildren, Net, Time, TimeForChildren, Cgroup, User)`},
		{"too many namespaces", false, tp.Selector{MatchNamespaces: []tpNamespace{{Namespace: "Net", Operator: "In", IDs: nine}}},
			"matchNamespaces: 9 values, at most 8 in the kernel"},
		{"capability operator", false, tp.Selector{MatchCapabilities: []tpCaps{{Type: "Effective", Operator: "Prefix", Mask: 1}}},
			`matchCapabilities: operator "Prefix" is not supported (supported: In, NotIn)`},
		{"return without return", false, tp.Selector{MatchReturnArgs: []tp.ArgSelector{{Operator: "Equal", Values: []string{"0"}, IntValues: []int64{0}, ArgType: "int"}}},
			"matchReturnArgs: the hook has no return value to match (it needs return: true)"},
		{"string return", true, tp.Selector{MatchReturnArgs: []tp.ArgSelector{{Operator: "Equal", Values: []string{"x"}, ArgType: "string"}}},
			`matchReturnArgs: the return value is declared "string"; only integer return values can be matched in the kernel`},
		{"return operator", true, tp.Selector{MatchReturnArgs: []tp.ArgSelector{{Operator: "Prefix", Values: []string{"1"}, IntValues: []int64{1}, ArgType: "int"}}},
			"matchReturnArgs: operator Prefix needs a string or path argument"},
		{"too many entries", false, tp.Selector{MatchPIDs: slices.Repeat([]tpPID{{Operator: "In", Values: []uint32{1}}}, 9)},
			"9 filter entries (matchArgs, matchReturnArgs, matchPIDs, matchBinaries, matchParentBinaries, matchNamespaces and matchCapabilities together), at most 8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Decl{Call: "fd_install", Return: c.ret, Args: args, Selectors: []tp.Selector{c.sel}}
			_, _, err := compileSelectors(d, []sensor.Arg{{Source: sensor.SrcRegKFile, Kind: sensor.KindPath}}, map[uint32]int{1: 0}, nil)
			if err == nil || !strings.Contains(err.Error(), "fd_install: selectors[0]: ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}

	// what compiles: cheapest entries first, the ancestor walks last
	d := Decl{Call: "sys_openat", Return: true, Args: args, Selectors: []tp.Selector{{
		MatchBinaries:     []tpBinary{{Operator: "NotPostfix", Values: []string{"/sh"}, FollowChildren: true}},
		MatchPIDs:         []tpPID{{Operator: "In", Values: []uint32{7}, FollowForks: true}, {Operator: "NotIn", Values: []uint32{8}, IsNamespacePID: true}},
		MatchCapabilities: []tpCaps{{Operator: "In", Mask: 1 << 21}},
		MatchNamespaces:   []tpNamespace{{Namespace: "Net", Operator: "NotIn", IDs: []uint32{4026531840}}},
		MatchReturnArgs:   []tp.ArgSelector{{Operator: "LessThan", Values: []string{"0"}, IntValues: []int64{0}, ArgType: "int"}},
		MatchArgs:         []tp.ArgSelector{{Index: 1, Operator: "Prefix", Values: []string{"/etc/"}}},
	}}}
	sels, _, err := compileSelectors(d, []sensor.Arg{{Source: sensor.SrcRegKFile, Kind: sensor.KindPath}}, map[uint32]int{1: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []sensor.Match{
		{Kind: sensor.MatchReturn, Op: sensor.OpLT, Ints: []int64{0}, Size: 4, Signed: true},
		{Kind: sensor.MatchArg, Op: sensor.OpPrefix, Strings: []string{"/etc/"}},
		{Kind: sensor.MatchNamespace, Arg: int(sensor.NsNet), Op: sensor.OpNotEqual, Ints: []int64{4026531840}},
		{Kind: sensor.MatchCaps, Arg: int(sensor.CapsEffective), Op: sensor.OpEqual, Ints: []int64{1 << 21}},
		{Kind: sensor.MatchPID, Op: sensor.OpNotEqual, Ints: []int64{8}, NamespacePID: true},
		{Kind: sensor.MatchPID, Op: sensor.OpEqual, Ints: []int64{7}, Follow: true},
		{Kind: sensor.MatchBinary, Op: sensor.OpNotPostfix, Strings: []string{"/sh"}, Follow: true},
	}
	if got := sels[0].Matches; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("entries\n  %+v\nwant\n  %+v", got, want)
	}
}
