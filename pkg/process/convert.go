package process

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/escape"
	"github.com/tetragon-lite/tetragon/pkg/observer"
)

// ExecID builds the id Tetragon uses: node name, start time in boot-clock
// nanoseconds and pid, base64-encoded. Unique across hosts (node), reboots
// and pid reuse (start time).
func ExecID(node string, ktime uint64, pid uint32) string {
	return base64.StdEncoding.EncodeToString([]byte(node + ":" + strconv.FormatUint(ktime, 10) + ":" + strconv.FormatUint(uint64(pid), 10)))
}

// Arguments renders argv without argv[0] the way Tetragon does: joined by
// spaces, an argument with a space in it double-quoted. Bytes that are not
// UTF-8 are escaped (package escape): protobuf strings must be UTF-8, and
// the bytes stay recoverable.
func Arguments(argv []byte, truncated bool) string {
	if len(argv) == 0 {
		return ""
	}
	if !truncated && argv[len(argv)-1] == 0 {
		argv = argv[:len(argv)-1]
	}
	parts := bytes.Split(argv, []byte{0})
	if len(parts) <= 1 {
		return ""
	}
	var b strings.Builder
	for i, p := range parts[1:] {
		if i > 0 {
			b.WriteByte(' ')
		}
		s := escape.Bytes(p)
		if s == "" || strings.ContainsAny(s, " \t\n") {
			b.WriteByte('"')
			b.WriteString(strings.ReplaceAll(s, `"`, `\"`))
			b.WriteByte('"')
			continue
		}
		b.WriteString(s)
	}
	return b.String()
}

// CapsList expands a capability bitmask into Tetragon's enum list.
func CapsList(mask uint64) []api.CapabilitiesType {
	var out []api.CapabilitiesType
	for i := 0; i <= int(api.CapabilitiesType_CAP_CHECKPOINT_RESTORE); i++ {
		if mask&(1<<i) != 0 {
			out = append(out, api.CapabilitiesType(i))
		}
	}
	return out
}

func u32(v uint32) *wrapperspb.UInt32Value { return wrapperspb.UInt32(v) }

// Clock converts boot-clock nanoseconds (bpf_ktime_get_boot_ns) to wall time.
type Clock struct {
	offset int64 // realtime - boottime, ns
}

// NewClock samples the offset between the two clocks now.
func NewClock(realtime time.Time, boottime time.Duration) Clock {
	return Clock{offset: realtime.UnixNano() - int64(boottime)}
}

// Wall converts ktime to wall time.
func (c Clock) Wall(ktime uint64) time.Time { return time.Unix(0, c.offset+int64(ktime)) }

// Timestamp converts ktime to a protobuf timestamp.
func (c Clock) Timestamp(ktime uint64) *timestamppb.Timestamp {
	return timestamppb.New(c.Wall(ktime))
}

func namespaces(ns [observer.NsCount]uint32, host [observer.NsCount]uint32) *api.Namespaces {
	n := func(i int) *api.Namespace {
		return &api.Namespace{Inum: ns[i], IsHost: ns[i] != 0 && ns[i] == host[i]}
	}
	return &api.Namespaces{
		Uts: n(observer.NsUts), Ipc: n(observer.NsIpc), Mnt: n(observer.NsMnt),
		Pid: n(observer.NsPid), PidForChildren: n(observer.NsPidForChildren),
		Net: n(observer.NsNet), Time: n(observer.NsTime), TimeForChildren: n(observer.NsTimeForChildren),
		Cgroup: n(observer.NsCgroup), User: n(observer.NsUser),
	}
}
