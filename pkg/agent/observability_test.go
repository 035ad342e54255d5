package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tetragon-lite/tetragon/pkg/config"

	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// TestObservabilityStartFailures: a taken metrics port, or an export file
// that cannot be one, fails the start with one clear error and leaves
// nothing behind: no socket, no pins, no port held.
func TestObservabilityStartFailures(t *testing.T) {
	testutil.RequireRoot(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, c := range []struct {
		name string
		set  func(*config.Config)
		want string
	}{
		{"metrics port taken", func(c *config.Config) { c.MetricsServer = taken.Addr().String() }, "for metrics"},
		{"export file is a directory", func(c *config.Config) {
			c.ExportFilename, c.ExportMaxSize, c.ExportQueue = t.TempDir(), 1, 10
		}, "is a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.BPFDir = fmt.Sprintf("tetragon-test-obs-fail-%d", time.Now().UnixNano())
			cfg.HealthServer = freeAddr(t)
			c.set(&cfg)
			_, err := Start(context.Background(), cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("start: %v, want an error with %q", err, c.want)
			}
			if _, err := os.Stat(cfg.ServerAddress); !os.IsNotExist(err) {
				t.Errorf("socket left behind: %v", err)
			}
			for _, p := range []string{"", "_lock"} {
				if _, err := os.Stat(filepath.Join("/sys/fs/bpf", cfg.BPFDir+p)); !os.IsNotExist(err) {
					t.Errorf("pins or lock left behind: %v", err)
				}
			}
			l, err := net.Listen("tcp", cfg.HealthServer)
			if err != nil {
				t.Fatalf("the health port is still held: %v", err)
			}
			l.Close()
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
