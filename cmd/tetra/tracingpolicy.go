package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/regfile"
	tp "github.com/tetragon-lite/tetragon/pkg/tracingpolicy"
)

// addTimeout bounds `tracingpolicy add`: the call returns only once every
// hook is verified and attached, which takes seconds on slow machines.
const addTimeout = 2 * time.Minute

func newTracingPolicyCmd(root *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tracingpolicy",
		Aliases: []string{"tp"},
		Short:   "List, add, delete, enable and disable tracing policies",
	}
	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the agent's policies with their state, hooks and counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("invalid output format %q: want text or json", output)
			}
			var resp *api.ListTracingPoliciesResponse
			err := withClient(cmd.Context(), root, 0, func(ctx context.Context, c api.FineGuidanceSensorsClient) (err error) {
				resp, err = c.ListTracingPolicies(ctx, &api.ListTracingPoliciesRequest{})
				return err
			})
			if err != nil {
				return rpcError("listing policies", err)
			}
			if output == "json" {
				return writeProtoJSON(cmd.OutOrStdout(), resp)
			}
			return writePolicies(cmd.OutOrStdout(), resp)
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")

	add := &cobra.Command{
		Use:   "add FILE",
		Short: "Load a policy file; returns once the policy enforces",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Bounded, non-blocking, regular files only: /dev/zero once
			// took 849 MB in 4 s, and a FIFO hung the command. The agent
			// refuses policies over tp.MaxFileSize (well under its 4 MiB
			// gRPC message limit), so reading more is never useful.
			data, err := regfile.Read(args[0], tp.MaxFileSize)
			if errors.Is(err, regfile.ErrTooLarge) {
				return fmt.Errorf("%s: larger than the %d-byte limit for policy files", args[0], tp.MaxFileSize)
			}
			if err != nil {
				return err
			}
			var resp *api.AddTracingPolicyResponse
			err = withClient(cmd.Context(), root, addTimeout, func(ctx context.Context, c api.FineGuidanceSensorsClient) (err error) {
				resp, err = c.AddTracingPolicy(ctx, &api.AddTracingPolicyRequest{Yaml: string(data)})
				return err
			})
			if err != nil {
				return rpcError("adding "+args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy %q added\n", resp.GetName())
			return nil
		},
	}
	byName := func(use, short, done string, call func(c api.FineGuidanceSensorsClient, ctx context.Context, name string) error) *cobra.Command {
		return &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				err := withClient(cmd.Context(), root, addTimeout, func(ctx context.Context, c api.FineGuidanceSensorsClient) error {
					return call(c, ctx, args[0])
				})
				if err != nil {
					return rpcError(use+" "+args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "policy %q %s\n", args[0], done)
				return nil
			},
		}
	}
	cmd.AddCommand(list, add,
		byName("delete", "Unload a policy added with add", "deleted", func(c api.FineGuidanceSensorsClient, ctx context.Context, name string) error {
			_, err := c.DeleteTracingPolicy(ctx, &api.DeleteTracingPolicyRequest{Name: name})
			return err
		}),
		byName("enable", "Load a disabled policy again", "enabled", func(c api.FineGuidanceSensorsClient, ctx context.Context, name string) error {
			_, err := c.EnableTracingPolicy(ctx, &api.EnableTracingPolicyRequest{Name: name})
			return err
		}),
		byName("disable", "Unload a policy but keep it listed", "disabled", func(c api.FineGuidanceSensorsClient, ctx context.Context, name string) error {
			_, err := c.DisableTracingPolicy(ctx, &api.DisableTracingPolicyRequest{Name: name})
			return err
		}),
	)
	return cmd
}

// withClient dials the agent and runs one call under a timeout (0: the
// root's --timeout).
func withClient(ctx context.Context, root *rootOptions, timeout time.Duration, call func(context.Context, api.FineGuidanceSensorsClient) error) error {
	if timeout == 0 {
		t, err := root.callTimeout()
		if err != nil {
			return err
		}
		timeout = t
	}
	conn, err := root.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return call(ctx, api.NewFineGuidanceSensorsClient(conn))
}

var stateNames = map[api.TracingPolicyState]string{
	api.TracingPolicyState_TP_STATE_ENABLED:    "enabled",
	api.TracingPolicyState_TP_STATE_DISABLED:   "disabled",
	api.TracingPolicyState_TP_STATE_LOAD_ERROR: "load_error",
	api.TracingPolicyState_TP_STATE_ERROR:      "error",
	api.TracingPolicyState_TP_STATE_LOADING:    "loading",
	api.TracingPolicyState_TP_STATE_UNLOADING:  "unloading",
}

var modeNames = map[api.TracingPolicyMode]string{
	api.TracingPolicyMode_TP_MODE_ENFORCE:      "enforce",
	api.TracingPolicyMode_TP_MODE_MONITOR:      "monitor",
	api.TracingPolicyMode_TP_MODE_MONITOR_ONLY: "monitor_only",
}

// writePolicies prints one line per policy, then its hooks indented, then
// its error if any.
func writePolicies(w io.Writer, resp *api.ListTracingPoliciesResponse) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tMODE\tKERNEL MEMORY\tSOURCE\tHOOK\tMECHANISM\tEVENTS\tACTIONS")
	for _, p := range resp.GetPolicies() {
		state := stateNames[p.GetState()]
		if state == "" {
			state = "unknown"
		}
		// "enforce" is the default policy-mode; a policy without enforcing
		// actions only observes either way
		mode := modeNames[p.GetMode()]
		if mode == "" {
			mode = "unknown"
		}
		if p.GetMode() == api.TracingPolicyMode_TP_MODE_ENFORCE && !p.GetEnforces() {
			mode = "observe"
		}
		mem := fmt.Sprintf("%d KiB", p.GetKernelMemoryBytes()/1024)
		if len(p.GetHooks()) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t%s\t-\t-\t-\t-\n", p.GetName(), state, mode, p.GetSource())
		}
		for i, h := range p.GetHooks() {
			name, st, md, km, src := p.GetName(), state, mode, mem, p.GetSource()
			if i > 0 {
				name, st, md, km, src = "", "", "", "", ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", name, st, md, km, src, h.GetCall(), h.GetMechanism(), h.GetPosted(), h.GetSignals())
		}
		if e := p.GetError(); e != "" {
			fmt.Fprintf(tw, "\terror: %s\n", strings.ReplaceAll(e, "\n", "; "))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "loads: %d, load errors: %d\n", resp.GetLoads(), resp.GetLoadErrors())
	return err
}
