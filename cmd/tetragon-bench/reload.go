package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/tetragon-lite/tetragon/pkg/agent"
	"github.com/tetragon-lite/tetragon/pkg/config"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// reloadLatency runs an agent watching a policy directory and replaces a
// kill policy edits times, each version protecting one more file, the way
// configuration tools do: written beside it, then renamed over it. It
// times each from the rename to the new version killing, while checking
// that the file every version protects never gets read.
func reloadLatency(edits int) ([]result, error) {
	dir, err := os.MkdirTemp("", "tetragon-bench-reload-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	policies := filepath.Join(dir, "policies")
	if err := os.Mkdir(policies, 0o755); err != nil {
		return nil, fmt.Errorf("creating the policy directory: %w", err)
	}
	var targets []string
	for i := range edits + 1 {
		p := filepath.Join(dir, fmt.Sprintf("t%d", i))
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			return nil, fmt.Errorf("writing a protected file: %w", err)
		}
		targets = append(targets, p)
	}
	always := targets[edits]
	file := filepath.Join(policies, "reload.yaml")
	if err := os.WriteFile(file, testutil.KillOnOpenPolicy("reload", always), 0o644); err != nil {
		return nil, fmt.Errorf("writing the policy: %w", err)
	}
	flags := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	config.Flags(flags)
	cfg, err := config.Load(flags)
	if err != nil {
		return nil, fmt.Errorf("agent configuration: %w", err)
	}
	cfg.ServerAddress = filepath.Join(dir, "tetragon.sock")
	cfg.BPFDir = fmt.Sprintf("tetragon-bench-%d", os.Getpid())
	cfg.TracingPolicyDir = policies
	cfg.DockerSocket = ""
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.Start(ctx, cfg, zerolog.Nop())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting the agent: %w", err)
	}
	defer func() { cancel(); a.Wait() }()

	stop := make(chan struct{})
	leaks := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				leaks <- n
				return
			default:
			}
			if !testutil.CatKilled(always) {
				n++
			}
			time.Sleep(time.Millisecond) // about every millisecond, as the issue asks

		}
	}()
	fmt.Printf("reload latency: %d edits of a watched policy file, from its atomic rename to the new version killing\n", edits)
	var lat []time.Duration
	tmp := filepath.Join(dir, "reload.yaml.new") // outside the watched directory
	for i := range edits {
		if err := os.WriteFile(tmp, testutil.KillOnOpenPolicy("reload", always, targets[i]), 0o644); err != nil {
			return nil, fmt.Errorf("writing the policy's next version: %w", err)
		}
		written := time.Now()
		if err := os.Rename(tmp, file); err != nil {
			return nil, fmt.Errorf("replacing the policy: %w", err)
		}
		for !testutil.CatKilled(targets[i]) {
			if time.Since(written) > time.Minute {
				return nil, fmt.Errorf("edit %d not enforcing after a minute", i)
			}
		}
		lat = append(lat, time.Since(written))
		if (i+1)%10 == 0 {
			fmt.Printf("  %d/%d edits, last %v\n", i+1, edits, lat[i].Round(time.Millisecond))
		}
	}
	close(stop)
	gap := <-leaks
	// quantiles as the rest of the benchmark takes them (interpolated
	// between the nearest samples): the largest of 100 is their max, not
	// their 99th percentile
	ns := make([]float64, len(lat))
	for i, l := range lat {
		ns[i] = float64(l)
	}
	p50, p99 := time.Duration(quantile(ns, 0.5)), time.Duration(quantile(ns, 0.99))
	fmt.Printf("\nreload p50 %v, p99 %v, max %v (goal p99 < 50ms); reads of the always-protected file that got through: %d (must be 0)\n",
		p50.Round(time.Millisecond), p99.Round(time.Millisecond), slices.Max(lat).Round(time.Millisecond), gap)
	return []result{
		{"d", fmt.Sprintf("reload latency p99 (p50), %d edits", edits), fmt.Sprintf("%v (%v)", p99.Round(time.Millisecond), p50.Round(time.Millisecond)), "< 50ms", metStr(p99 < 50*time.Millisecond)},
		{"d", "enforcement gap: reads that got through", strconv.Itoa(gap), "0", metStr(gap == 0)},
	}, nil
}
