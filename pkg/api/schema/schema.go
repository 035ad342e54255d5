// Package schema holds the layout of Tetragon's published gRPC API as far as
// this agent shares it (tetragon-fields.txt, written by hand from Tetragon's
// api/v1/tetragon .proto files), and checks the agent against it: its
// generated descriptors (CheckFile) and the bytes it sends (Decode, which
// reads them as a Tetragon client would).
package schema

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

//go:embed tetragon-fields.txt
var tetragonFields string

// The field numbers the agent's own fields take: a range Tetragon leaves
// free in every message, so its clients skip them as unknown.
const (
	PrivateMin = 10000
	PrivateMax = 19999
)

// Private reports whether n is in the agent's own range.
func Private(n protoreflect.FieldNumber) bool { return n >= PrivateMin && n <= PrivateMax }

// Field is one of Tetragon's fields.
type Field struct {
	Name     string
	Number   protoreflect.FieldNumber
	Repeated bool
	// Type is a scalar kind ("string", "uint32", ...) or the full name of
	// a message or enum.
	Type string
}

// Message is one of Tetragon's messages. An opaque one is only named (a
// field refers to it); its fields are not listed.
type Message struct {
	Name   protoreflect.FullName
	Opaque bool
	Fields []Field
}

func (m *Message) byName(name string) *Field {
	for i := range m.Fields {
		if m.Fields[i].Name == name {
			return &m.Fields[i]
		}
	}
	return nil
}

func (m *Message) byNumber(n protoreflect.FieldNumber) *Field {
	for i := range m.Fields {
		if m.Fields[i].Number == n {
			return &m.Fields[i]
		}
	}
	return nil
}

// Enum is one of Tetragon's enums, by value name.
type Enum struct {
	Name   protoreflect.FullName
	Opaque bool
	Values map[string]protoreflect.EnumNumber
}

// Method is one RPC of a service.
type Method struct {
	Name            string
	Input, Output   protoreflect.FullName
	ServerStreaming bool
}

// Layout is Tetragon's API as the file describes it.
type Layout struct {
	Messages map[protoreflect.FullName]*Message
	Enums    map[protoreflect.FullName]*Enum
	Services map[protoreflect.FullName]map[string]Method
	// order keeps the file's order of messages, for a stable descriptor
	order []protoreflect.FullName
	file  protoreflect.FileDescriptor
}

var scalars = map[string]descriptorpb.FieldDescriptorProto_Type{
	"double": descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, "float": descriptorpb.FieldDescriptorProto_TYPE_FLOAT,
	"int64": descriptorpb.FieldDescriptorProto_TYPE_INT64, "uint64": descriptorpb.FieldDescriptorProto_TYPE_UINT64,
	"int32": descriptorpb.FieldDescriptorProto_TYPE_INT32, "fixed64": descriptorpb.FieldDescriptorProto_TYPE_FIXED64,
	"fixed32": descriptorpb.FieldDescriptorProto_TYPE_FIXED32, "bool": descriptorpb.FieldDescriptorProto_TYPE_BOOL,
	"string": descriptorpb.FieldDescriptorProto_TYPE_STRING, "bytes": descriptorpb.FieldDescriptorProto_TYPE_BYTES,
	"uint32": descriptorpb.FieldDescriptorProto_TYPE_UINT32, "sfixed32": descriptorpb.FieldDescriptorProto_TYPE_SFIXED32,
	"sfixed64": descriptorpb.FieldDescriptorProto_TYPE_SFIXED64, "sint32": descriptorpb.FieldDescriptorProto_TYPE_SINT32,
	"sint64": descriptorpb.FieldDescriptorProto_TYPE_SINT64,
}

// Tetragon returns the layout of tetragon-fields.txt.
func Tetragon() (*Layout, error) { return Parse(tetragonFields) }

