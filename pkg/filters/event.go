package filters

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// view is what filters look at in an event, whatever its kind.
type view struct {
	typ     api.EventType
	process *api.Process
	parent  *api.Process
	policy  string
}

// viewOf takes the known kinds directly (the hot path) and any other kind by
// reflection, so a kind added to the proto is filtered without code here as
// long as it follows Tetragon's shape: process, parent and policy_name fields,
// and a oneof field named like its EventType (process_kprobe, PROCESS_KPROBE).
func viewOf(ev *api.GetEventsResponse) view {
	switch e := ev.GetEvent().(type) {
	case *api.GetEventsResponse_ProcessExec:
		return view{typ: api.EventType_PROCESS_EXEC, process: e.ProcessExec.GetProcess(), parent: e.ProcessExec.GetParent()}
	case *api.GetEventsResponse_ProcessExit:
		return view{typ: api.EventType_PROCESS_EXIT, process: e.ProcessExit.GetProcess(), parent: e.ProcessExit.GetParent()}
	case *api.GetEventsResponse_ProcessKprobe:
		k := e.ProcessKprobe
		return view{typ: api.EventType_PROCESS_KPROBE, process: k.GetProcess(), parent: k.GetParent(), policy: k.GetPolicyName()}
	case nil:
		// No kind, or one this build does not know (sent by a newer agent).
		return view{}
	default:
		return reflectView(ev)
	}
}

func reflectView(ev *api.GetEventsResponse) view {
	m := ev.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("event")
	if od == nil {
		return view{}
	}
	fd := m.WhichOneof(od)
	if fd == nil || fd.Message() == nil {
		return view{}
	}
	inner := m.Get(fd).Message()
	return view{
		typ:     api.EventType(api.EventType_value[strings.ToUpper(string(fd.Name()))]),
		process: processField(inner, "process"),
		parent:  processField(inner, "parent"),
		policy:  stringField(inner, "policy_name"),
	}
}

func processField(m protoreflect.Message, name protoreflect.Name) *api.Process {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Message() == nil || !m.Has(fd) {
		return nil
	}
	p, _ := m.Get(fd).Message().Interface().(*api.Process)
	return p
}

func stringField(m protoreflect.Message, name protoreflect.Name) string {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return ""
	}
	return m.Get(fd).String()
}
