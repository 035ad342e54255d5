package tracingpolicy

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// The dns type parses as a string-class argument: Tetragon's example loads
// with its Postfix on the name, and socket or integer operators on it, or
// the type on a system call's arguments, are refused where they stand.
func TestDnsType(t *testing.T) {
	example, err := os.ReadFile("../../test/testdata/tetragon/examples/tracingpolicy/dns-egress.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pols, err := Parse("dns-egress.yaml", example)
	if err != nil {
		t.Fatal(err)
	}
	k := pols[0].Spec.KProbes
	if len(k) != 2 || k[1].Args[1].Type != TypeDns || TypeDns.Class() != ClassString {
		t.Fatalf("dns-egress.yaml parsed as %+v", k)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"socket operator on dns", header + `  kprobes:
  - call: udp_sendmsg
    syscall: false
    args:
    - {index: 1, type: dns}
    selectors:
    - matchArgs:
      - {index: 1, operator: DPort, values: ["53"]}
`, `x.yaml:13:30: spec.kprobes[0].selectors[0].matchArgs[0].operator: operator DPort does not apply to type dns (strings take Equal, NotEqual, Prefix, NotPrefix, Postfix, NotPostfix, SubString, SubStringIgnCase)`},
		{"dns on a system call", header + `  kprobes:
  - call: sys_sendmsg
    syscall: true
    args:
    - {index: 1, type: dns}
`, `x.yaml:10:24: spec.kprobes[0].args[0].type: type dns reads a kernel object, but system call arguments are integers and user-space pointers (use fd, int, string or char_buf)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yaml", []byte(tc.yaml))
			var list *ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %v, want an *ErrorList", err)
			}
			var got []string
			for _, e := range list.Errors {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != tc.want {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), tc.want)
			}
		})
	}
}