// Parse reads a layout in tetragon-fields.txt's format and builds the
// descriptors Decode reads with.
func Parse(text string) (*Layout, error) {
	l := &Layout{
		Messages: map[protoreflect.FullName]*Message{},
		Enums:    map[protoreflect.FullName]*Enum{},
		Services: map[protoreflect.FullName]map[string]Method{},
	}
	var msg *Message
	var enum *Enum
	var svc map[string]Method
	for i, line := range strings.Split(text, "\n") {
		errorf := func(format string, args ...any) error {
			return fmt.Errorf("tetragon-fields.txt:%d: %s", i+1, fmt.Sprintf(format, args...))
		}
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		w := strings.Fields(line)
		if len(w) == 0 {
			continue
		}
		indented := line[0] == ' '
		if !indented {
			msg, enum, svc = nil, nil, nil
			opaque := w[0] == "opaque"
			if opaque {
				w = w[1:]
			}
			if len(w) != 2 {
				return nil, errorf("want \"[opaque] message|enum|service NAME\"")
			}
			name := protoreflect.FullName(w[1])
			if l.Messages[name] != nil || l.Enums[name] != nil || l.Services[name] != nil {
				return nil, errorf("%s declared twice", name)
			}
			switch {
			case w[0] == "message":
				msg = &Message{Name: name, Opaque: opaque}
				l.Messages[name] = msg
				l.order = append(l.order, name)
			case w[0] == "enum":
				enum = &Enum{Name: name, Opaque: opaque, Values: map[string]protoreflect.EnumNumber{}}
				l.Enums[name] = enum
			case w[0] == "service" && !opaque:
				svc = map[string]Method{}
				l.Services[name] = svc
			default:
				return nil, errorf("unknown declaration %q", w[0])
			}
			continue
		}
		switch {
		case msg != nil && !msg.Opaque:
			f := Field{Name: w[0]}
			if len(w) == 4 && w[2] == "repeated" {
				f.Repeated, w = true, slices.Delete(w, 2, 3)
			}
			n, err := strconv.ParseInt(w[1], 10, 32)
			if len(w) != 3 || err != nil || !protoreflect.FieldNumber(n).IsValid() {
				return nil, errorf("want \"NAME NUMBER [repeated] TYPE\"")
			}
			f.Number, f.Type = protoreflect.FieldNumber(n), w[2]
			if msg.byName(f.Name) != nil || msg.byNumber(f.Number) != nil {
				return nil, errorf("%s: field %s or number %d listed twice", msg.Name, f.Name, f.Number)
			}
			msg.Fields = append(msg.Fields, f)
		case enum != nil && !enum.Opaque:
			n, err := strconv.ParseInt(w[1], 10, 32)
			if len(w) != 2 || err != nil {
				return nil, errorf("want \"NAME NUMBER\"")
			}
			enum.Values[w[0]] = protoreflect.EnumNumber(n)
		case svc != nil:
			m := Method{Name: w[0]}
			if len(w) == 4 && w[2] == "stream" {
				m.ServerStreaming, w = true, slices.Delete(w, 2, 3)
			}
			if len(w) != 3 {
				return nil, errorf("want \"NAME REQUEST [stream] RESPONSE\"")
			}
			m.Input, m.Output = protoreflect.FullName(w[1]), protoreflect.FullName(w[2])
			svc[m.Name] = m
		default:
			return nil, errorf("an indented line outside a message, enum or service with members")
		}
	}
	if err := l.build(); err != nil {
		return nil, err
	}
	return l, nil
}

// isMessage reports whether a field type names a message.
func (l *Layout) isMessage(t string) bool {
	return l.Messages[protoreflect.FullName(t)] != nil || strings.HasPrefix(t, "google.protobuf.")
}

