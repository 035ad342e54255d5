// Package config assembles the agent's settings from, in increasing order of
// precedence: defaults, /etc/tetragon/tetragon.yaml, the drop-in directory
// /etc/tetragon/tetragon.conf.d (file name = key, content = value),
// TETRAGON_* environment variables and command-line flags.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/filters"
	"github.com/tetragon-lite/tetragon/pkg/regfile"
)

// Config is the agent's typed configuration.
type Config struct {
	ServerAddress    string `mapstructure:"server-address"`
	LogLevel         string `mapstructure:"log-level"`
	LogFormat        string `mapstructure:"log-format"`
	BPFDir           string `mapstructure:"bpf-dir"`
	BTF              string `mapstructure:"btf"`
	NodeName         string `mapstructure:"node-name"`
	ProcRoot         string `mapstructure:"procfs"`
	EventQueueSize   int    `mapstructure:"event-queue-size"`
	SubscriberQueue  int    `mapstructure:"subscriber-queue-size"`
	ProcessCacheSize int    `mapstructure:"process-cache-size"`
	ConfigFile       string `mapstructure:"config-file"`
	ConfigDir        string `mapstructure:"config-dir"`
	DockerSocket     string `mapstructure:"docker-socket"`
	Kubeconfig       string `mapstructure:"kubeconfig"`
	TracingPolicy    string `mapstructure:"tracing-policy"`
	TracingPolicyDir string `mapstructure:"tracing-policy-dir"`
	KeepSensors      bool   `mapstructure:"keep-sensors-on-exit"`
	APIPolicyDir     string `mapstructure:"api-policy-dir"`

	MetricsServer  string `mapstructure:"metrics-server"`
	HealthServer   string `mapstructure:"health-server-address"`
	ExportFilename string `mapstructure:"export-filename"`
	ExportMaxSize  int    `mapstructure:"export-file-max-size-mb"`
	ExportBackups  int    `mapstructure:"export-file-max-backups"`
	ExportCompress bool   `mapstructure:"export-file-compress"`
	ExportAllow    string `mapstructure:"export-allowlist"`
	ExportDeny     string `mapstructure:"export-denylist"`
	ExportRate     int    `mapstructure:"export-rate-limit"`
	ExportQueue    int    `mapstructure:"export-queue-size"`

	// GetUrl and DnsLookup (pkg/netaction)
	ActionDNSServer string `mapstructure:"policy-action-dns-server"`
	ActionHTTPProxy string `mapstructure:"policy-action-http-proxy"`
	ActionRate      int    `mapstructure:"policy-action-rate-limit"`
	ActionQueue     int    `mapstructure:"policy-action-queue-size"`

	// the Go collector's settings (main applies them: they are the
	// process's, not the agent library's)
	GCPercent     int `mapstructure:"gc-percent"`
	MemoryLimitMB int `mapstructure:"memory-limit-mb"`

	// Warnings are problems Load found that do not stop the agent, such
	// as a key in the config file that no setting has; the agent logs
	// them once its logger exists.
	Warnings []string `mapstructure:"-"`
}

// Default paths.
const (
	DefaultConfigFile = "/etc/tetragon/tetragon.yaml"
	DefaultConfigDir  = "/etc/tetragon/tetragon.conf.d"
	DefaultSocket     = "/var/run/tetragon/tetragon.sock"
	DefaultPolicyDir  = "/etc/tetragon"
)

// DefaultGCPercent is the agent's GOGC. At tens of thousands of events a
// second the agent allocates a few KB an event; with Go's 100 the collector
// ran tens of times a second, marking (the events waiting in the
// subscriber and export queues are most of the live heap) and returning
// freed pages to the kernel only to fault them in again: 15-25% of the
// agent's CPU in the profiles of issue 16. BenchmarkHookEventQueued (a full
// queue kept alive): 1.8 to 2.1 µs of CPU an event at 100, 1.5 to 1.6 at
// 200, 1.4 to 1.5 at 400, for 85-90, 125-145 and 205-215 MB of RSS. 200
// takes most of the saving for a third of 400's memory: the agent's peak
// with full queues grew from 105-115 to 135-140 MiB in the benchmark; idle
// it is the same (docs/performance.md, issue 16).
const DefaultGCPercent = 200

