package compiler

import (
	"fmt"

	"github.com/tetragon-lite/tetragon/pkg/sensor"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// sockOps maps Tetragon's socket operators to the kernel's.
var sockOps = map[tracingpolicy.Operator]sensor.Op{
	tracingpolicy.OpSAddr: sensor.OpSAddr, tracingpolicy.OpNotSAddr: sensor.OpNotSAddr,
	tracingpolicy.OpDAddr: sensor.OpDAddr, tracingpolicy.OpNotDAddr: sensor.OpNotDAddr,
	tracingpolicy.OpSPort: sensor.OpSPort, tracingpolicy.OpNotSPort: sensor.OpNotSPort,
	tracingpolicy.OpDPort: sensor.OpDPort, tracingpolicy.OpNotDPort: sensor.OpNotDPort,
	tracingpolicy.OpProtocol: sensor.OpProtocol, tracingpolicy.OpFamily: sensor.OpFamily,
	tracingpolicy.OpState: sensor.OpState,
}

// compileSockMatch compiles a socket operator on a sock, socket (read as
// its sock) or sockaddr argument: addresses become CIDRs for the LPM trie, ports ranges, and
// Protocol, Family and State names their numbers (one-value ranges), all
// compared in the kernel by match_sock (bpf/lib/hook.h).
func compileSockMatch(arg sensor.Arg, slot int, m tracingpolicy.ArgSelector) (sensor.Match, error) {
	op := m.Operator
	cm := sensor.Match{Arg: slot, Op: sockOps[op]}
	switch arg.Source {
	case sensor.SrcRegSock, sensor.SrcRegSocket, sensor.SrcRegSkb:
	case sensor.SrcRegSockaddr:
		switch op {
		case tracingpolicy.OpSAddr, tracingpolicy.OpNotSAddr, tracingpolicy.OpSPort, tracingpolicy.OpNotSPort, tracingpolicy.OpFamily:
		default:
			return cm, fmt.Errorf("operator %s does not apply to a sockaddr argument: it has one address and port, which Tetragon matches with SAddr, NotSAddr, SPort, NotSPort (and Family)", op)
		}
	default:
		return cm, fmt.Errorf("operator %s needs a sock, socket, skb or sockaddr argument read by this mechanism", op)
	}
	if len(m.Prefixes) == 0 && len(m.Ranges) == 0 {
		return cm, fmt.Errorf("operator %s: no values", op)
	}
	cm.Prefixes = m.Prefixes
	for _, r := range m.Ranges {
		cm.Ints = append(cm.Ints, sensor.SockRange(uint32(r.Lo), uint32(r.Hi)))
	}
	if len(cm.Ints) > sensor.MaxIntValues {
		return cm, fmt.Errorf("operator %s: %d values, at most %d in the kernel (addresses have no such limit)", op, len(cm.Ints), sensor.MaxIntValues)
	}
	return cm, nil
}
