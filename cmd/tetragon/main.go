// Command tetragon is the runtime-security agent.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tetragon-lite/tetragon/pkg/agent"
	"github.com/tetragon-lite/tetragon/pkg/config"
	"github.com/tetragon-lite/tetragon/pkg/cpuprofile"
	"github.com/tetragon-lite/tetragon/pkg/logging"
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
			log, err := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				log.Warn().Msg(w)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
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