// defaults lists every key with its default and help text; flags, viper
// defaults and the docs come from this one table.
var defaults = []struct {
	key, help string
	value     any
}{
	{"server-address", "gRPC address: a unix socket path (unix:///path or /path) or localhost:PORT", DefaultSocket},
	{"log-level", "log level: trace, debug, info, warn, error", "info"},
	{"log-format", "log format: text or json", "text"},
	{"bpf-dir", "directory under /sys/fs/bpf for the agent's pins (empty: pin nothing)", "tetragon"},
	{"keep-sensors-on-exit", "leave sensors and policies pinned and enforcing after the agent exits", false},
	{"api-policy-dir", "with --keep-sensors-on-exit, where policies added with tetra tracingpolicy add are kept across restarts", "/var/lib/tetragon/api-policies"},
	{"btf", "kernel BTF file (default: /var/lib/tetragon/btf, then /sys/kernel/btf/vmlinux)", ""},
	{"node-name", "node name put in events and exec ids (default: the host name)", ""},
	{"procfs", "procfs of the host, read at startup for the running processes", "/proc"},
	{"event-queue-size", "records queued between the ring buffer and the decoder", 65536},
	{"subscriber-queue-size", "events queued per GetEvents client before it loses events", 10000},
	{"process-cache-size", "processes kept in the process cache", 65536},
	{"docker-socket", "Docker Engine API socket, for container names (empty: no Docker metadata)", "/var/run/docker.sock"},
	{"kubeconfig", "Kubernetes mode with this kubeconfig file: TracingPolicy objects of the cluster, pod names of this node (--node-name) in events (empty: in-cluster configuration when running in a pod, else no Kubernetes)", ""},
	{"tracing-policy", "a TracingPolicy file to load at startup; the agent exits if it does not load", ""},
	{"tracing-policy-dir", "directory whose *.yaml TracingPolicy files are loaded, with its tetragon.tp.d subdirectory (empty: none)", DefaultPolicyDir},
	{"metrics-server", "address of the Prometheus metrics endpoint, served at /metrics: :2112 for every interface, 127.0.0.1:2112 for loopback only (empty: off)", ""},
	{"health-server-address", "address of the health endpoint GET /healthz: 200 once the startup policies are attached, 503 before (empty: off)", ""},
	{"export-filename", "write every event to this file as a JSON line, as tetra getevents -o json prints it (empty: no export)", ""},
	{"export-file-max-size-mb", "size in MiB at which the export file is rotated", 10},
	{"export-file-max-backups", "rotated export files kept (0: all)", 5},
	{"export-file-compress", "gzip rotated export files", false},
	{"export-allowlist", "export only events matching one of these GetEvents filters: JSON objects, one per line, e.g. {\"event_set\":[\"PROCESS_EXEC\"]}", ""},
	{"export-denylist", "do not export events matching one of these GetEvents filters (same format as --export-allowlist)", ""},
	{"export-rate-limit", "most events exported per minute; the rest are dropped, counted and reported in rate_limit_info lines (-1: no limit)", -1},
	{"export-queue-size", "events queued for the export file; past it a slow disk loses events (counted), never slows the agent", 10000},
	{"policy-action-dns-server", "host:port of the DNS server the DnsLookup action asks (empty: the system's resolver)", ""},
	{"policy-action-http-proxy", "URL of the HTTP proxy the GetUrl action goes through (empty: HTTPS_PROXY/HTTP_PROXY/NO_PROXY of the environment)", ""},
	{"policy-action-rate-limit", "most GetUrl and DnsLookup requests started per minute, all policies together; the rest are dropped and counted", 600},
	{"policy-action-queue-size", "GetUrl and DnsLookup requests queued for the workers; past it they are dropped and counted, never slowing the events", 256},
	{"gc-percent", "the Go collector's GOGC: the heap grows to 1 + N/100 times what is live before a collection; above Go's 100 the agent spends less CPU per event under a burst and holds more memory while its queues are full (docs/performance.md, issue 16)", DefaultGCPercent},
	{"memory-limit-mb", "soft memory limit in MiB (Go's GOMEMLIMIT): near it the collector runs more often than gc-percent says, to hold the agent's memory to it (0: none)", 0},
	{"config-file", "configuration file", DefaultConfigFile},
	{"config-dir", "drop-in configuration directory (file name = key, content = value)", DefaultConfigDir},
}

// Flags registers every setting as a flag on fs.
func Flags(fs *pflag.FlagSet) {
	for _, d := range defaults {
		switch v := d.value.(type) {
		case string:
			fs.String(d.key, v, d.help)
		case int:
			fs.Int(d.key, v, d.help)
		case bool:
			fs.Bool(d.key, v, d.help)
		}
	}
}

// Load reads the configuration; flags are the parsed command line.
func Load(flags *pflag.FlagSet) (Config, error) {
	v := viper.New()
	for _, d := range defaults {
		v.SetDefault(d.key, d.value)
	}
	v.SetEnvPrefix("TETRAGON")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if err := v.BindPFlags(flags); err != nil {
		return Config{}, fmt.Errorf("binding flags: %w", err)
	}

	var warnings []string
	file := v.GetString("config-file")
	// non-blocking, regular files only: a FIFO given as the config file
	// once hung the agent before it logged a line
	data, err := regfile.Read(file, maxConfigSize)
	switch {
	case file == os.DevNull:
		// the usual way to say "no config file"; a device, but it never blocks
	case err == nil:
		if warnings, err = readConfig(v, file, data); err != nil {
			return Config{}, err
		}
	// ENOTDIR: /etc/tetragon may be a single policy file mounted there
	case (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) && !flags.Changed("config-file"):
	default:
		return Config{}, fmt.Errorf("reading config file: %w", err)
	}
	if err := mergeDropIns(v, v.GetString("config-dir")); err != nil {
		return Config{}, err
	}

	var c Config
	if err := v.Unmarshal(&c); err != nil {
		return Config{}, fmt.Errorf("decoding configuration: %w", err)
	}
	c.Warnings = warnings
	return c, c.validate()
}

