package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/version"
)

// testAgent stands in for the agent: the CLI is the unit under test, the
// gRPC server, socket and client stack are real.
type testAgent struct {
	api.UnimplementedFineGuidanceSensorsServer
	events []*api.GetEventsResponse
	// endErr ends the stream after the events; nil ends it cleanly (EOF).
	endErr error
	// hold keeps the stream open after the events until the client leaves.
	hold     bool
	health   *api.GetHealthStatusResponse
	requests chan *api.GetEventsRequest
}

func (a *testAgent) GetEvents(req *api.GetEventsRequest, s grpc.ServerStreamingServer[api.GetEventsResponse]) error {
	a.requests <- req
	for _, ev := range a.events {
		if err := s.Send(ev); err != nil {
			return err
		}
	}
	if a.hold {
		<-s.Context().Done()
		return s.Context().Err()
	}
	return a.endErr
}

func (a *testAgent) GetHealth(context.Context, *api.GetHealthStatusRequest) (*api.GetHealthStatusResponse, error) {
	return a.health, nil
}

func (a *testAgent) GetVersion(context.Context, *api.GetVersionRequest) (*api.GetVersionResponse, error) {
	return &api.GetVersionResponse{Version: "v9.8.7-agent"}, nil
}

// start serves a on a unix socket and returns its path.
func start(t *testing.T, a *testAgent) string {
	t.Helper()
	a.requests = make(chan *api.GetEventsRequest, 16)
	sock := filepath.Join(t.TempDir(), "tetragon.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	api.RegisterFineGuidanceSensorsServer(s, a)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return sock
}

// lockedBuffer lets the test read output while the command writes it.
type lockedBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wrote != nil {
		select {
		case l.wrote <- struct{}{}:
		default:
		}
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func run(t *testing.T, out *lockedBuffer, args ...string) error {
	t.Helper()
	cmd := newRootCmd()
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return cmd.ExecuteContext(ctx)
}

var when = time.Date(2025, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

func proc(pid uint32, binary, args string) *api.Process {
	return &api.Process{Pid: wrapperspb.UInt32(pid), Binary: binary, Arguments: args}
}

func events() []*api.GetEventsResponse {
	parent := proc(1, "/usr/bin/bash", "")
	web := proc(77, "/usr/sbin/nginx", "-g daemon")
	web.Docker = "0123456789abcdef"
	web.Container = &api.Container{Id: "0123456789abcdef", Name: "web-1"}
	return []*api.GetEventsResponse{
		{
			Event:    &api.GetEventsResponse_ProcessExec{ProcessExec: &api.ProcessExec{Process: proc(42, "/usr/bin/curl", "https://ebpf.io"), Parent: parent}},
			NodeName: "node1", Time: timestamppb.New(when),
		},
		{
			Event:    &api.GetEventsResponse_ProcessExec{ProcessExec: &api.ProcessExec{Process: web, Parent: parent}},
			NodeName: "node1", Time: timestamppb.New(when.Add(time.Millisecond)),
		},
		{
			Event:    &api.GetEventsResponse_ProcessExit{ProcessExit: &api.ProcessExit{Process: proc(42, "/usr/bin/curl", "https://ebpf.io"), Parent: parent, Status: 22}},
			NodeName: "node1", Time: timestamppb.New(when.Add(time.Second)),
		},
		{
			Event:    &api.GetEventsResponse_ProcessExit{ProcessExit: &api.ProcessExit{Process: web, Parent: parent, Signal: "SIGKILL"}},
			NodeName: "node1", Time: timestamppb.New(when.Add(2 * time.Second)),
		},
	}
}

func TestGetEventsCompact(t *testing.T) {
	a := &testAgent{events: events()}
	sock := start(t, a)
	var out lockedBuffer
	if err := run(t, &out, "--server-address", sock, "getevents", "-o", "compact"); err != nil {
		t.Fatal(err)
	}
	want := "🚀 process node1 /usr/bin/curl https://ebpf.io\n" +
		"🚀 process web-1 /usr/sbin/nginx -g daemon\n" +
		"💥 exit    node1 /usr/bin/curl https://ebpf.io 22\n" +
		"💥 exit    web-1 /usr/sbin/nginx -g daemon SIGKILL\n"
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if req := <-a.requests; len(req.GetAllowList()) != 0 || len(req.GetDenyList()) != 0 {
		t.Errorf("no filter flags, but the agent got filters: %v", req)
	}
}

func TestGetEventsCompactColorTimestamps(t *testing.T) {
	a := &testAgent{events: events()[2:3]}
	sock := start(t, a)
	var out lockedBuffer
	if err := run(t, &out, "getevents", "--server-address", "unix://"+sock, "-o", "compact", "--color", "always", "--timestamps"); err != nil {
		t.Fatal(err)
	}
	want := "2025-03-14T15:09:27.535Z 💥 exit    \x1b[35mnode1\x1b[0m \x1b[34m/usr/bin/curl\x1b[0m \x1b[36mhttps://ebpf.io\x1b[0m \x1b[31m22\x1b[0m\n"
	if got := out.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestGetEventsJSONDefault(t *testing.T) {
	a := &testAgent{events: events()}
	sock := start(t, a)
	var out lockedBuffer
	if err := run(t, &out, "--server-address", sock, "getevents"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 JSON lines, got:\n%s", out.String())
	}
	var ev struct {
		ProcessExec struct {
			Process struct {
				Binary    string `json:"binary"`
				Pid       int    `json:"pid"`
				Container struct {
					Name string `json:"name"`
				} `json:"container"`
			} `json:"process"`
		} `json:"process_exec"`
		NodeName string `json:"node_name"`
		Time     string `json:"time"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil {
		t.Fatalf("%v: %s", err, lines[1])
	}
	if p := ev.ProcessExec.Process; p.Binary != "/usr/sbin/nginx" || p.Pid != 77 || p.Container.Name != "web-1" ||
		ev.NodeName != "node1" || ev.Time != "2025-03-14T15:09:26.536Z" {
		t.Errorf("decoded %+v from %s", ev, lines[1])
	}
	var exit map[string]any
	if err := json.Unmarshal([]byte(lines[3]), &exit); err != nil {
		t.Fatal(err)
	}
	if x, _ := exit["process_exit"].(map[string]any); x["signal"] != "SIGKILL" {
		t.Errorf("exit line %s", lines[3])
	}
}

func TestGetEventsFiltersReachTheAgent(t *testing.T) {
	a := &testAgent{}
	sock := start(t, a)
	var out lockedBuffer
	err := run(t, &out, "--server-address", sock, "getevents",
		"--process", "curl$,wget", "--process", "^/bin/", "--pods", "web", "--containers", "^web-1$",
		"-e", "exec,PROCESS_EXIT", "--event-types", "Process_Kprobe,lsm,exec",
		"--policy-names", "net,files", "--pid", "42,43", "--pid", "7")
	if err != nil {
		t.Fatal(err)
	}
	want := &api.GetEventsRequest{AllowList: []*api.Filter{{
		BinaryRegex:        []string{"curl$", "wget", "^/bin/"},
		PodRegex:           []string{"web"},
		ContainerNameRegex: []string{"^web-1$"},
		EventSet:           []api.EventType{api.EventType_PROCESS_EXEC, api.EventType_PROCESS_EXIT, api.EventType_PROCESS_KPROBE, api.EventType_PROCESS_LSM},
		PolicyNames:        []string{"net", "files"},
		Pid:                []uint32{42, 43, 7},
	}}}
	if got := <-a.requests; !proto.Equal(got, want) {
		t.Errorf("agent got %v\nwant %v", got, want)
	}

	if err := run(t, &out, "--server-address", sock, "getevents", "--host", "-e", "tracepoint,uprobe"); err != nil {
		t.Fatal(err)
	}
	want = &api.GetEventsRequest{AllowList: []*api.Filter{{
		EventSet:    []api.EventType{api.EventType_PROCESS_TRACEPOINT, api.EventType_PROCESS_UPROBE},
		InContainer: wrapperspb.Bool(false),
	}}}
	if got := <-a.requests; !proto.Equal(got, want) {
		t.Errorf("agent got %v\nwant %v", got, want)
	}
}

func TestGetEventsBadFlags(t *testing.T) {
	a := &testAgent{}
	sock := start(t, a)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-o", "yaml"}, `invalid output format "yaml": want json or compact`},
		{[]string{"-o", "compact", "--color", "sometimes"}, `invalid color mode "sometimes"`},
		{[]string{"-e", "exec,fork"}, `invalid event type "fork": want one of PROCESS_EXEC, PROCESS_EXIT, PROCESS_KPROBE, PROCESS_TRACEPOINT, PROCESS_LOADER, PROCESS_UPROBE, PROCESS_LSM, PROCESS_USDT, or exec, exit, kprobe, tracepoint, loader, uprobe, lsm, usdt`},
		{[]string{"-e", "undef"}, `invalid event type "undef"`},
		{[]string{"--process", "a("}, `invalid --process: binary_regex "a(": error parsing regexp: missing closing )`},
		{[]string{"--pods", "["}, `invalid --pods: pod_regex "["`},
		{[]string{"--containers", "x{5000}"}, `invalid --containers: container_name_regex "x{5000}"`},
		{[]string{"--pid", "12,x"}, `invalid pid "x"`},
		{[]string{"--pid", "4294967296"}, `invalid pid "4294967296"`},
		{[]string{"--host", "--containers", "web"}, "[containers host] were all set"},
	}
	for _, tt := range tests {
		var out lockedBuffer
		err := run(t, &out, append([]string{"--server-address", sock, "getevents"}, tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want %q", tt.args, err, tt.want)
		}
	}
	select {
	case req := <-a.requests:
		t.Errorf("invalid flags, yet the agent got a request: %v", req)
	default:
	}
}

func TestGetEventsBrokenStream(t *testing.T) {
	a := &testAgent{events: events()[:1], endErr: status.Error(codes.Internal, "ring buffer reader died")}
	sock := start(t, a)
	var out lockedBuffer
	err := run(t, &out, "--server-address", sock, "getevents", "-o", "compact")
	want := "receiving events from the agent: ring buffer reader died (Internal)"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if got := out.String(); got != "🚀 process node1 /usr/bin/curl https://ebpf.io\n" {
		t.Errorf("the event before the break was not printed: %q", got)
	}
}

// The agent going away mid-stream is an error too, not a clean end.
func TestGetEventsAgentStops(t *testing.T) {
	a := &testAgent{events: events()[:1], hold: true}
	a.requests = make(chan *api.GetEventsRequest, 1)
	sock := filepath.Join(t.TempDir(), "tetragon.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	api.RegisterFineGuidanceSensorsServer(s, a)
	go s.Serve(l)
	defer s.Stop()

	out := &lockedBuffer{wrote: make(chan struct{}, 1)}
	go func() {
		<-out.wrote
		s.Stop()
	}()
	err = run(t, out, "--server-address", sock, "getevents", "-o", "compact")
	if err == nil || !strings.Contains(err.Error(), "receiving events from the agent") || !strings.Contains(err.Error(), "Unavailable") {
		t.Errorf("error %v, want a broken stream", err)
	}
}

// Ctrl-C ends the stream cleanly: a real SIGINT to this process, caught by
// the command's signal context.
func TestGetEventsInterrupt(t *testing.T) {
	a := &testAgent{events: events()[:2], hold: true}
	sock := start(t, a)
	out := &lockedBuffer{wrote: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- run(t, out, "--server-address", sock, "getevents", "-o", "compact") }()

	// Each event is written as it arrives, not when the stream ends.
	deadline := time.After(10 * time.Second)
	for out.String() != "🚀 process node1 /usr/bin/curl https://ebpf.io\n🚀 process web-1 /usr/sbin/nginx -g daemon\n" {
		select {
		case <-out.wrote:
		case err := <-done:
			t.Fatalf("command ended before the interrupt: %v", err)
		case <-deadline:
			t.Fatalf("events not written while the stream is open; output so far %q", out.String())
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("interrupted getevents returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("getevents did not stop on SIGINT")
	}
}

func TestGetEventsNoAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tetragon.sock")
	var out lockedBuffer
	err := run(t, &out, "--server-address", sock, "getevents")
	want := "cannot reach the agent at " + sock + ": is tetragon running? (dial unix " + sock + ": connect: no such file or directory)"
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant  %s", err, want)
	}
}

func health(start time.Time) *api.GetHealthStatusResponse {
	return &api.GetHealthStatusResponse{
		HealthStatus: []*api.HealthStatus{{
			Event: api.HealthStatusType_HEALTH_STATUS_TYPE_STATUS, Status: api.HealthStatusResult_HEALTH_STATUS_RUNNING, Details: "all sensors loaded",
		}},
		Agent: &api.AgentStatus{
			Ready: true, NodeName: "node1", StartTime: timestamppb.New(start),
			EventsTotal: 1234, RecordsTotal: 1300,
			Losses: &api.LossCounters{KernelRingbuf: 1, QueueOverflow: 2, SubscriberDrops: 3, DecodeErrors: 4,
				ExportQueueOverflow: 7, ExportRateLimited: 8, ExportWriteErrors: 9},
			ProcessCacheSize: 321, ProcessCacheEvictions: 6, UnresolvedEvents: 5, Subscribers: 2,
			KernelFeatures: map[string]bool{"tracepoint": true, "kprobe": false, "uprobe": true, "bpf_lsm": false},
			EventSubscribers: []*api.SubscriberStatus{
				{Name: "getevents @", QueuedTotal: 1200, Dropped: 3, QueueLength: 10, QueueCapacity: 10000},
				{Name: "export", QueuedTotal: 1230, Dropped: 7, QueueLength: 0, QueueCapacity: 10000},
			},
		},
	}
}

const wantStatus = `Health:                       running (all sensors loaded)
Ready:                        yes
Node:                         node1
Uptime:                       1h30m5s (since 2025-03-14T13:39:21Z)
Events total:                 1234
Records total:                1300
Lost, kernel ringbuf:         1
Lost, queue overflow:         2
Lost, subscriber drops:       3
Lost, decode errors:          4
Lost, export queue overflow:  7
Lost, export rate limited:    8
Lost, export write errors:    9
Unresolved events:            5
Process cache size:           321
Process cache evictions:      6
Subscribers:                  2
  getevents @                 queued 1200, lost 3, waiting 10 of 10000
  export                      queued 1230, lost 7, waiting 0 of 10000
Kernel features:
  bpf_lsm     no
  kprobe      no
  tracepoint  yes
  uprobe      yes
`

func TestStatusText(t *testing.T) {
	var b bytes.Buffer
	if err := writeStatusText(&b, health(when.Add(-90*time.Minute-5*time.Second)), when); err != nil {
		t.Fatal(err)
	}
	if b.String() != wantStatus {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), wantStatus)
	}

	b.Reset()
	if err := writeStatusText(&b, &api.GetHealthStatusResponse{}, when); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"Ready:  ", "Uptime:  ", "Kernel features:  "} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("empty status lacks %q:\n%s", line, b.String())
		}
	}
	if !strings.Contains(b.String(), "Lost, decode errors:          0\n") || !strings.Contains(b.String(), "Uptime:                       unknown\n") {
		t.Errorf("empty status:\n%s", b.String())
	}
}

func TestStatusCommand(t *testing.T) {
	a := &testAgent{health: health(time.Now().Add(-2 * time.Hour))}
	sock := start(t, a)
	var out lockedBuffer
	if err := run(t, &out, "--server-address", sock, "status"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	// All but the uptime line, which depends on the clock.
	for _, line := range strings.Split(wantStatus, "\n") {
		if strings.HasPrefix(line, "Uptime:") {
			continue
		}
		if !strings.Contains(got, line+"\n") {
			t.Errorf("status output lacks %q:\n%s", line, got)
		}
	}
	if !strings.Contains(got, "Uptime:                       2h0m") {
		t.Errorf("uptime line:\n%s", got)
	}

	var js lockedBuffer
	if err := run(t, &js, "--server-address", sock, "status", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var resp struct {
		HealthStatus []struct {
			Status string `json:"status"`
		} `json:"health_status"`
		Agent struct {
			Ready          bool            `json:"ready"`
			NodeName       string          `json:"node_name"`
			EventsTotal    string          `json:"events_total"`
			Losses         map[string]any  `json:"losses"`
			Subscribers    int             `json:"subscribers"`
			KernelFeatures map[string]bool `json:"kernel_features"`
		} `json:"agent"`
	}
	if err := json.Unmarshal([]byte(js.String()), &resp); err != nil {
		t.Fatalf("%v:\n%s", err, js.String())
	}
	if len(resp.HealthStatus) != 1 || resp.HealthStatus[0].Status != "HEALTH_STATUS_RUNNING" ||
		!resp.Agent.Ready || resp.Agent.NodeName != "node1" || resp.Agent.EventsTotal != "1234" ||
		resp.Agent.Losses["decode_errors"] != "4" || resp.Agent.Subscribers != 2 ||
		!resp.Agent.KernelFeatures["tracepoint"] || resp.Agent.KernelFeatures["kprobe"] {
		t.Errorf("decoded %+v from\n%s", resp, js.String())
	}

	// Zero counters are printed too.
	a.health.Agent.Losses = &api.LossCounters{}
	js = lockedBuffer{}
	if err := run(t, &js, "--server-address", sock, "status", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"kernel_ringbuf": "0"`) {
		t.Errorf("zero loss counter missing:\n%s", js.String())
	}

	if err := run(t, &js, "--server-address", sock, "status", "-o", "yaml"); err == nil || !strings.Contains(err.Error(), "want text or json") {
		t.Errorf("-o yaml: %v", err)
	}
}

func TestVersion(t *testing.T) {
	sock := start(t, &testAgent{})
	var out lockedBuffer
	if err := run(t, &out, "--server-address", sock, "version"); err != nil {
		t.Fatal(err)
	}
	want := "Client version: " + version.Version + "\nServer version: v9.8.7-agent\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestVersionOverTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	api.RegisterFineGuidanceSensorsServer(s, &testAgent{})
	go s.Serve(l)
	defer s.Stop()
	var out lockedBuffer
	if err := run(t, &out, "--server-address", l.Addr().String(), "version"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "Server version: v9.8.7-agent\n") {
		t.Errorf("got %q", out.String())
	}
}

func TestVersionNoAgent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "tetragon.sock")
	var out lockedBuffer
	err := run(t, &out, "--server-address", sock, "version")
	if out.String() != "Client version: "+version.Version+"\n" {
		t.Errorf("output %q, want the client version only", out.String())
	}
	if err == nil || !strings.Contains(err.Error(), "cannot reach the agent at "+sock+": is tetragon running?") {
		t.Errorf("error %v", err)
	}
}

func TestTimeout(t *testing.T) {
	o := &rootOptions{}
	if d, err := o.callTimeout(); err != nil || d != defaultTimeout {
		t.Errorf("default: %v, %v", d, err)
	}
	o.timeout = "250ms"
	if d, err := o.callTimeout(); err != nil || d != 250*time.Millisecond {
		t.Errorf("250ms: %v, %v", d, err)
	}
	for _, bad := range []string{"soon", "-1s", "0"} {
		o.timeout = bad
		if _, err := o.callTimeout(); err == nil || !strings.Contains(err.Error(), "invalid timeout") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestStatusNotReadyFails: the image's HEALTHCHECK is `tetra status`, so it
// must fail while the agent is not ready, after printing the status.
func TestStatusNotReadyFails(t *testing.T) {
	h := health(time.Now())
	h.Agent.Ready = false
	why := "not enforcing: /etc/tetragon/x.yaml: x.yaml:3:1: boom"
	h.Agent.NotReady = []string{why}
	sock := start(t, &testAgent{health: h})
	for _, args := range [][]string{{"status"}, {"status", "-o", "json"}} {
		var out lockedBuffer
		err := run(t, &out, append([]string{"--server-address", sock}, args...)...)
		if !errors.Is(err, errNotReady) {
			t.Errorf("%v while not ready: %v, want errNotReady", args, err)
		}
		if !strings.Contains(out.String(), "Ready:                        no") && !strings.Contains(out.String(), `"ready": false`) {
			t.Errorf("%v printed no status:\n%s", args, out.String())
		}
		if !strings.Contains(out.String(), "Not ready:                    "+why) && !strings.Contains(out.String(), `"not_ready": [`+"\n"+`      "`+why+`"`) {
			t.Errorf("%v does not say why:\n%s", args, out.String())
		}
	}
}

// policyAgent answers AddTracingPolicy with what it received.
type policyAgent struct {
	testAgent
	added chan string
}

func (a *policyAgent) AddTracingPolicy(_ context.Context, req *api.AddTracingPolicyRequest) (*api.AddTracingPolicyResponse, error) {
	a.added <- req.GetYaml()
	return &api.AddTracingPolicyResponse{Name: "p"}, nil
}

// TestAddReadsOnlyRegularFiles: `tracingpolicy add /dev/zero` once read
// without bound (849 MB in 4 s) and a FIFO hung it. Both are refused at
// once, a file over the policy size limit too, and nothing is sent.
func TestAddReadsOnlyRegularFiles(t *testing.T) {
	a := &policyAgent{added: make(chan string, 4)}
	a.requests = make(chan *api.GetEventsRequest, 16)
	sock := filepath.Join(t.TempDir(), "tetragon.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	api.RegisterFineGuidanceSensorsServer(s, a)
	go s.Serve(l)
	t.Cleanup(s.Stop)

	dir := t.TempDir()
	fifo := filepath.Join(dir, "p.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, make([]byte, 1<<20+1), 0o644)
	for _, c := range []struct{ path, want string }{
		{"/dev/zero", "/dev/zero: not a regular file (character device)"},
		{fifo, fifo + ": not a regular file (fifo)"},
		{big, big + ": larger than the 1048576-byte limit for policy files"},
		{dir, dir + ": not a regular file (directory)"},
	} {
		out := &lockedBuffer{}
		start := time.Now()
		err := run(t, out, "--server-address", sock, "tracingpolicy", "add", c.path)
		if err == nil || err.Error() != c.want {
			t.Errorf("add %s: %v, want %q", c.path, err, c.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("add %s took %v", c.path, d)
		}
	}
	if len(a.added) != 0 {
		t.Fatalf("%d requests reached the agent", len(a.added))
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("kind: TracingPolicy\n"), 0o644)
	out := &lockedBuffer{}
	if err := run(t, out, "--server-address", sock, "tracingpolicy", "add", good); err != nil || <-a.added != "kind: TracingPolicy\n" {
		t.Fatalf("add of a regular file: %v\n%s", err, out)
	}
}
