package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/client"
	"github.com/tetragon-lite/tetragon/pkg/cpuprofile"
	"github.com/tetragon-lite/tetragon/pkg/encoder"
	"github.com/tetragon-lite/tetragon/pkg/filters"
)

type getEventsOptions struct {
	output      string
	color       string
	timestamps  bool
	processes   []string
	pods        []string
	containers  []string
	namespaces  []string
	host        bool
	eventTypes  []string
	policyNames []string
	pids        pidList
	// cpuProfile is where to write a pprof CPU profile of the stream
	// (hidden: for tetragon-bench and whoever profiles the client).
	cpuProfile string
}

// pidList is a comma-separated, repeatable list of pids.
type pidList []uint32

func (p *pidList) String() string {
	s := make([]string, len(*p))
	for i, v := range *p {
		s[i] = strconv.FormatUint(uint64(v), 10)
	}
	return strings.Join(s, ",")
}

func (p *pidList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return fmt.Errorf("invalid pid %q", f)
		}
		*p = append(*p, uint32(n))
	}
	return nil
}

func (p *pidList) Type() string { return "pids" }

func newGetEventsCmd(root *rootOptions) *cobra.Command {
	o := &getEventsOptions{}
	cmd := &cobra.Command{
		Use:   "getevents",
		Short: "Stream events from the agent",
		Long: "Stream events from the agent until it stops or Ctrl-C, one per line.\n" +
			"The filter flags build one allow filter: an event passes when it matches\n" +
			"all the flags given, and any of the values of a flag.",
		Example: "  tetra getevents -o compact --process curl\n" +
			"  tetra getevents -e exec --containers '^web-' | jq .process_exec.process.binary",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runGetEvents(cmd, root, o) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "json", "output format: json or compact")
	f.StringVar(&o.color, "color", "auto", "color the compact output: auto (on a terminal, unless NO_COLOR is set), always or never")
	f.BoolVar(&o.timestamps, "timestamps", false, "prefix compact lines with the event time")
	f.StringSliceVar(&o.processes, "process", nil, "only processes whose binary matches one of these regexes")
	f.StringSliceVar(&o.pods, "pods", nil, "only processes whose pod name matches one of these regexes (outside Kubernetes: the container name)")
	f.StringSliceVar(&o.containers, "containers", nil, "only processes whose container name matches one of these regexes")
	f.StringSliceVar(&o.namespaces, "namespace", nil, "only processes in pods of these Kubernetes namespaces")
	f.BoolVar(&o.host, "host", false, "only processes outside any container")
	f.StringSliceVarP(&o.eventTypes, "event-types", "e", nil,
		"only these event types: "+strings.Join(eventTypeNames(), ", ")+" (case-insensitive), or "+strings.Join(shortEventTypeNames(), ", "))
	f.StringSliceVar(&o.policyNames, "policy-names", nil, "only events from these tracing policies")
	f.Var(&o.pids, "pid", "only these process ids")
	f.StringVar(&o.cpuProfile, "cpu-profile", "", "write a pprof CPU profile of the client to this file until it stops")
	_ = f.MarkHidden("cpu-profile") // a tool for profiling, not for users
	cmd.MarkFlagsMutuallyExclusive("host", "pods")
	cmd.MarkFlagsMutuallyExclusive("host", "containers")
	cmd.MarkFlagsMutuallyExclusive("host", "namespace")
	return cmd
}

