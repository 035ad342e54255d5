package metrics

import (
	"testing"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// process_loader events count under Tetragon's type name, and under no
// policy's hook (the loader sensor is shared by every policy asking).
func TestCountLoader(t *testing.T) {
	var c EventCounter
	c.Count(&api.GetEventsResponse{Event: &api.GetEventsResponse_ProcessLoader{ProcessLoader: &api.ProcessLoader{Path: "/lib/libc.so.6"}}})
	if n := c.byType()["PROCESS_LOADER"]; n != 1 {
		t.Errorf("PROCESS_LOADER counted %d, want 1", n)
	}
	hooks := 0
	c.byHook(func(string, string, uint64) { hooks++ })
	if hooks != 0 {
		t.Errorf("%d hook counters, want none", hooks)
	}
}
