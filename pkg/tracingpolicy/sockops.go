package tracingpolicy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Tetragon's socket operators, on sock, skb and sockaddr arguments.
const (
	OpSAddr    Operator = "SAddr"
	OpNotSAddr Operator = "NotSAddr"
	OpDAddr    Operator = "DAddr"
	OpNotDAddr Operator = "NotDAddr"
	OpSPort    Operator = "SPort"
	OpNotSPort Operator = "NotSPort"
	OpDPort    Operator = "DPort"
	OpNotDPort Operator = "NotDPort"
	OpProtocol Operator = "Protocol"
	OpFamily   Operator = "Family"
	OpState    Operator = "State"
)

const sockOperatorNames = "SAddr, NotSAddr, DAddr, NotDAddr, SPort, NotSPort, DPort, NotDPort, Protocol, Family, State"

// Socket reports whether o is a socket operator.
func (o Operator) Socket() bool {
	switch o {
	case OpSAddr, OpNotSAddr, OpDAddr, OpNotDAddr, OpSPort, OpNotSPort, OpDPort, OpNotDPort,
		OpProtocol, OpFamily, OpState:
		return true
	}
	return false
}

// Address reports whether o matches an address against CIDRs.
func (o Operator) Address() bool {
	return o == OpSAddr || o == OpNotSAddr || o == OpDAddr || o == OpNotDAddr
}

// Port reports whether o matches a port.
func (o Operator) Port() bool {
	return o == OpSPort || o == OpNotSPort || o == OpDPort || o == OpNotDPort
}

// onSockaddr reports whether o applies to a sockaddr argument: it has one
// address and one port, which Tetragon's operators name the source's.
func (o Operator) onSockaddr() bool {
	return o == OpSAddr || o == OpNotSAddr || o == OpSPort || o == OpNotSPort || o == OpFamily
}

// privPortOperator maps Tetragon's privileged-port operators to the port
// operator they are with the ports 0-1023 (Tetragon: "port < 1024").
// NotSportPriv is the CRD's spelling, NotSPortPriv its docs'.
func privPortOperator(s string) (Operator, bool) {
	switch s {
	case "SPortPriv":
		return OpSPort, true
	case "NotSPortPriv", "NotSportPriv":
		return OpNotSPort, true
	case "DPortPriv":
		return OpDPort, true
	case "NotDPortPriv":
		return OpNotDPort, true
	}
	return "", false
}

// SockRange is an inclusive range of a socket field's values (a port, a
// protocol, a family or a TCP state).
type SockRange struct{ Lo, Hi uint32 }

// Linux's names for the values Protocol, Family and State compare, as
// Tetragon reports and accepts them.
var (
	protocolByName = map[string]uint32{
		"IPPROTO_IP": 0, "IPPROTO_ICMP": 1, "IPPROTO_IGMP": 2, "IPPROTO_TCP": 6, "IPPROTO_UDP": 17,
		"IPPROTO_IPV6": 41, "IPPROTO_GRE": 47, "IPPROTO_ICMPV6": 58, "IPPROTO_SCTP": 132,
		"IPPROTO_UDPLITE": 136, "IPPROTO_MPTCP": 262, "IPPROTO_RAW": 255,
	}
	familyByName = map[string]uint32{
		"AF_UNSPEC": 0, "AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_INET6": 10,
		"AF_NETLINK": 16, "AF_PACKET": 17, "AF_VSOCK": 40, "AF_XDP": 44,
	}
	stateByName = map[string]uint32{
		"TCP_ESTABLISHED": 1, "TCP_SYN_SENT": 2, "TCP_SYN_RECV": 3, "TCP_FIN_WAIT1": 4,
		"TCP_FIN_WAIT2": 5, "TCP_TIME_WAIT": 6, "TCP_CLOSE": 7, "TCP_CLOSE_WAIT": 8,
		"TCP_LAST_ACK": 9, "TCP_LISTEN": 10, "TCP_CLOSING": 11, "TCP_NEW_SYN_RECV": 12,
	}
)

// ParseCIDR parses an address operator's value: a CIDR (127.0.0.1/8,
// fd00::/8) or a single address (10.0.0.1, ::1), IPv4 or IPv6. The
// address is masked to the prefix. An IPv4-mapped IPv6 address stays
// IPv6, as the kernel keeps it.
func ParseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 or IPv6 address or CIDR", truncate(s))
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 or IPv6 CIDR (as 127.0.0.0/8 or fd00::/8)", truncate(s))
	}
	return p.Masked(), nil
}

// ParsePort parses a port operator's value: a port number (0-65535), or
// an inclusive range lo:hi.
func ParsePort(s string) (SockRange, error) {
	s = strings.TrimSpace(s)
	lo, hi, isRange := strings.Cut(s, ":")
	if !isRange {
		hi = lo
	}
	l, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	h, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if err1 != nil || err2 != nil {
		return SockRange{}, fmt.Errorf("%q is not a port (0-65535) or a port range (lo:hi)", truncate(s))
	}
	if l > h {
		return SockRange{}, fmt.Errorf("port range %q is empty: %d is above %d", truncate(s), l, h)
	}
	return SockRange{uint32(l), uint32(h)}, nil
}

// ParseSockName parses a Protocol, Family or State value: Linux's name
// (IPPROTO_TCP, AF_INET, TCP_SYN_SENT) or a number.
func ParseSockName(op Operator, s string) (uint32, error) {
	var names map[string]uint32
	var what string
	var limit uint64
	switch op {
	case OpProtocol:
		names, what, limit = protocolByName, "protocol (IPPROTO_TCP, IPPROTO_UDP, ... or a number)", 1<<16-1
	case OpFamily:
		names, what, limit = familyByName, "address family (AF_INET, AF_INET6, AF_UNIX, ... or a number)", 1<<16-1
	case OpState:
		names, what, limit = stateByName, "TCP state (TCP_ESTABLISHED, TCP_SYN_SENT, ... or a number)", 1<<8-1
	default:
		return 0, fmt.Errorf("operator %s takes no names", op)
	}
	s = strings.TrimSpace(s)
	if v, ok := names[s]; ok {
		return v, nil
	}
	if n, err := strconv.ParseUint(s, 0, 64); err == nil && n <= limit {
		return uint32(n), nil
	}
	return 0, fmt.Errorf("%q is not a %s", truncate(s), what)
}

// addSockValue checks one value of socket operator a.Operator and adds it,
// parsed, to a: an address's CIDR to Prefixes, a port range or a name's
// number to Ranges.
func (a *ArgSelector) addSockValue(s string) error {
	switch op := a.Operator; {
	case op.Address():
		p, err := ParseCIDR(s)
		if err != nil {
			return err
		}
		a.Prefixes = append(a.Prefixes, p)
	case op.Port():
		r, err := ParsePort(s)
		if err != nil {
			return err
		}
		a.Ranges = append(a.Ranges, Range{int64(r.Lo), int64(r.Hi)})
	default:
		n, err := ParseSockName(op, s)
		if err != nil {
			return err
		}
		a.Ranges = append(a.Ranges, Range{int64(n), int64(n)})
	}
	return nil
}
