package hookevent

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/escape"
)

// Linux constants, by the names Tetragon reports.
var (
	familyNames   = map[uint16]string{1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6"}
	sockTypeNames = map[uint16]string{1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 5: "SOCK_SEQPACKET"}
	protoNames    = map[uint16]string{1: "IPPROTO_ICMP", 6: "IPPROTO_TCP", 17: "IPPROTO_UDP", 58: "IPPROTO_ICMPV6", 132: "IPPROTO_SCTP"}
	tcpStateNames = map[uint8]string{
		1: "TCP_ESTABLISHED", 2: "TCP_SYN_SENT", 3: "TCP_SYN_RECV", 4: "TCP_FIN_WAIT1", 5: "TCP_FIN_WAIT2",
		6: "TCP_TIME_WAIT", 7: "TCP_CLOSE", 8: "TCP_CLOSE_WAIT", 9: "TCP_LAST_ACK", 10: "TCP_LISTEN",
		11: "TCP_CLOSING", 12: "TCP_NEW_SYN_RECV",
	}
)

const (
	afInet  = 2
	afInet6 = 10
)

// name is k's name, or k in decimal for a value without one.
func name[K uint8 | uint16](names map[K]string, k K) string {
	if n, ok := names[k]; ok {
		return n
	}
	return strconv.FormatUint(uint64(k), 10)
}

// sockArg decodes struct sock_data (bpf/hook.c): family, type and
// protocol, source port, destination port (host order), state, then the
// addresses at 16 and 32 (network order).
func sockArg(b []byte) *api.KprobeSock {
	if len(b) < 48 {
		return &api.KprobeSock{}
	}
	le := binary.LittleEndian
	family := le.Uint16(b[0:])
	s := &api.KprobeSock{
		Family:   name(familyNames, family),
		Type:     name(sockTypeNames, le.Uint16(b[2:])),
		Protocol: name(protoNames, le.Uint16(b[4:])),
		Sport:    uint32(le.Uint16(b[6:])),
		Dport:    uint32(le.Uint16(b[8:])),
		State:    name(tcpStateNames, b[10]),
	}
	s.Saddr, s.Daddr = addr(family, b[16:32]), addr(family, b[32:48])
	return s
}

// sockaddrArg decodes a struct sockaddr_in or sockaddr_in6.
func sockaddrArg(b []byte) *api.KprobeSockaddr {
	if len(b) < 2 {
		return &api.KprobeSockaddr{}
	}
	family := binary.LittleEndian.Uint16(b)
	s := &api.KprobeSockaddr{Family: name(familyNames, family)}
	switch {
	case family == afInet && len(b) >= 8:
		s.Port, s.Addr = uint32(binary.BigEndian.Uint16(b[2:])), addr(family, b[4:8])
	case family == afInet6 && len(b) >= 24:
		s.Port, s.Addr = uint32(binary.BigEndian.Uint16(b[2:])), addr(family, b[8:24])
	}
	return s
}

func addr(family uint16, b []byte) string {
	switch {
	case family == afInet && len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4])).String()
	case family == afInet6 && len(b) >= 16:
		return netip.AddrFrom16([16]byte(b[:16])).String()
	}
	return ""
}

// skbArg decodes struct skb_data (bpf/hook.c): the packet's fields in
// struct sock_data's layout (48 bytes), then the skb's length, priority,
// mark and hash. Tetragon's sec_path fields are not read.
func skbArg(b []byte) *api.KprobeSkb {
	if len(b) < 64 {
		return &api.KprobeSkb{}
	}
	le := binary.LittleEndian
	family, proto := le.Uint16(b[0:]), le.Uint16(b[4:])
	s := &api.KprobeSkb{
		Sport: uint32(le.Uint16(b[6:])), Dport: uint32(le.Uint16(b[8:])),
		Proto: uint32(proto), Len: le.Uint32(b[48:]), Priority: le.Uint32(b[52:]),
		Mark: le.Uint32(b[56:]), Hash: le.Uint32(b[60:]),
	}
	if family != 0 {
		s.Family, s.Protocol = name(familyNames, family), name(protoNames, proto)
	}
	s.Saddr, s.Daddr = addr(family, b[16:32]), addr(family, b[32:48])
	return s
}

// bpfProgTypes are enum bpf_prog_type's names, as Tetragon reports them.
var bpfProgTypes = []string{
	"BPF_PROG_TYPE_UNSPEC", "BPF_PROG_TYPE_SOCKET_FILTER", "BPF_PROG_TYPE_KPROBE", "BPF_PROG_TYPE_SCHED_CLS",
	"BPF_PROG_TYPE_SCHED_ACT", "BPF_PROG_TYPE_TRACEPOINT", "BPF_PROG_TYPE_XDP", "BPF_PROG_TYPE_PERF_EVENT",
	"BPF_PROG_TYPE_CGROUP_SKB", "BPF_PROG_TYPE_CGROUP_SOCK", "BPF_PROG_TYPE_LWT_IN", "BPF_PROG_TYPE_LWT_OUT",
	"BPF_PROG_TYPE_LWT_XMIT", "BPF_PROG_TYPE_SOCK_OPS", "BPF_PROG_TYPE_SK_SKB", "BPF_PROG_TYPE_CGROUP_DEVICE",
	"BPF_PROG_TYPE_SK_MSG", "BPF_PROG_TYPE_RAW_TRACEPOINT", "BPF_PROG_TYPE_CGROUP_SOCK_ADDR",
	"BPF_PROG_TYPE_LWT_SEG6LOCAL", "BPF_PROG_TYPE_LIRC_MODE2", "BPF_PROG_TYPE_SK_REUSEPORT",
	"BPF_PROG_TYPE_FLOW_DISSECTOR", "BPF_PROG_TYPE_CGROUP_SYSCTL", "BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE",
	"BPF_PROG_TYPE_CGROUP_SOCKOPT", "BPF_PROG_TYPE_TRACING", "BPF_PROG_TYPE_STRUCT_OPS", "BPF_PROG_TYPE_EXT",
	"BPF_PROG_TYPE_LSM", "BPF_PROG_TYPE_SK_LOOKUP", "BPF_PROG_TYPE_SYSCALL", "BPF_PROG_TYPE_NETFILTER",
}

