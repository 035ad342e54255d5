// Command tetra is the command-line client of the tetragon agent.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// rootOptions are the flags every subcommand shares.
type rootOptions struct {
	serverAddress string
	timeout       string
}

func newRootCmd() *cobra.Command {
	opts := &rootOptions{}
	root := &cobra.Command{
		Use:           "tetra",
		Short:         "Client for the tetragon runtime-security agent",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&opts.serverAddress, "server-address", defaultServerAddress,
		"agent gRPC address: a unix socket path (unix:///path or /path) or localhost:PORT")
	root.AddCommand(
		newGetEventsCmd(opts),
		newStatusCmd(opts),
		newVersionCmd(opts),
		newProbeCmd(),
		newTracingPolicyCmd(opts),
	)
	return root
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tetra:", err)
		os.Exit(1)
	}
}
