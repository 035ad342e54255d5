package compiler

import (
	"fmt"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

func TestCompileSockMatch(t *testing.T) {
	sock := sensor.Arg{Source: sensor.SrcRegSock, Kind: sensor.KindPath}
	sockaddr := sensor.Arg{Source: sensor.SrcRegSockaddr, Kind: sensor.KindPath}
	socket := sensor.Arg{Source: sensor.SrcRegSocket, Kind: sensor.KindPath}
	for _, tc := range []struct {
		arg    sensor.Arg
		op     string
		values []string
		want   string // the compiled entry, or the error
	}{
		{sock, "DAddr", []string{"127.0.0.1/8", "fd00::1/8"}, "op 12 ints [] prefixes [127.0.0.0/8 fd00::/8]"},
		{sock, "NotSAddr", []string{"10.1.2.3"}, "op 11 ints [] prefixes [10.1.2.3/32]"},
		{sock, "DPort", []string{"80", "1000:2000"}, fmt.Sprintf("op 16 ints [%d %d] prefixes []", 80|80<<32, 1000|2000<<32)},
		{sock, "Protocol", []string{"IPPROTO_TCP", "17"}, fmt.Sprintf("op 18 ints [%d %d] prefixes []", 6|6<<32, 17|17<<32)},
		{sock, "State", []string{"TCP_SYN_SENT"}, fmt.Sprintf("op 20 ints [%d] prefixes []", 2|2<<32)},
		{socket, "DPort", []string{"443"}, fmt.Sprintf("op 16 ints [%d] prefixes []", 443|443<<32)},
		{socket, "NotDAddr", []string{"::1"}, "op 13 ints [] prefixes [::1/128]"},
		{sockaddr, "Family", []string{"AF_INET6"}, fmt.Sprintf("op 19 ints [%d] prefixes []", 10|10<<32)},
		{sockaddr, "DAddr", []string{"127.0.0.1"}, "operator DAddr does not apply to a sockaddr argument: it has one address and port, which Tetragon matches with SAddr, NotSAddr, SPort, NotSPort (and Family)"},
		{sensor.Arg{Kind: sensor.KindInt}, "DPort", []string{"80"}, "operator DPort needs a sock, socket, skb or sockaddr argument read by this mechanism"},
		{sock, "DAddr", []string{"127.0.0.1/33"}, `operator DAddr: "127.0.0.1/33" is not an IPv4 or IPv6 CIDR (as 127.0.0.0/8 or fd00::/8)`},
		{sock, "DPort", []string{"2000:1000"}, `operator DPort: port range "2000:1000" is empty: 2000 is above 1000`},
		{sock, "DPort", []string{"65536"}, `operator DPort: "65536" is not a port (0-65535) or a port range (lo:hi)`},
		{sock, "State", []string{"TCP_SYN"}, `operator State: "TCP_SYN" is not a TCP state (TCP_ESTABLISHED, TCP_SYN_SENT, ... or a number)`},
		{sock, "SPort", []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}, "operator SPort: 9 values, at most 8 in the kernel (addresses have no such limit)"},
	} {
		cm, err := parseAndCompile(tc.arg, tp.TypeSock, tc.op, tc.values)
		got := fmt.Sprintf("op %d ints %v prefixes %v", cm.Op, cm.Ints, cm.Prefixes)
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s %v: got\n%s\nwant\n%s", tc.op, tc.values, got, tc.want)
		}
	}
}

// The compiled filter entries, as the kernel gets them.
// parseAndCompile compiles a filter on arg of declared type typ as the
// parser and the compiler do, each value parsed by the parser; a value the
// parser refuses is reported as the operator's.
func parseAndCompile(arg sensor.Arg, typ tp.ArgType, op string, values []string) (sensor.Match, error) {
	m := tp.ArgSelector{Operator: tp.Operator(op), ArgType: typ, Values: values}
	for _, v := range values {
		if err := m.ParseValue(v); err != nil {
			return sensor.Match{}, fmt.Errorf("operator %s: %w", op, err)
		}
	}
	return compileMatch(arg, 0, m)
}
