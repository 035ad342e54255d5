package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

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

// TestNegativeLimitsRefused: --export-rate-limit -7 once passed for "no
// limit"; every numeric limit refuses what makes no sense, naming the
// setting and the value, whether its feature is on or not.
func TestNegativeLimitsRefused(t *testing.T) {
	for _, c := range []struct{ flag, value, want string }{
		{"--export-rate-limit", "-7", "export-rate-limit -7: want -1 (no limit) or a number of events per minute"},
		{"--export-file-max-backups", "-1", "export-file-max-backups -1: want 0 (keep all) or more"},
		{"--export-file-max-size-mb", "-3", "export-file-max-size-mb -3: want a positive number"},
		{"--export-queue-size", "-1", "export-queue-size -1: want a positive number"},
		{"--event-queue-size", "-5", "event-queue-size -5: want a positive number"},
		{"--subscriber-queue-size", "0", "subscriber-queue-size 0: want a positive number"},
		{"--process-cache-size", "-1", "process-cache-size -1: want a positive number"},
		{"--gc-percent", "0", "gc-percent 0: want a positive number"},
		{"--memory-limit-mb", "-1", "memory-limit-mb -1: want 0 (none) or more"},
	} {
		_, err := load(t, "--config-dir", t.TempDir(), "--config-file", os.DevNull, c.flag+"="+c.value)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s %s: %v, want %q", c.flag, c.value, err, c.want)
		}
	}
	// -1 is the documented "no limit"
	if c, err := load(t, "--config-dir", t.TempDir(), "--config-file", os.DevNull, "--export-rate-limit=-1"); err != nil || c.ExportRate != -1 {
		t.Fatalf("export-rate-limit -1: %v", err)
	}
	// from the config file too
	file := filepath.Join(t.TempDir(), "tetragon.yaml")
	os.WriteFile(file, []byte("export-rate-limit: -7\n"), 0o600)
	if _, err := load(t, "--config-dir", t.TempDir(), "--config-file", file); err == nil || !strings.Contains(err.Error(), "export-rate-limit -7") {
		t.Fatalf("export-rate-limit -7 in the config file: %v", err)
	}
}

// TestUnknownConfigKeyWarned: a key no setting has (a typo) was ignored
// without a word; it is reported, naming the key and the file.
func TestUnknownConfigKeyWarned(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tetragon.yaml")
	os.WriteFile(file, []byte("log-level: debug\nexport-rate-limt: 100\nexport:\n  nested: 1\n"), 0o600)
	c, err := load(t, "--config-dir", t.TempDir(), "--config-file", file)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("config file %s: unknown key %q, ignored", file, "export"),
		fmt.Sprintf("config file %s: unknown key %q, ignored", file, "export-rate-limt"),
	}
	if !slices.Equal(c.Warnings, want) || c.LogLevel != "debug" {
		t.Fatalf("warnings %q, want %q (log-level %q)", c.Warnings, want, c.LogLevel)
	}
}

// TestConfigFileFIFO: a FIFO as the config file (or a drop-in) once hung
// the agent before its first log line; it is refused at once.
func TestConfigFileFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	dropins := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dropins, "log-level"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config-file", fifo, "--config-dir", t.TempDir()}, "reading config file: " + fifo + ": not a regular file (fifo)"},
		{[]string{"--config-file", "/dev/zero", "--config-dir", t.TempDir()}, "reading config file: /dev/zero: not a regular file (character device)"},
		{[]string{"--config-file", os.DevNull, "--config-dir", dropins}, "reading config directory " + dropins + ": " + filepath.Join(dropins, "log-level") + ": not a regular file (fifo)"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := load(t, c.args...)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || err.Error() != c.want {
				t.Errorf("%q: %v, want %q", c.args, err, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q: Load blocks", c.args)
		}
	}
}