func runGetEvents(cmd *cobra.Command, root *rootOptions, o *getEventsOptions) error {
	out := cmd.OutOrStdout()
	var buffered *bufio.Writer
	if o.output == "json" {
		// JSON feeds programs, at rates where a write per event cost the
		// client a fifth of its time (docs/performance.md): lines are
		// buffered, and flushed once no event has been waiting for
		// flushLinger, so a line waits at most that. Compact output is for people
		// and stays one write per event (its color detection needs the
		// terminal itself, too).
		growPipe(out)
		buffered = bufio.NewWriterSize(out, 64<<10)
		out = buffered
	}
	enc, err := o.encoder(out)
	if err != nil {
		return err
	}
	req, err := o.request()
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.cpuProfile != "" {
		stopProfile, err := cpuprofile.Start(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	conn, err := root.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()

	return enc.stream(ctx, conn, req, buffered)
}

// pump receives events with recv, apart from encoding them with encode
// (so that it knows when no event is waiting, which the stream cannot
// tell: that is when buffered lines are written), until the stream ends.
// Typed, not a channel of any: boxing an event cost an allocation each.
func pump[T any](ctx context.Context, recv func() (T, error), encode func(T) error, buffered *bufio.Writer) error {
	events := make(chan T, 1024)
	recvErr := make(chan error, 1)
	go func() {
		defer close(events)
		for {
			ev, err := recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				recvErr <- ctx.Err()
				return
			}
		}
	}()
	flush := func() error {
		if buffered == nil {
			return nil
		}
		if err := buffered.Flush(); err != nil {
			return fmt.Errorf("writing events: %w", err)
		}
		return nil
	}
	// lingered: the buffer already waited flushLinger for more events
	lingered := false
	for ev := range events {
		if err := encode(ev); err != nil {
			return err
		}
		if len(events) > 0 {
			continue
		}
		if buffered != nil && !lingered && buffered.Buffered() < buffered.Size()/2 {
			// at tens of thousands of events a second the queue empties
			// every few events: a write (and a wake-up of the reader) per
			// few events cost tetra more than encoding them
			lingered = true
			time.Sleep(flushLinger)
			if len(events) > 0 {
				continue
			}
		}
		lingered = false
		if err := flush(); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	err := <-recvErr
	if errors.Is(err, io.EOF) || ctx.Err() != nil {
		// the agent ended the stream, or Ctrl-C: the user is done
		return nil
	}
	return rpcError("receiving events from the agent", err)
}

// flushLinger is how long buffered JSON lines wait for more events once no
// event is queued: the most a line waits before it is written.
const flushLinger = time.Millisecond

// eventEncoder requests the events and writes them until the stream ends.
type eventEncoder interface {
	stream(ctx context.Context, conn grpc.ClientConnInterface, req *api.GetEventsRequest, buffered *bufio.Writer) error
}

// wireEncoder writes JSON from the events' wire bytes (encoder.WireJSON):
// each process is decoded once, not in every event about it.
type wireEncoder struct{ *encoder.WireJSON }

func (w wireEncoder) stream(ctx context.Context, conn grpc.ClientConnInterface, req *api.GetEventsRequest, buffered *bufio.Writer) error {
	s, err := client.GetEventsRaw(ctx, conn, req)
	if err != nil {
		return rpcError("requesting events", err)
	}
	return pump(ctx, s.Recv, func(raw client.RawEvent) error {
		defer raw.Free()
		return w.EncodeWire(raw.Bytes())
	}, buffered)
}

// messageEncoder writes decoded events (compact output).
type messageEncoder struct{ encoder.Encoder }

func (m messageEncoder) stream(ctx context.Context, conn grpc.ClientConnInterface, req *api.GetEventsRequest, buffered *bufio.Writer) error {
	s, err := api.NewFineGuidanceSensorsClient(conn).GetEvents(ctx, req)
	if err != nil {
		return rpcError("requesting events", err)
	}
	return pump(ctx, s.Recv, func(ev *api.GetEventsResponse) error { return m.Encode(ev) }, buffered)
}

func (o *getEventsOptions) encoder(w io.Writer) (eventEncoder, error) {
	switch o.output {
	case "json":
		return wireEncoder{encoder.NewWireJSON(w)}, nil
	case "compact":
		mode, err := encoder.ParseColorMode(o.color)
		if err != nil {
			return nil, err
		}
		// https://no-color.org: a user's standing wish, overridden by an explicit --color always.
		if mode == encoder.ColorAuto && os.Getenv("NO_COLOR") != "" {
			mode = encoder.ColorNever
		}
		return messageEncoder{encoder.NewCompact(w, encoder.CompactOptions{Color: mode, Timestamps: o.timestamps})}, nil
	}
	return nil, fmt.Errorf("invalid output format %q: want json or compact", o.output)
}

// request builds one allow filter from the flags, or none when no filter
// flag is set. The regexes are compiled here too, so that a bad one is
// reported, with its flag, before connecting.
func (o *getEventsOptions) request() (*api.GetEventsRequest, error) {
	for _, c := range []struct {
		flag string
		f    *api.Filter
	}{
		{"--process", &api.Filter{BinaryRegex: o.processes}},
		{"--pods", &api.Filter{PodRegex: o.pods}},
		{"--containers", &api.Filter{ContainerNameRegex: o.containers}},
	} {
		if _, err := filters.New([]*api.Filter{c.f}, nil); err != nil {
			return nil, fmt.Errorf("invalid %s: %w", c.flag, errors.Unwrap(err))
		}
	}
	f := &api.Filter{
		BinaryRegex:        o.processes,
		PodRegex:           o.pods,
		ContainerNameRegex: o.containers,
		Namespace:          o.namespaces,
		PolicyNames:        o.policyNames,
		Pid:                o.pids,
	}
	types, err := parseEventTypes(o.eventTypes)
	if err != nil {
		return nil, err
	}
	f.EventSet = types
	if o.host {
		f.InContainer = wrapperspb.Bool(false)
	}
	req := &api.GetEventsRequest{}
	if isEmptyFilter(f) {
		return req, nil
	}
	if _, err := filters.New([]*api.Filter{f}, nil); err != nil {
		// Each regex compiled alone; together they exceed the budget.
		return nil, fmt.Errorf("invalid filter flags: %w", err)
	}
	req.AllowList = []*api.Filter{f}
	return req, nil
}

func isEmptyFilter(f *api.Filter) bool {
	return len(f.BinaryRegex) == 0 && len(f.PodRegex) == 0 && len(f.ContainerNameRegex) == 0 && len(f.Namespace) == 0 &&
		len(f.PolicyNames) == 0 && len(f.Pid) == 0 && len(f.EventSet) == 0 && f.InContainer == nil
}

// parseEventTypes accepts the API's names (PROCESS_EXEC) in any case, and
// the short forms (exec): the names without PROCESS_.
func parseEventTypes(in []string) ([]api.EventType, error) {
	var out []api.EventType
	for _, s := range in {
		name := strings.ToUpper(strings.TrimSpace(s))
		if !strings.HasPrefix(name, "PROCESS_") {
			name = "PROCESS_" + name
		}
		v, ok := api.EventType_value[name]
		if !ok || v == int32(api.EventType_UNDEF) {
			return nil, fmt.Errorf("invalid event type %q: want one of %s, or %s",
				s, strings.Join(eventTypeNames(), ", "), strings.Join(shortEventTypeNames(), ", "))
		}
		if t := api.EventType(v); !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// eventTypeNames lists the API's event types in enum order, without UNDEF.
func eventTypeNames() []string {
	var nums []int32
	for n := range api.EventType_name {
		if n != int32(api.EventType_UNDEF) {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	names := make([]string, len(nums))
	for i, n := range nums {
		names[i] = api.EventType_name[n]
	}
	return names
}

func shortEventTypeNames() []string {
	names := eventTypeNames()
	for i, n := range names {
		names[i] = strings.ToLower(strings.TrimPrefix(n, "PROCESS_"))
	}
	return names
}
