package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/tetragon-lite/tetragon/pkg/api/schema"
	"github.com/tetragon-lite/tetragon/pkg/client"
	"github.com/tetragon-lite/tetragon/pkg/testutil"
)

// rawCodec hands over the bytes as they crossed the socket, so that the
// test reads exactly what a Tetragon client would.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return proto.Marshal(v.(proto.Message)) }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = slices.Clone(data)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// get reads a field of a message read with Tetragon's layout by its path
// of field names.
func get(m protoreflect.Message, path ...string) protoreflect.Value {
	var v protoreflect.Value
	for i, name := range path {
		f := m.Descriptor().Fields().ByName(protoreflect.Name(name))
		if f == nil {
			panic(fmt.Sprintf("%s has no field %s", m.Descriptor().FullName(), name))
		}
		v = m.Get(f)
		if i < len(path)-1 {
			m = v.Message()
		}
	}
	return v
}

func strList(v protoreflect.Value) []string {
	var out []string
	for i := range v.List().Len() {
		out = append(out, v.List().Get(i).String())
	}
	return out
}

// TestTetragonWireFormat runs the agent with a policy that sets message,
// tags, return: true and a Sigkill, runs cat, and reads the event stream
// and every RPC's answer, byte for byte as they left the agent, with
// Tetragon's published layout only: nothing Tetragon's client could not
// parse, no field it does not know outside the private range, and the
// values where Tetragon's schema puts them. tetra v1.7 failed on exactly
// these (process_kprobe with message and tags, tracingpolicy list).
func TestTetragonWireFormat(t *testing.T) {
	b := build(t)
	testutil.RequireFeature(t, "tracepoint")
	layout, err := schema.Tetragon()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	marker, kill := filepath.Join(dir, "marker"), filepath.Join(dir, "kill-target")
	for _, f := range []string{marker, kill} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, fmt.Appendf(nil, `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: "wire-format"
spec:
  kprobes:
  - call: "sys_openat"
    syscall: true
    return: true
    args:
    - index: 1
      type: "string"
    returnArg:
      index: 0
      type: "int"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values: [%q]
    message: "marker opened"
    tags: ["wire.test", "observability.filesystem"]
  - call: "fd_install"
    syscall: false
    args:
    - index: 0
      type: int
    - index: 1
      type: "file"
    selectors:
    - matchArgs:
      - index: 1
        operator: "Equal"
        values: [%q]
      matchActions:
      - action: Sigkill
    message: "kill target opened"
    tags: ["wire.test"]
`, marker, kill), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, b, "--tracing-policy", policy)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, a.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := grpc.ForceCodec(rawCodec{})
	const svc = "/tetragon.FineGuidanceSensors/"

	// call sends a request built with Tetragon's layout and reads the
	// answer with it
	call := func(method string, req protoreflect.Message, resp protoreflect.FullName) protoreflect.Message {
		t.Helper()
		var out []byte
		if err := conn.Invoke(ctx, svc+method, req.Interface(), &out, raw); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		m, err := layout.Read(resp, out)
		if err != nil {
			t.Fatalf("%s answer: %v", method, err)
		}
		return m
	}
	request := func(name protoreflect.FullName, fields map[string]string) protoreflect.Message {
		t.Helper()
		m, err := layout.New(name)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range fields {
			m.Set(m.Descriptor().Fields().ByName(protoreflect.Name(k)), protoreflect.ValueOfString(v))
		}
		return m
	}

	t.Run("GetEvents", func(t *testing.T) {
		jsonLines := getevents(t, b, a.socket, "-o", "json")
		stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, svc+"GetEvents", raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(request("tetragon.GetEventsRequest", nil).Interface()); err != nil {
			t.Fatal(err)
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // the subscription is in place
		if err := exec.Command("cat", marker).Run(); err != nil {
			t.Fatal(err)
		}
		if !testutil.CatKilled(kill) {
			t.Fatal("cat of the kill target not killed")
		}
		kprobes := map[string]protoreflect.Message{}
		for frames := 0; len(kprobes) < 2; frames++ {
			var frame []byte
			if err := stream.RecvMsg(&frame); err != nil {
				t.Fatalf("after %d events: %v", frames, err)
			}
			ev, err := layout.Read("tetragon.GetEventsResponse", frame)
			if err != nil {
				t.Fatalf("event %d: %v", frames, err)
			}
			if k := get(ev, "process_kprobe").Message(); k.IsValid() && get(ev, "process_kprobe", "policy_name").String() == "wire-format" {
				kprobes[get(ev, "process_kprobe", "function_name").String()] = k
			}
		}
		type seen struct {
			Action, ReturnAction protoreflect.EnumNumber
			Message              string
			Tags                 []string
			HasReturn            bool
		}
		for fn, want := range map[string]seen{
			// Tetragon's KprobeAction: POST 1, SIGKILL 3
			"sys_openat": {Action: 1, ReturnAction: 1, Message: "marker opened", Tags: []string{"wire.test", "observability.filesystem"}, HasReturn: true},
			"fd_install": {Action: 3, Message: "kill target opened", Tags: []string{"wire.test"}},
		} {
			k := kprobes[fn]
			if k == nil {
				t.Fatalf("no process_kprobe for %s; got %v", fn, kprobes)
			}
			got := seen{get(k, "action").Enum(), get(k, "return_action").Enum(), get(k, "message").String(), strList(get(k, "tags")), k.Has(k.Descriptor().Fields().ByName("return"))}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s as Tetragon reads it: %+v, want %+v", fn, got, want)
			}
		}
		// the same event as `tetra getevents -o json` prints it: Tetragon's
		// names, where Tetragon's schema puts them
		line := waitLines(t, jsonLines, `"message":"marker opened"`, 1)[0]
		var ev struct {
			ProcessKprobe map[string]any `json:"process_kprobe"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		k := ev.ProcessKprobe
		if k["policy_name"] != "wire-format" || k["return_action"] != "KPROBE_ACTION_POST" || k["action"] != "KPROBE_ACTION_POST" ||
			fmt.Sprint(k["tags"]) != "[wire.test observability.filesystem]" || k["function_name"] != "sys_openat" {
			t.Fatalf("JSON event: %s", line)
		}
	})

	t.Run("RPCs", func(t *testing.T) {
		list := call("ListTracingPolicies", request("tetragon.ListTracingPoliciesRequest", nil), "tetragon.ListTracingPoliciesResponse")
		ps := get(list, "policies").List()
		if ps.Len() != 1 {
			t.Fatalf("%d policies", ps.Len())
		}
		p := ps.Get(0).Message()
		// TP_STATE_ENABLED 1, TP_MODE_ENFORCE 1
		if get(p, "id").Uint() == 0 || get(p, "name").String() != "wire-format" || get(p, "state").Enum() != 1 ||
			!get(p, "enabled").Bool() || get(p, "mode").Enum() != 1 || fmt.Sprint(strList(get(p, "sensors"))) != "[generic_kprobe]" ||
			get(p, "info").String() != policy || get(p, "kernel_memory_bytes").Uint() == 0 {
			t.Fatalf("policy as Tetragon reads it: %v", p)
		}
		health := call("GetHealth", request("tetragon.GetHealthStatusRequest", nil), "tetragon.GetHealthStatusResponse")
		if hs := get(health, "health_status").List(); hs.Len() != 1 || get(hs.Get(0).Message(), "status").Enum() != 1 { // HEALTH_STATUS_RUNNING
			t.Fatalf("health as Tetragon reads it: %v", health)
		}
		if v := get(call("GetVersion", request("tetragon.GetVersionRequest", nil), "tetragon.GetVersionResponse"), "version").String(); v == "" {
			t.Fatal("empty version")
		}
		yaml := string(testutil.KillOnOpenPolicy("wire-api", kill+"-never"))
		call("AddTracingPolicy", request("tetragon.AddTracingPolicyRequest", map[string]string{"yaml": yaml}), "tetragon.AddTracingPolicyResponse")
		for _, m := range []string{"DisableTracingPolicy", "EnableTracingPolicy", "DeleteTracingPolicy"} {
			call(m, request(protoreflect.FullName("tetragon."+m+"Request"), map[string]string{"name": "wire-api"}), protoreflect.FullName("tetragon."+m+"Response"))
		}
		// Tetragon's namespaced policies do not exist here: not found,
		// rather than acting on the global policy of that name
		err := conn.Invoke(ctx, svc+"DisableTracingPolicy", request("tetragon.DisableTracingPolicyRequest",
			map[string]string{"name": "wire-format", "namespace": "default"}).Interface(), new([]byte), raw)
		if err == nil || !strings.Contains(err.Error(), "NotFound") {
			t.Fatalf("namespaced disable: %v", err)
		}
		if !testutil.CatKilled(kill) {
			t.Fatal("the policy stopped enforcing after a namespaced disable")
		}
	})

	// grpcurl's list and describe, through the reflection API
	t.Run("reflection", func(t *testing.T) {
		stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
			t.Helper()
			if err := stream.Send(req); err != nil {
				t.Fatal(err)
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		var services []string
		for _, s := range ask(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
		}).GetListServicesResponse().GetService() {
			services = append(services, s.GetName())
		}
		if !slices.Contains(services, "tetragon.FineGuidanceSensors") {
			t.Fatalf("services: %v", services)
		}
		files := ask(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "tetragon.ProcessKprobe"},
		}).GetFileDescriptorResponse().GetFileDescriptorProto()
		message := int32(0)
		for _, raw := range files {
			var fd descriptorpb.FileDescriptorProto
			if err := proto.Unmarshal(raw, &fd); err != nil {
				t.Fatal(err)
			}
			for _, m := range fd.GetMessageType() {
				for _, f := range m.GetField() {
					if fd.GetPackage() == "tetragon" && m.GetName() == "ProcessKprobe" && f.GetName() == "message" {
						message = f.GetNumber()
					}
				}
			}
		}
		if message != 10 {
			t.Fatalf("described ProcessKprobe.message as field %d, Tetragon's is 10", message)
		}
	})
}
