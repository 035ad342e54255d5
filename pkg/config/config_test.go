package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
)

func load(t *testing.T, args ...string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs)
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tetragon.yaml")
	dropins := filepath.Join(dir, "conf.d")
	if err := os.WriteFile(file, []byte("log-level: debug\nnode-name: from-file\nbpf-dir: file-dir\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dropins, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dropins, "node-name"), []byte("from-dropin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dropins, "event-queue-size"), []byte("123"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TETRAGON_BPF_DIR", "from-env")
	c, err := load(t, "--config-file", file, "--config-dir", dropins, "--log-format", "json")
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != "debug" {
		t.Errorf("log-level %q, want debug from the file", c.LogLevel)
	}
	if c.NodeName != "from-dropin" {
		t.Errorf("node-name %q, want the drop-in to beat the file", c.NodeName)
	}
	if c.EventQueueSize != 123 {
		t.Errorf("event-queue-size %d, want 123 from the drop-in", c.EventQueueSize)
	}
	if c.BPFDir != "from-env" {
		t.Errorf("bpf-dir %q, want the environment to beat the file", c.BPFDir)
	}
	if c.LogFormat != "json" {
		t.Errorf("log-format %q, want the flag", c.LogFormat)
	}
	if c.ServerAddress != DefaultSocket {
		t.Errorf("server-address %q, want the default", c.ServerAddress)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := load(t, "--config-file", filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing config file named on the command line must be an error")
	}
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, "bogus-key"), []byte("1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, "--config-dir", dir2); err == nil {
		t.Error("an unknown drop-in key must be an error")
	}
	if _, err := load(t, "--log-format", "xml", "--config-dir", t.TempDir()); err == nil {
		t.Error("log-format xml must be an error")
	}
}

func TestObservabilitySettings(t *testing.T) {
	t.Setenv("TETRAGON_EXPORT_ALLOWLIST", "{\"event_set\":[\"PROCESS_EXEC\"]}\n{\"binary_regex\":[\"curl$\"]}")
	c, err := load(t, "--config-dir", t.TempDir(), "--config-file", "/dev/null",
		"--metrics-server", "127.0.0.1:2112", "--health-server-address", ":6789",
		"--export-filename", "/var/log/tetragon/tetragon.log", "--export-denylist", `{"pid":[1]}`, "--export-rate-limit", "100")
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsServer != "127.0.0.1:2112" || c.HealthServer != ":6789" || c.ExportRate != 100 ||
		c.ExportMaxSize != 10 || c.ExportBackups != 5 || c.ExportCompress || c.ExportQueue != 10000 {
		t.Fatalf("settings: %+v", c)
	}
	allow, deny, err := c.ExportFilters()
	if err != nil || len(allow) != 2 || len(deny) != 1 || deny[0].GetPid()[0] != 1 {
		t.Fatalf("filters: %v %v %v", allow, deny, err)
	}
	for _, args := range [][]string{
		{"--export-filename", "/tmp/x", "--export-allowlist", `{"event_set":["NOPE"]}`},
		{"--export-filename", "/tmp/x", "--export-denylist", `{"binary_regex":["("]}`},
		{"--export-filename", "/tmp/x", "--export-file-max-size-mb", "0"},
	} {
		if _, err := load(t, append([]string{"--config-dir", t.TempDir(), "--config-file", "/dev/null"}, args...)...); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
