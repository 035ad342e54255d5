package hookevent

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/observer"
	"github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

func TestRateLimitPerScope(t *testing.T) {
	b := NewBuilder(zerolog.Nop(), nil)
	h := &Hook{Limits: []RateLimit{{Period: time.Second, Scope: tracingpolicy.ScopeProcess}, {}}}
	sec := uint64(time.Second)
	for i, c := range []struct {
		g    observer.HookRecord
		want bool
	}{
		{observer.HookRecord{HookID: 1, Pid: 10, Tid: 11, Ktime: 1 * sec}, false},
		{observer.HookRecord{HookID: 1, Pid: 10, Tid: 12, Ktime: 1*sec + 1}, true}, // same process
		{observer.HookRecord{HookID: 1, Pid: 20, Tid: 21, Ktime: 1*sec + 2}, false},
		{observer.HookRecord{HookID: 1, Pid: 10, Tid: 11, Ktime: 2 * sec}, false}, // period over
		{observer.HookRecord{HookID: 1, Pid: 10, Tid: 11, Ktime: 2 * sec, Selector: 1}, false},
		{observer.HookRecord{HookID: 1, Pid: 10, Tid: 11, Ktime: 2 * sec, Selector: 1}, false}, // no limit
	} {
		if got := b.limited(h, &c.g); got != c.want {
			t.Errorf("record %d: limited=%v, want %v", i, got, c.want)
		}
	}
	if b.RateLimited() != 1 {
		t.Errorf("RateLimited()=%d, want 1", b.RateLimited())
	}
}