// build makes a file descriptor of the layout's types: package tetragon
// with Tetragon's fields only, for Decode.
func (l *Layout) build() error {
	fd := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("tetragon-layout.proto"),
		Package:    proto.String("tetragon"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"google/protobuf/timestamp.proto", "google/protobuf/wrappers.proto"},
	}
	protos := map[protoreflect.FullName]*descriptorpb.DescriptorProto{}
	for _, name := range l.order {
		m := l.Messages[name]
		dp := &descriptorpb.DescriptorProto{Name: proto.String(string(name.Name()))}
		for _, f := range m.Fields {
			fp := &descriptorpb.FieldDescriptorProto{
				Name: proto.String(f.Name), Number: proto.Int32(int32(f.Number)), JsonName: proto.String(f.Name),
				Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			}
			if f.Repeated {
				fp.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
			}
			switch t, scalar := scalars[f.Type]; {
			case scalar:
				fp.Type = t.Enum()
			case l.isMessage(f.Type):
				fp.Type, fp.TypeName = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(), proto.String("."+f.Type)
			case l.Enums[protoreflect.FullName(f.Type)] != nil:
				fp.Type, fp.TypeName = descriptorpb.FieldDescriptorProto_TYPE_ENUM.Enum(), proto.String("."+f.Type)
			default:
				return fmt.Errorf("tetragon-fields.txt: %s.%s: type %s is declared nowhere", name, f.Name, f.Type)
			}
			dp.Field = append(dp.Field, fp)
		}
		protos[name] = dp
	}
	for _, name := range l.order {
		if parent := protos[name.Parent()]; parent != nil {
			parent.NestedType = append(parent.NestedType, protos[name])
		} else {
			fd.MessageType = append(fd.MessageType, protos[name])
		}
	}
	enums := make([]protoreflect.FullName, 0, len(l.Enums))
	for name := range l.Enums {
		enums = append(enums, name)
	}
	slices.Sort(enums)
	for _, name := range enums {
		// Decode needs no value but the zero proto3 asks for (proto3
		// enums are open: every number decodes); value names are scoped
		// to the package, hence the prefix
		fd.EnumType = append(fd.EnumType, &descriptorpb.EnumDescriptorProto{
			Name:  proto.String(string(name.Name())),
			Value: []*descriptorpb.EnumValueDescriptorProto{{Name: proto.String(string(name.Name()) + "_ZERO"), Number: proto.Int32(0)}},
		})
	}
	deps := new(protoregistry.Files)
	for _, f := range []protoreflect.FileDescriptor{timestamppb.File_google_protobuf_timestamp_proto, wrapperspb.File_google_protobuf_wrappers_proto} {
		if err := deps.RegisterFile(f); err != nil {
			return err
		}
	}
	file, err := protodesc.NewFile(fd, deps)
	if err != nil {
		return fmt.Errorf("building the descriptors of tetragon-fields.txt: %w", err)
	}
	l.file = file
	return nil
}

// CheckFile compares a file's messages, enums and services with the
// layout. Every field of a message Tetragon has must be Tetragon's (same
// name, number, cardinality and type), or be numbered in the private range
// on a number Tetragon does not use. Every enum value and RPC must be
// Tetragon's. Messages Tetragon does not have can only be reached through
// private fields, since Tetragon's fields keep Tetragon's types.
func (l *Layout) CheckFile(fd protoreflect.FileDescriptor) []error {
	var errs []error
	errorf := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if fd.Package() != "tetragon" {
		errorf("package %q, Tetragon's is tetragon", fd.Package())
	}
	var messages func(protoreflect.MessageDescriptors)
	messages = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			messages(m.Messages())
			lm := l.Messages[m.FullName()]
			if lm == nil {
				continue // ours: only private fields lead to it
			}
			if lm.Opaque {
				errorf("%s: the layout does not list its fields", m.FullName())
				continue
			}
			for j := range m.Fields().Len() {
				errs = append(errs, l.checkField(lm, m.Fields().Get(j))...)
			}
		}
	}
	messages(fd.Messages())
	for i := range fd.Enums().Len() {
		e := fd.Enums().Get(i)
		le := l.Enums[e.FullName()]
		if le == nil || le.Opaque {
			errorf("enum %s: not in Tetragon's schema", e.FullName())
			continue
		}
		for j := range e.Values().Len() {
			v := e.Values().Get(j)
			if n, ok := le.Values[string(v.Name())]; !ok {
				errorf("enum %s: value %s is not Tetragon's", e.FullName(), v.Name())
			} else if n != v.Number() {
				errorf("enum %s: %s = %d, Tetragon's is %d", e.FullName(), v.Name(), v.Number(), n)
			}
		}
	}
	for i := range fd.Services().Len() {
		s := fd.Services().Get(i)
		ls := l.Services[s.FullName()]
		if ls == nil {
			errorf("service %s: not in Tetragon's schema", s.FullName())
			continue
		}
		for j := range s.Methods().Len() {
			m := s.Methods().Get(j)
			lm, ok := ls[string(m.Name())]
			switch {
			case !ok:
				errorf("rpc %s.%s: not Tetragon's", s.FullName(), m.Name())
			case m.Input().FullName() != lm.Input || m.Output().FullName() != lm.Output ||
				m.IsStreamingServer() != lm.ServerStreaming || m.IsStreamingClient():
				errorf("rpc %s.%s(%s) returns (stream=%v %s), Tetragon's is (%s) returns (stream=%v %s)", s.FullName(), m.Name(),
					m.Input().FullName(), m.IsStreamingServer(), m.Output().FullName(), lm.Input, lm.ServerStreaming, lm.Output)
			}
		}
	}
	return errs
}

