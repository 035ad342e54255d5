package hookevent

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/api"
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

// TestCharBufArg: a char_buf is reported as Tetragon reports it, bytes_arg
// or, when the call's size argument says more than was read,
// truncated_bytes_arg with that size, through the whole record decoding.
func TestCharBufArg(t *testing.T) {
	h := &Hook{Kind: KindKprobe, Call: "sys_write", Args: []tracingpolicy.ArgSpec{
		{Index: 0, Type: "int"}, {Index: 1, Type: "char_buf", SizeArgIndex: 3}, {Index: 2, Type: "size_t"}}}
	noSize := &Hook{Kind: KindKprobe, Call: "sys_write", Args: []tracingpolicy.ArgSpec{{Index: 1, Type: "char_buf"}}}
	read := &Hook{Kind: KindKprobe, Call: "sys_read", Args: []tracingpolicy.ArgSpec{
		{Index: 0, Type: "int"}, {Index: 1, Type: "char_buf", SizeArgIndex: 3, ReturnCopy: true}, {Index: 2, Type: "size_t"}}}
	for _, c := range []struct {
		name string
		h    *Hook
		buf  string
		ints [5]int64
		ret  int64
		want string
	}{
		{"cut to its size", h, "abcdef", [5]int64{1, 0, 3}, 0, `{"bytes_arg":"YWJj"}`},
		{"its size", h, "abc", [5]int64{1, 0, 3}, 0, `{"bytes_arg":"YWJj"}`},
		{"longer than read", h, "abc", [5]int64{1, 0, 5000}, 0, `{"truncated_bytes_arg":{"bytes_arg":"YWJj","orig_size":"5000"}}`},
		{"nothing read", h, "", [5]int64{1, 0, 7}, 0, `{"truncated_bytes_arg":{"orig_size":"7"}}`},
		{"empty", h, "", [5]int64{1, 0, 0}, 0, `{"bytes_arg":""}`},
		{"negative size", h, "abc", [5]int64{1, 0, -1}, 0, `{"bytes_arg":"YWJj"}`},
		{"no size argument", noSize, "abc", [5]int64{}, 0, `{"bytes_arg":"YWJj"}`},
		{"returnCopy: what read returned", read, "hello\nXXXX", [5]int64{3, 0, 64}, 6, `{"bytes_arg":"aGVsbG8K"}`},
		{"returnCopy: the size asked", read, "hello\nXXXX", [5]int64{3, 0, 2}, 6, `{"bytes_arg":"aGU="}`},
		{"returnCopy: a failed read", read, "XX", [5]int64{3, 0, 64}, -14, `{"truncated_bytes_arg":{"bytes_arg":"WFg=","orig_size":"64"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := &observer.HookRecord{Ints: c.ints, Strs: [2]string{c.buf}, Ret: c.ret}
			var arg *api.KprobeArgument
			for i, a := range eventArgs(c.h, g, nil) {
				if c.h.Args[i].Type == "char_buf" {
					arg = a
				}
			}
			got, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(arg)
			if err != nil {
				t.Fatal(err)
			}
			// protojson adds spaces at random to keep its output unstable
			if compact := strings.ReplaceAll(string(got), " ", ""); compact != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}