// bpfAttrArg decodes struct bpf_attr_data (bpf/hook.c): the program
// type, its instruction count and its name.
func bpfAttrArg(b []byte) *api.KprobeBpfAttr {
	if len(b) < 24 {
		return &api.KprobeBpfAttr{}
	}
	le := binary.LittleEndian
	t := le.Uint32(b[0:])
	a := &api.KprobeBpfAttr{ProgType: strconv.FormatUint(uint64(t), 10), InsnCnt: le.Uint32(b[4:])}
	if int(t) < len(bpfProgTypes) {
		a.ProgType = bpfProgTypes[t]
	}
	name := b[8:24]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	a.ProgName = escape.String(string(name))
	return a
}

// bpfMapTypes names enum bpf_map_type's values, as Tetragon reports them.
var bpfMapTypes = []string{
	"BPF_MAP_TYPE_UNSPEC", "BPF_MAP_TYPE_HASH", "BPF_MAP_TYPE_ARRAY", "BPF_MAP_TYPE_PROG_ARRAY",
	"BPF_MAP_TYPE_PERF_EVENT_ARRAY", "BPF_MAP_TYPE_PERCPU_HASH", "BPF_MAP_TYPE_PERCPU_ARRAY",
	"BPF_MAP_TYPE_STACK_TRACE", "BPF_MAP_TYPE_CGROUP_ARRAY", "BPF_MAP_TYPE_LRU_HASH",
	"BPF_MAP_TYPE_LRU_PERCPU_HASH", "BPF_MAP_TYPE_LPM_TRIE", "BPF_MAP_TYPE_ARRAY_OF_MAPS",
	"BPF_MAP_TYPE_HASH_OF_MAPS", "BPF_MAP_TYPE_DEVMAP", "BPF_MAP_TYPE_SOCKMAP", "BPF_MAP_TYPE_CPUMAP",
	"BPF_MAP_TYPE_XSKMAP", "BPF_MAP_TYPE_SOCKHASH", "BPF_MAP_TYPE_CGROUP_STORAGE",
	"BPF_MAP_TYPE_REUSEPORT_SOCKARRAY", "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE", "BPF_MAP_TYPE_QUEUE",
	"BPF_MAP_TYPE_STACK", "BPF_MAP_TYPE_SK_STORAGE", "BPF_MAP_TYPE_DEVMAP_HASH", "BPF_MAP_TYPE_STRUCT_OPS",
	"BPF_MAP_TYPE_RINGBUF", "BPF_MAP_TYPE_INODE_STORAGE", "BPF_MAP_TYPE_TASK_STORAGE",
	"BPF_MAP_TYPE_BLOOM_FILTER", "BPF_MAP_TYPE_USER_RINGBUF", "BPF_MAP_TYPE_CGRP_STORAGE",
	"BPF_MAP_TYPE_ARENA",
}

// bpfMapArg decodes struct bpf_map_data (bpf/hook.c).
func bpfMapArg(b []byte) *api.KprobeBpfMap {
	if len(b) < 32 {
		return &api.KprobeBpfMap{}
	}
	le := binary.LittleEndian
	t := le.Uint32(b[0:])
	m := &api.KprobeBpfMap{MapType: strconv.FormatUint(uint64(t), 10), KeySize: le.Uint32(b[4:]),
		ValueSize: le.Uint32(b[8:]), MaxEntries: le.Uint32(b[12:]), MapName: escape.String(cString(b[16:32]))}
	if int(t) < len(bpfMapTypes) {
		m.MapType = bpfMapTypes[t]
	}
	return m
}

// perfTypes names the fixed perf_event_attr types (enum perf_type_id);
// a dynamic PMU's events are named by the PMU.
var perfTypes = []string{"PERF_TYPE_HARDWARE", "PERF_TYPE_SOFTWARE", "PERF_TYPE_TRACEPOINT",
	"PERF_TYPE_HW_CACHE", "PERF_TYPE_RAW", "PERF_TYPE_BREAKPOINT"}

// perfEventArg decodes struct perf_event_data (bpf/hook.c): config,
// config2, type, PMU name (16 bytes), kprobe function (64 bytes).
func perfEventArg(b []byte) *api.KprobePerfEvent {
	if len(b) < 100 {
		return &api.KprobePerfEvent{}
	}
	le := binary.LittleEndian
	t := le.Uint32(b[16:])
	p := &api.KprobePerfEvent{Config: le.Uint64(b[0:]), ProbeAddr: le.Uint64(b[8:]),
		Type: escape.String(cString(b[20:36])), KprobeFunc: escape.String(cString(b[36:100]))}
	if int(t) < len(perfTypes) {
		p.Type = perfTypes[t]
	} else if p.Type == "" {
		p.Type = strconv.FormatUint(uint64(t), 10)
	}
	return p
}

// cString is b up to its first NUL byte.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
