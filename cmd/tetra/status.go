package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

func newStatusCmd(root *rootOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the agent's health and counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("invalid output format %q: want text or json", output)
			}
			resp, err := getHealth(cmd.Context(), root)
			if err != nil {
				return err
			}
			if output == "json" {
				err = writeProtoJSON(cmd.OutOrStdout(), resp)
			} else {
				err = writeStatusText(cmd.OutOrStdout(), resp, time.Now())
			}
			if err != nil {
				return err
			}
			// the image's HEALTHCHECK runs this command: it fails until
			// the agent enforces its startup policies
			if !resp.GetAgent().GetReady() {
				return errNotReady
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// errNotReady makes `tetra status` exit non-zero, after printing the status,
// while the agent starts (its startup policies are not all attached), stops,
// or has a policy file that does not enforce.
var errNotReady = errors.New("the agent is not ready: it is starting (attaching its startup policies) or stopping, or a policy file does not enforce (see Not ready above)")

func getHealth(ctx context.Context, root *rootOptions) (*api.GetHealthStatusResponse, error) {
	var resp *api.GetHealthStatusResponse
	err := withClient(ctx, root, 0, func(ctx context.Context, c api.FineGuidanceSensorsClient) (err error) {
		resp, err = c.GetHealth(ctx, &api.GetHealthStatusRequest{
			EventSet: []api.HealthStatusType{api.HealthStatusType_HEALTH_STATUS_TYPE_STATUS},
		})
		return err
	})
	if err != nil {
		return nil, rpcError("getting the agent's status", err)
	}
	return resp, nil
}

// writeProtoJSON writes every field, zeros included: a counter at 0 is
// information.
func writeProtoJSON(w io.Writer, resp proto.Message) error {
	raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(resp)
	if err != nil {
		return fmt.Errorf("marshalling the answer: %w", err)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return fmt.Errorf("indenting status: %w", err)
	}
	b.WriteByte('\n')
	_, err = w.Write(b.Bytes())
	return err
}

func writeStatusText(w io.Writer, resp *api.GetHealthStatusResponse, now time.Time) error {
	a := resp.GetAgent()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", label, v) }

	for _, h := range resp.GetHealthStatus() {
		s := strings.ToLower(strings.TrimPrefix(h.GetStatus().String(), "HEALTH_STATUS_"))
		if h.GetDetails() != "" {
			s += " (" + h.GetDetails() + ")"
		}
		row("Health", s)
	}
	row("Ready", yesNo(a.GetReady()))
	for _, why := range a.GetNotReady() {
		row("Not ready", why)
	}
	row("Node", a.GetNodeName())
	if st := a.GetStartTime(); st != nil {
		start := st.AsTime()
		row("Uptime", fmt.Sprintf("%s (since %s)", now.Sub(start).Round(time.Second), start.UTC().Format(time.RFC3339)))
	} else {
		row("Uptime", "unknown")
	}
	row("Events total", a.GetEventsTotal())
	row("Records total", a.GetRecordsTotal())
	// Every counter of LossCounters, including ones added to the proto later.
	losses := a.GetLosses().ProtoReflect()
	fields := losses.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Kind() != protoreflect.Uint64Kind || fd.IsList() {
			continue
		}
		row("Lost, "+strings.ReplaceAll(string(fd.Name()), "_", " "), losses.Get(fd).Uint())
	}
	row("Unresolved events", a.GetUnresolvedEvents())
	row("Process cache size", a.GetProcessCacheSize())
	row("Process cache evictions", a.GetProcessCacheEvictions())
	row("Subscribers", a.GetSubscribers())
	// each subscriber's own queue and losses: a slow one loses only its own
	for _, sub := range a.GetEventSubscribers() {
		fmt.Fprintf(tw, "  %s\tqueued %d, lost %d, waiting %d of %d\n", sub.GetName(),
			sub.GetQueuedTotal(), sub.GetDropped(), sub.GetQueueLength(), sub.GetQueueCapacity())
	}
	feats := a.GetKernelFeatures()
	if len(feats) == 0 {
		row("Kernel features", "unknown")
	} else {
		fmt.Fprintln(tw, "Kernel features:")
		names := make([]string, 0, len(feats))
		for n := range feats {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintf(tw, "  %s\t%s\n", n, yesNo(feats[n]))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