// maxConfigSize bounds the config file and each drop-in: settings are a
// few lines, and a bound keeps a wrong path (/dev/zero, a huge log) from
// filling memory.
const maxConfigSize = 1 << 20

// readConfig merges the config file's settings into v. A key no setting
// has is not an error (a newer or an older agent may know it) but is
// reported: a typo must not pass for a setting in silence.
func readConfig(v *viper.Viper, file string, data []byte) (warnings []string, err error) {
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("reading config file %s: %w", file, err)
	}
	keys := viper.New()
	keys.SetConfigType("yaml")
	if err := keys.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("reading config file %s: %w", file, err)
	}
	seen := map[string]bool{}
	for _, k := range keys.AllKeys() {
		top, _, _ := strings.Cut(k, ".")
		if !known(top) && !seen[top] {
			seen[top] = true
			warnings = append(warnings, fmt.Sprintf("config file %s: unknown key %q, ignored", file, top))
		}
	}
	sort.Strings(warnings)
	return warnings, nil
}

// known reports whether key is a setting.
func known(key string) bool {
	for _, d := range defaults {
		if d.key == key {
			return true
		}
	}
	return false
}

// PolicyDirs lists the directories policies are read from: the policy
// directory and, as in Tetragon, its tetragon.tp.d subdirectory.
func (c Config) PolicyDirs() []string {
	if c.TracingPolicyDir == "" {
		return nil
	}
	return []string{c.TracingPolicyDir, filepath.Join(c.TracingPolicyDir, "tetragon.tp.d")}
}

// mergeDropIns applies the drop-in directory. Its values rank above the
// config file but below environment and flags, which viper's precedence
// gives for free when they are merged as config.
func mergeDropIns(v *viper.Viper, dir string) error {
	ents, err := os.ReadDir(dir)
	// ENOTDIR: /etc/tetragon may be a single policy file mounted there
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading config directory %s: %w", dir, err)
	}
	m := map[string]any{}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if !known(e.Name()) {
			return fmt.Errorf("config directory %s: unknown setting %q (file %s)", dir, e.Name(), filepath.Join(dir, e.Name()))
		}
		b, err := regfile.Read(filepath.Join(dir, e.Name()), maxConfigSize)
		if err != nil {
			return fmt.Errorf("reading config directory %s: %w", dir, err)
		}
		m[e.Name()] = strings.TrimSpace(string(b))
	}
	if len(m) == 0 {
		return nil
	}
	if err := v.MergeConfigMap(m); err != nil {
		return fmt.Errorf("merging config directory %s: %w", dir, err)
	}
	return nil
}

func (c Config) validate() error {
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log-format %q: want text or json", c.LogFormat)
	}
	// Every limit is checked, used or not: a negative one is a mistake
	// (-7 once passed for "no limit"), whichever feature it belongs to.
	for _, l := range []struct {
		key   string
		value int
	}{
		{"event-queue-size", c.EventQueueSize},
		{"subscriber-queue-size", c.SubscriberQueue},
		{"process-cache-size", c.ProcessCacheSize},
		{"export-file-max-size-mb", c.ExportMaxSize},
		{"export-queue-size", c.ExportQueue},
		{"policy-action-rate-limit", c.ActionRate},
		{"policy-action-queue-size", c.ActionQueue},
		{"gc-percent", c.GCPercent},
	} {
		if l.value <= 0 {
			return fmt.Errorf("%s %d: want a positive number", l.key, l.value)
		}
	}
	if c.ExportBackups < 0 {
		return fmt.Errorf("export-file-max-backups %d: want 0 (keep all) or more", c.ExportBackups)
	}
	if c.MemoryLimitMB < 0 {
		return fmt.Errorf("memory-limit-mb %d: want 0 (none) or more", c.MemoryLimitMB)
	}
	if c.ExportRate < -1 {
		return fmt.Errorf("export-rate-limit %d: want -1 (no limit) or a number of events per minute", c.ExportRate)
	}
	if c.ServerAddress == "" {
		return errors.New("server-address is empty")
	}
	if c.ExportFilename != "" {
		if _, _, err := c.ExportFilters(); err != nil {
			return err
		}
	}
	return nil
}

// ExportFilters parses --export-allowlist and --export-denylist.
func (c Config) ExportFilters() (allow, deny []*api.Filter, err error) {
	if allow, err = filters.ParseList(c.ExportAllow); err != nil {
		return nil, nil, fmt.Errorf("export-allowlist: %w", err)
	}
	if deny, err = filters.ParseList(c.ExportDeny); err != nil {
		return nil, nil, fmt.Errorf("export-denylist: %w", err)
	}
	// compiling checks the regexes and their cost, as GetEvents does
	if _, err := filters.New(allow, deny); err != nil {
		return nil, nil, fmt.Errorf("export filters: %w", err)
	}
	return allow, deny, nil
}
