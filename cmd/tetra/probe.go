package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tetragon-lite/tetragon/pkg/kernelfeatures"
)

func newProbeCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Probe which BPF hooks and helpers this kernel supports (needs root)",
		Long: "Probe loads and attaches tiny BPF programs on the local kernel to decide which\n" +
			"hook mechanisms (kprobe, fentry, BPF LSM, tracepoints, uprobes, ...) and helpers\n" +
			"the agent can use here, and why the others are unavailable. It talks to the\n" +
			"kernel, not to the agent, and needs root.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("unknown output format %q (want table or json)", output)
			}
			if os.Geteuid() != 0 {
				return fmt.Errorf("probing needs root to load BPF programs (euid %d)", os.Geteuid())
			}
			rep, err := kernelfeatures.Run(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return writeProbeJSON(cmd.OutOrStdout(), rep)
			}
			return writeProbeTable(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

func writeProbeJSON(w io.Writer, rep kernelfeatures.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("writing probe report: %w", err)
	}
	return nil
}

func writeProbeTable(w io.Writer, rep kernelfeatures.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "FEATURE\tAVAILABLE\tREASON\n")
	for _, f := range rep.Features {
		avail := "no"
		if f.Available {
			avail = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Name, avail, f.Reason)
	}
	fmt.Fprintf(tw, "\nkernel %s, probed in %s\n", rep.Kernel, rep.Duration.Round(1e6))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing probe report: %w", err)
	}
	return nil
}
