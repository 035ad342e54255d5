package tracingpolicy

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestSockValues(t *testing.T) {
	for _, tc := range []struct {
		op   Operator
		in   string
		want string // the parsed value, or the error
	}{
		{OpDAddr, "127.0.0.1/8", "127.0.0.0/8"},
		{OpDAddr, " 10.1.2.3 ", "10.1.2.3/32"},
		{OpSAddr, "fd00::1/8", "fd00::/8"},
		{OpSAddr, "::1", "::1/128"},
		{OpSAddr, "::ffff:127.0.0.1/104", "::ffff:127.0.0.0/104"},
		{OpDAddr, "127.0.0.1/33", `"127.0.0.1/33" is not an IPv4 or IPv6 CIDR (as 127.0.0.0/8 or fd00::/8)`},
		{OpDAddr, "fe80::1%eth0", `"fe80::1%eth0" is not an IPv4 or IPv6 address or CIDR`},
		{OpDAddr, "localhost", `"localhost" is not an IPv4 or IPv6 address or CIDR`},
		{OpDPort, "80", "{80 80}"},
		{OpDPort, "1000:2000", "{1000 2000}"},
		{OpSPort, "0:65535", "{0 65535}"},
		{OpDPort, "65536", `"65536" is not a port (0-65535) or a port range (lo:hi)`},
		{OpDPort, "-1", `"-1" is not a port (0-65535) or a port range (lo:hi)`},
		{OpDPort, "0x50", `"0x50" is not a port (0-65535) or a port range (lo:hi)`},
		{OpDPort, "2:1", `port range "2:1" is empty: 2 is above 1`},
		{OpProtocol, "IPPROTO_TCP", "6"},
		{OpProtocol, "17", "17"},
		{OpFamily, "AF_INET6", "10"},
		{OpFamily, "AF_UNIX", "1"},
		{OpState, "TCP_SYN_SENT", "2"},
		{OpState, "TCP_NEW_SYN_RECV", "12"},
		{OpState, "256", `"256" is not a TCP state (TCP_ESTABLISHED, TCP_SYN_SENT, ... or a number)`},
		{OpProtocol, "tcp", `"tcp" is not a protocol (IPPROTO_TCP, IPPROTO_UDP, ... or a number)`},
	} {
		var got string
		var err error
		switch {
		case tc.op.Address():
			var p netip.Prefix
			p, err = ParseCIDR(tc.in)
			got = p.String()
		case tc.op.Port():
			var r SockRange
			r, err = ParsePort(tc.in)
			got = fmt.Sprint(r)
		default:
			var n uint32
			n, err = ParseSockName(tc.op, tc.in)
			got = fmt.Sprint(n)
		}
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s %q: got %s, want %s", tc.op, tc.in, got, tc.want)
		}
	}
}

// The socket operators in policies: values checked where they are, and
// sockaddr arguments limited to the operators a socket address can take.
func TestSockOperatorErrors(t *testing.T) {
	policy := func(typ, op, value string) string {
		return `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: x
spec:
  kprobes:
  - call: tcp_connect
    syscall: false
    args:
    - index: 0
      type: ` + typ + `
    selectors:
    - matchArgs:
      - index: 0
        operator: ` + op + `
        values:
        - "` + value + `"
`
	}
	for _, tc := range []struct{ typ, op, value, want string }{
		{"sock", "NotDAddr", "127.0.0.0/8", ""},
		{"sockaddr", "SPort", "80:90", ""},
		{"skb", "Protocol", "IPPROTO_UDP", ""},
		{"sock", "DAddr", "300.0.0.1", `x.yaml:17:11: spec.kprobes[0].selectors[0].matchArgs[0].values[0]: "300.0.0.1" is not an IPv4 or IPv6 address or CIDR`},
		{"sockaddr", "DPort", "80", `x.yaml:15:19: spec.kprobes[0].selectors[0].matchArgs[0].operator: operator DPort does not apply to type sockaddr: a socket address has one address and port, which Tetragon matches with SAddr, NotSAddr, SPort, NotSPort (and Family)`},
		{"int", "DPort", "80", `x.yaml:15:19: spec.kprobes[0].selectors[0].matchArgs[0].operator: operator DPort does not apply to type int (integers take Equal, NotEqual, Mask, GreaterThan, LessThan, InRange, NotInRange, InMap, NotInMap)`},
		{"sock", "Equal", "x", `x.yaml:15:19: spec.kprobes[0].selectors[0].matchArgs[0].operator: operator Equal does not apply to type sock (sockets take SAddr, NotSAddr, DAddr, NotDAddr, SPort, NotSPort, DPort, NotDPort, Protocol, Family, State; sockaddr only SAddr, NotSAddr, SPort, NotSPort, Family)`},
	} {
		_, err := Parse("x.yaml", []byte(policy(tc.typ, tc.op, tc.value)))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s %s %s: got\n%s\nwant\n%s", tc.typ, tc.op, tc.value, got, tc.want)
		}
	}
}

// The *PortPriv operators are port filters on 0-1023 with no values (any
// given are not read, as in Tetragon); matchArgs' args names an argument
// by its position in the hook's args list, which wins over index.
func TestPrivPortAndArgPosition(t *testing.T) {
	doc := `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: x
spec:
  kprobes:
  - call: security_socket_connect
    syscall: false
    args:
    - index: 0
      type: socket
    - index: 1
      type: sockaddr
    selectors:
    - matchArgs:
      - index: 0
        operator: NotDPortPriv
      - index: 0
        operator: SPortPriv
        values: ["not read"]
      - index: 0
        args: [1]
        operator: NotSportPriv
`
	pol, err := Parse("x.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	got := pol[0].Spec.KProbes[0].Selectors[0].MatchArgs
	want := []struct {
		op    Operator
		index uint32
	}{{OpNotDPort, 0}, {OpSPort, 0}, {OpNotSPort, 1}}
	if len(got) != len(want) {
		t.Fatalf("%d filters, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Operator != w.op || g.Index != w.index || len(g.Ranges) != 1 || g.Ranges[0] != (Range{0, 1023}) {
			t.Errorf("filter %d: %s on %d, ranges %v; want %s on %d, ranges [{0 1023}]", i, g.Operator, g.Index, g.Ranges, w.op, w.index)
		}
	}
}

// FuzzSockValues: the socket operators' value parsers never panic, and
// what they accept is what the kernel can compare: a masked CIDR that
// reads back the same, a non-empty 16-bit port range, a value within its
// field's width.
func FuzzSockValues(f *testing.F) {
	for _, s := range []string{"127.0.0.1/8", "::1", "fd00::/8", "::ffff:10.0.0.1/120", "1000:2000", "80", "IPPROTO_TCP", "AF_INET6", "TCP_SYN_SENT", "0x11", "65535:0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := ParseCIDR(s); err == nil {
			if !p.IsValid() || p != p.Masked() || p.Bits() > p.Addr().BitLen() {
				t.Fatalf("%q: %v", s, p)
			}
			if q, err := ParseCIDR(p.String()); err != nil || q != p {
				t.Fatalf("%q: %v reads back as %v, %v", s, p, q, err)
			}
		}
		if r, err := ParsePort(s); err == nil && (r.Lo > r.Hi || r.Hi > 65535) {
			t.Fatalf("%q: port range %v", s, r)
		}
		for op, limit := range map[Operator]uint32{OpProtocol: 65535, OpFamily: 65535, OpState: 255} {
			if n, err := ParseSockName(op, s); err == nil && n > limit {
				t.Fatalf("%s %q: %d", op, s, n)
			}
		}
	})
}
