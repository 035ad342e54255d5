package hookevent

import (
	"strings"
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/observer"
)

// TestPathFlags: every combination of a path's flags is named in the
// order deleted, truncated, unreachable, and other bits are ignored.
func TestPathFlags(t *testing.T) {
	for f := range uint16(1 << 10) {
		var want []string
		if f&observer.PathDeleted != 0 {
			want = append(want, "deleted")
		}
		if f&observer.PathTruncated != 0 {
			want = append(want, "truncated")
		}
		if f&observer.PathUnreachable != 0 {
			want = append(want, "unreachable")
		}
		if got := pathFlags(f); got != strings.Join(want, " ") {
			t.Fatalf("pathFlags(%#x) = %q, want %q", f, got, strings.Join(want, " "))
		}
	}
}
