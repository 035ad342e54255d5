package compiler

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// The socket tracking a policy asks for, as compiled for kprobes (with the
// running kernel's BTF: no kprobe is attached), and its refusals.
func TestCompileTrackSock(t *testing.T) {
	funcs, err := kernelFuncs(runningKernel())
	if err != nil {
		t.Skipf("kernel lacks BTF: %v", err)
	}
	ps, err := tp.Parse("p.yaml", fmt.Appendf(nil, testutil.TrackSockPolicy, "", "", 1, 4000, "TrackSock"))
	if err != nil {
		t.Fatal(err)
	}
	decls, err := FromPolicy(ps[0], false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, d := range decls {
		spec, _, err := compileKprobe(d, uint32(i), funcs, map[string]bool{"kprobe": true, "kretprobe": true})
		if err != nil {
			t.Fatalf("%s: %v", d.Call, err)
		}
		for _, s := range spec.Selectors {
			got = append(got, fmt.Sprintf("%s ret=%d acts=%d sockarg=%d", d.Call, spec.RetSockAction, s.Actions, s.SockArg))
		}
	}
	want := []string{
		fmt.Sprintf("sk_alloc ret=%d acts=0 sockarg=0", sensor.RetTrackSock),
		fmt.Sprintf("__sk_free ret=0 acts=%d sockarg=0", sensor.ActUntrackSock),
		fmt.Sprintf("udp_sendmsg ret=0 acts=%d sockarg=0", sensor.ActPost),
	}
	if !slices.Equal(got, want) {
		t.Errorf("compiled:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// what the parser refuses, located
	for _, tc := range []struct{ policy, want string }{
		{strings.Replace(testutil.TrackSockPolicy, `      type: "sock"
    returnArgAction`, `      type: "int"
    returnArgAction`, 1), `returnArgAction TrackSock needs a returnArg of type sock`},
		{strings.Replace(testutil.TrackSockPolicy, "argSock: 0", "argSock: 1", 1), `argSock 1 is not a declared argument (declared: 0)`},
		{strings.Replace(testutil.TrackSockPolicy, `  - call: "udp_sendmsg"`, `  - call: "udp_sendmsg"
    args: [{index: 2, type: size_t}]
    selectors: [{matchActions: [{action: TrackSock, argSock: 2}]}]
  - call: "udp_sendmsg"`, 1), `argSock 2 is declared size_t; TrackSock needs a sock, socket or skb argument`},
	} {
		_, err := tp.Parse("p.yaml", fmt.Appendf(nil, tc.policy, "", "", 1, 4000, "TrackSock"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
	}
	// the syscall-tracepoint mapping cannot follow sockets
	d := Decl{Call: "sys_socket", Syscall: true, Return: true, ReturnType: "int", ReturnArgAction: tp.ReturnArgTrackSock}
	if _, _, err := compileSyscallMapping(d, 1, "the test asks for it"); err == nil || !strings.Contains(err.Error(), "returnArgAction TrackSock needs kprobes") {
		t.Errorf("mapping: error %v, want a refusal of returnArgAction TrackSock", err)
	}
}
