// Package probe decides which BPF hook mechanisms and helpers the running
// kernel really offers, by loading and attaching tiny programs rather than
// by reading the kernel version: distribution kernels differ in config
// (CONFIG_KPROBES, CONFIG_FPROBE, the lsm= list) far more than versions
// suggest, and a verifier or attach error is the only reliable answer.
package kernelfeatures

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Feature names, in report order.
const (
	Kprobe         = "kprobe"
	Kretprobe      = "kretprobe"
	KprobeMulti    = "kprobe_multi"
	Fentry         = "fentry"
	Fexit          = "fexit"
	FmodRet        = "fmod_ret"
	BPFLSM         = "bpf_lsm"
	Tracepoint     = "tracepoint"
	RawTracepoint  = "raw_tracepoint"
	TpBTF          = "tp_btf"
	Uprobe         = "uprobe"
	SendSignal     = "send_signal"
	OverrideReturn = "override_return"
	Ringbuf        = "ringbuf"
	BPFLoop        = "bpf_loop"
	LinkPinning    = "link_pinning"
	BTF            = "btf"
)

// Names returns every feature the probe decides, in report order.
func Names() []string {
	return []string{
		Kprobe, Kretprobe, KprobeMulti, Fentry, Fexit, FmodRet, BPFLSM,
		Tracepoint, RawTracepoint, TpBTF, Uprobe, SendSignal, OverrideReturn,
		Ringbuf, BPFLoop, LinkPinning, BTF,
	}
}

// Known reports whether name is a feature the probe decides.
func Known(name string) bool { return slices.Contains(Names(), name) }

// Feature is the verdict on one mechanism or helper.
type Feature struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	// Reason says why the feature is unavailable (the failing step and its
	// error); empty when available.
	Reason string `json:"reason,omitempty"`
}

// Report is the outcome of one probe run.
type Report struct {
	// Kernel is the release of the probed kernel (uname -r).
	Kernel string `json:"kernel"`
	// Features holds one entry per name in Names, in that order.
	Features []Feature `json:"features"`
	// Duration is how long the probe took.
	Duration time.Duration `json:"duration_ns"`
}

// Has reports whether the named feature is available.
func (r Report) Has(name string) bool {
	f, ok := r.Feature(name)
	return ok && f.Available
}

// Feature returns the verdict on name, and false if the report lacks it.
func (r Report) Feature(name string) (Feature, bool) {
	for _, f := range r.Features {
		if f.Name == name {
			return f, true
		}
	}
	return Feature{}, false
}

// Map returns availability by feature name.
func (r Report) Map() map[string]bool {
	m := make(map[string]bool, len(r.Features))
	for _, f := range r.Features {
		m[f.Name] = f.Available
	}
	return m
}

// Available returns the names of the available features, in report order.
func (r Report) Available() []string {
	var names []string
	for _, f := range r.Features {
		if f.Available {
			names = append(names, f.Name)
		}
	}
	return names
}

// Run probes the running kernel. It needs the privileges of the agent
// (root, or CAP_BPF+CAP_PERFMON+CAP_SYS_ADMIN). It mounts tracefs, bpffs
// and securityfs where they are missing and leaves them mounted, as the
// agent needs them too; every program, map, link and pin it creates is
// gone when it returns. The error is non-nil only when ctx ends first:
// a feature that cannot be tried is reported unavailable with the reason.
func Run(ctx context.Context) (Report, error) {
	start := time.Now()
	// as the agent does before loading anything: an EPERM from a load is
	// then never the memlock limit (see reason)
	if err := rlimit.RemoveMemlock(); err != nil {
		return Report{}, fmt.Errorf("removing the memlock limit: %w", err)
	}
	p := newProber()
	checks := p.checks()
	rep := Report{Kernel: kernelRelease(), Features: make([]Feature, len(checks))}
	// The checks are independent, and most of their time is the kernel
	// waiting for RCU grace periods on detach, so they run side by side.
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			f := Feature{Name: c.name}
			if err := ctx.Err(); err != nil {
				f.Reason = err.Error()
			} else if err := c.run(); err != nil {
				f.Reason = reason(err)
			} else {
				f.Available = true
			}
			rep.Features[i] = f
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("probing kernel features: %w", err)
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// memlockHint is what cilium/ebpf adds to any EPERM from a program load.
const memlockHint = " (MEMLOCK may be too low, consider rlimit.RemoveMemlock)"

// reason is the one-line reason of a failed check. Run has removed the
// memlock limit (or the kernel charges BPF memory to the cgroup, 5.11 and
// later), so a load refused with EPERM is the kernel refusing the program
// type: the library's memlock hint is replaced by that.
func reason(err error) string {
	msg := oneLine(err.Error())
	if errors.Is(err, unix.EPERM) && strings.Contains(msg, memlockHint) {
		msg = strings.Replace(msg, memlockHint, "", 1) + " (the kernel refuses this program type even to root; not a memlock limit)"
	}
	return msg
}

// oneLine keeps a reason printable in a table: verifier errors span lines.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
