// Command tetragon is the runtime-security agent.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tetragon-lite/tetragon/pkg/agent"
	"github.com/tetragon-lite/tetragon/pkg/config"
	"github.com/tetragon-lite/tetragon/pkg/cpuprofile"
	"github.com/tetragon-lite/tetragon/pkg/version"
)

func newCmd() *cobra.Command {
	var cpuProfile string
	cmd := &cobra.Command{
		Use:           "tetragon",
		Short:         "eBPF runtime-security agent: process execution and TracingPolicy events",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags())
			if err != nil {
				return err
			}
			log, err := cfg.NewLogger(os.Stderr)
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				log.Warn().Msg(w)
			}
			// SIGHUP stops the agent cleanly, as SIGTERM does: it is what
			// a closed terminal or ssh session sends, and dying of it
			// would leave pins, socket and enforcement behind.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			// A log reader that goes away (`tetragon | head`) must not
			// kill the agent: unless SIGPIPE is caught, Go exits on a
			// write to a closed pipe on fd 1 or 2. Caught, the write
			// fails with EPIPE and the log line is lost, nothing more.
			// Notify rather than Ignore: an ignored SIGPIPE would be
			// inherited by the programs the agent runs.
			signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
			// The collector's settings are the process's: set here, not
			// by the agent library (see config.DefaultGCPercent).
			debug.SetGCPercent(cfg.GCPercent)
			if cfg.MemoryLimitMB > 0 {
				debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
			}
			if cpuProfile != "" {
				stopProfile, err := cpuprofile.Start(cpuProfile)
				if err != nil {
					return err
				}
				defer stopProfile()
			}
			a, err := agent.Start(ctx, cfg, log)
			if err != nil {
				return err
			}
			<-ctx.Done()
			log.Info().Msg("Received signal, shutting down...")
			return a.Wait()
		},
	}
	config.Flags(cmd.Flags())
	// Not a setting (config.Load ignores it): tetragon-bench -profile uses
	// it to show where the agent's time goes under load.
	cmd.Flags().StringVar(&cpuProfile, "cpu-profile", "", "write a pprof CPU profile of the agent to this file until it stops")
	_ = cmd.Flags().MarkHidden("cpu-profile")
	return cmd
}

func main() {
	if err := newCmd().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "tetragon:", err)
		os.Exit(1)
	}
}