func (l *Layout) checkField(lm *Message, f protoreflect.FieldDescriptor) []error {
	where := fmt.Sprintf("%s.%s (%d)", lm.Name, f.Name(), f.Number())
	if Private(f.Number()) {
		if t := lm.byNumber(f.Number()); t != nil {
			return []error{fmt.Errorf("%s: private number taken by Tetragon's %s", where, t.Name)}
		}
		if t := lm.byName(string(f.Name())); t != nil {
			return []error{fmt.Errorf("%s: Tetragon has this field as number %d", where, t.Number)}
		}
		return nil
	}
	t := lm.byName(string(f.Name()))
	if t == nil {
		if o := lm.byNumber(f.Number()); o != nil {
			return []error{fmt.Errorf("%s: Tetragon's field %d is %s", where, f.Number(), o.Name)}
		}
		return []error{fmt.Errorf("%s: not Tetragon's, and not in the private range %d-%d", where, PrivateMin, PrivateMax)}
	}
	var errs []error
	if t.Number != f.Number() {
		errs = append(errs, fmt.Errorf("%s: Tetragon's number is %d", where, t.Number))
	}
	if t.Repeated != (f.Cardinality() == protoreflect.Repeated) {
		errs = append(errs, fmt.Errorf("%s: repeated=%v, Tetragon's repeated=%v", where, f.Cardinality() == protoreflect.Repeated, t.Repeated))
	}
	if typ := fieldType(f); typ != t.Type {
		errs = append(errs, fmt.Errorf("%s: type %s, Tetragon's is %s", where, typ, t.Type))
	}
	return errs
}

func fieldType(f protoreflect.FieldDescriptor) string {
	switch {
	case f.Message() != nil:
		return string(f.Message().FullName())
	case f.Enum() != nil:
		return string(f.Enum().FullName())
	}
	return f.Kind().String()
}

// Decode reads b as a Tetragon client would, as the message name (e.g.
// tetragon.GetEventsResponse), and fails on what such a client could not
// read: bytes it cannot parse (a field of the wrong wire type where
// Tetragon has a message, invalid UTF-8 where it has a string), and any
// field it does not know, at any depth, unless it is in the private range.
// A field with Tetragon's number but another wire type counts as unknown.
func (l *Layout) Decode(name protoreflect.FullName, b []byte) error {
	_, err := l.Read(name, b)
	return err
}

// Read is Decode that also returns the message as Tetragon's client sees
// it: Tetragon's fields only, read by their names.
func (l *Layout) Read(name protoreflect.FullName, b []byte) (protoreflect.Message, error) {
	m, err := l.New(name)
	if err != nil {
		return nil, err
	}
	if err := proto.Unmarshal(b, m.Interface()); err != nil {
		return nil, fmt.Errorf("as Tetragon's %s: %w", name, err)
	}
	return m, unknown(m, string(name))
}

// New returns an empty message of the layout (e.g. a request as Tetragon's
// client builds it).
func (l *Layout) New(name protoreflect.FullName) (protoreflect.Message, error) {
	d := l.file.Messages().ByName(name.Name())
	if name.Parent() != "tetragon" || d == nil {
		return nil, fmt.Errorf("%s is not a message of the layout", name)
	}
	return dynamicpb.NewMessage(d), nil
}

// unknown fails on a non-private unknown field in m or below.
func unknown(m protoreflect.Message, path string) error {
	var errs []error
	for raw := m.GetUnknown(); len(raw) > 0; {
		num, typ, n := protowire.ConsumeField(raw)
		if n < 0 {
			return fmt.Errorf("%s: unknown fields that do not parse", path)
		}
		raw = raw[n:]
		if Private(num) {
			continue
		}
		if f := m.Descriptor().Fields().ByNumber(num); f != nil {
			errs = append(errs, fmt.Errorf("%s.%s (%d): wire type %d does not fit Tetragon's %s", path, f.Name(), num, typ, fieldType(f)))
		} else {
			errs = append(errs, fmt.Errorf("%s: field %d (wire type %d) is not in Tetragon's schema", path, num, typ))
		}
	}
	m.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if f.Message() == nil {
			return true
		}
		p := path + "." + string(f.Name())
		switch {
		case f.IsList():
			for i := range v.List().Len() {
				errs = append(errs, unknown(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", p, i)))
			}
		case f.IsMap():
		default:
			errs = append(errs, unknown(v.Message(), p))
		}
		return true
	})
	return errors.Join(errs...)
}
