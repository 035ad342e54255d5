package tracingpolicy

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Document is one YAML document of a file: a policy, or a document that was
// skipped because it is not a policy.
type Document struct {
	// Index is the document's position in the file (0-based).
	Index int
	// Line is where the document's content starts.
	Line   int
	Policy *TracingPolicy
	// Skipped, when set, wraps ErrNotPolicy and says why.
	Skipped error
}

// ParseFile reads and parses a policy file; see Parse.
func ParseFile(path string) ([]*TracingPolicy, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	return Parse(filepath.Base(path), data)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy file: %w", err)
	}
	defer f.Close()
	// Read one byte past the limit to tell "exactly at" from "over".
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading policy file %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, &ErrorList{Errors: []FieldError{{File: filepath.Base(path),
			Msg: fmt.Sprintf("file is larger than the %d-byte limit for policy files", MaxFileSize)}}}
	}
	return data, nil
}

// Parse parses and validates every TracingPolicy document in data; name is
// the file name used in error messages. Documents of other kinds are dropped
// (ParseDocuments reports them). When data holds no policy at all, the error
// wraps ErrNotPolicy, so a caller scanning a directory can skip the file.
// Otherwise errors are an *ErrorList holding every problem of the file, and
// no policy is returned.
func Parse(name string, data []byte) ([]*TracingPolicy, error) {
	docs, err := ParseDocuments(name, data)
	if err != nil {
		return nil, err
	}
	var out []*TracingPolicy
	var skipped []string
	for _, d := range docs {
		if d.Policy != nil {
			out = append(out, d.Policy)
		} else {
			skipped = append(skipped, d.Skipped.Error())
		}
	}
	if len(out) == 0 {
		if len(skipped) == 0 {
			return nil, fmt.Errorf("%s: empty file: %w", name, ErrNotPolicy)
		}
		return nil, fmt.Errorf("%s: no policy (%s): %w", name, strings.Join(skipped, "; "), ErrNotPolicy)
	}
	return out, nil
}

// ParseDocuments parses every YAML document of data. Documents that are not
// TracingPolicies are returned with Skipped set. Any error in any policy
// document fails the whole file with an *ErrorList listing all of them.
func ParseDocuments(name string, data []byte) ([]Document, error) {
	errs := &ErrorList{}
	if len(data) > MaxFileSize {
		errs.Errors = append(errs.Errors, FieldError{File: name,
			Msg: fmt.Sprintf("file is larger than the %d-byte limit for policy files", MaxFileSize)})
		return nil, errs
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []Document
	names := map[string]int{} // policy name -> line, to catch duplicates
	for i := 0; ; i++ {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs.Errors = append(errs.Errors, syntaxError(name, data, err))
			break
		}
		doc := decodeDocument(name, i, &root, errs)
		if p := doc.Policy; p != nil {
			key := p.Metadata.Namespace + "/" + p.Metadata.Name
			if line, dup := names[key]; dup {
				errs.Errors = append(errs.Errors, p.Src.Errorf("policy %q is defined twice in this file (first at line %d)", p.Metadata.Name, line))
			} else {
				names[key] = p.Src.Line
			}
		}
		docs = append(docs, doc)
	}
	if err := errs.err(); err != nil {
		slices.SortStableFunc(errs.Errors, func(a, b FieldError) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, err
	}
	return docs, nil
}

// syntaxError turns a YAML parser error into a FieldError. The parser's
// own line numbers point at the start of the enclosing construct (and are
// off by one for some errors), so the line is found by parsing ever longer
// prefixes of the file: the first line whose inclusion breaks the parse is
// where the problem is.
func syntaxError(name string, data []byte, err error) FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if _, text, ok := strings.Cut(rest, ": "); ok {
			msg = text
		}
	}
	return FieldError{File: name, Line: failingLine(data), Msg: "invalid YAML: " + msg}
}

// failingLine returns the 1-based number of the line where data stops
// being parsable, by bisection over line prefixes.
//
// A prefix that ends inside a flow collection ("values: [a,") or a quoted
// string fails for want of its end, not because of a mistake; the first
// search ignores such failures so that a multi-line list before the real
// mistake is not blamed. When that search ends on the last line with such a
// failure, the document really does end inside an unclosed collection or
// string, and the strict search finds where it opens.
func failingLine(data []byte) int {
	var ends []int // ends[i] is the offset just past line i+1
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	parseErr := func(prefix []byte) error {
		dec := yaml.NewDecoder(bytes.NewReader(prefix))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	search := func(ok func(prefix []byte) bool) int {
		// Invariant: the first lo lines are ok, the first hi lines are not.
		lo, hi := 0, len(ends)
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if ok(data[:ends[mid-1]]) {
				lo = mid
			} else {
				hi = mid
			}
		}
		return hi
	}
	line := search(func(prefix []byte) bool {
		err := parseErr(prefix)
		return err == nil || truncated(err)
	})
	if line == len(ends) && truncated(parseErr(data)) {
		line = search(func(prefix []byte) bool { return parseErr(prefix) == nil })
	}
	return line
}

// truncated reports parse errors caused by input ending inside a flow
// collection or a quoted string.
func truncated(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	for _, s := range []string{"did not find expected node content", "did not find expected ',' or ']'",
		"did not find expected ',' or '}'", "found unexpected end of stream"} {
		if strings.HasSuffix(msg, s) {
			return true
		}
	}
	return false
}

// decodeDocument decodes one document; errors go to errs.
func decodeDocument(name string, index int, root *yaml.Node, errs *ErrorList) Document {
	doc := Document{Index: index, Line: root.Line}
	d := &decoder{file: name, errs: errs, budget: maxNodes}
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			doc.Skipped = fmt.Errorf("document %d: empty: %w", index+1, ErrNotPolicy)
			return doc
		}
		root = root.Content[0]
	}
	n := d.deref(root, "")
	if n == nil {
		return doc
	}
	doc.Line = n.Line
	if isNull(n) {
		doc.Skipped = fmt.Errorf("document %d (line %d): empty: %w", index+1, n.Line, ErrNotPolicy)
		return doc
	}
	if n.Kind != yaml.MappingNode {
		doc.Skipped = fmt.Errorf("document %d (line %d): %s, not an object: %w", index+1, n.Line, describe(n), ErrNotPolicy)
		return doc
	}
	kind, apiVersion, kindNode, apiNode := identity(n)
	if kind != KindTracingPolicy && kind != KindTracingPolicyNamespaced {
		if strings.EqualFold(kind, KindTracingPolicy) || strings.EqualFold(kind, KindTracingPolicyNamespaced) {
			d.errorf(kindNode, "kind", "kind %q must be spelt %s or %s", kind, KindTracingPolicy, KindTracingPolicyNamespaced)
			return doc
		}
		what := "no kind"
		if kind != "" {
			what = fmt.Sprintf("kind %q", truncate(kind))
		}
		doc.Skipped = fmt.Errorf("document %d (line %d): %s: %w", index+1, n.Line, what, ErrNotPolicy)
		return doc
	}
	before := len(errs.Errors)
	if apiVersion != APIVersion {
		at := apiNode
		if at == nil {
			at = n
		}
		d.errorf(at, "apiVersion", "apiVersion must be %s, got %q", APIVersion, truncate(apiVersion))
	}
	p := &TracingPolicy{APIVersion: apiVersion, Kind: kind, Src: d.src(n, "")}
	d.mapping(n, "", []field{
		{name: "apiVersion", required: true, ignore: true},
		{name: "kind", required: true, ignore: true},
		{name: "metadata", required: true, decode: func(v *yaml.Node, fp fieldPath) { d.metadata(v, fp, p) }},
		{name: "spec", required: true, decode: func(v *yaml.Node, fp fieldPath) { d.spec(v, fp, p) }},
		// Status is written by Kubernetes; a policy exported with kubectl
		// carries it.
		{name: "status", ignore: true},
	})
	if len(errs.Errors) > before {
		return doc
	}
	doc.Policy = p
	return doc
}

// identity reads kind and apiVersion without reporting errors: the document
// may not be a policy at all.
func identity(n *yaml.Node) (kind, apiVersion string, kindNode, apiNode *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
			continue
		}
		switch {
		case strings.EqualFold(k.Value, "kind"):
			kind, kindNode = v.Value, v
		case strings.EqualFold(k.Value, "apiVersion"):
			apiVersion, apiNode = v.Value, v
		}
	}
	return kind, apiVersion, kindNode, apiNode
}

func (d *decoder) metadata(n *yaml.Node, p fieldPath, pol *TracingPolicy) {
	m := &pol.Metadata
	var nsNode *yaml.Node
	ok := d.mapping(n, p, []field{
		{name: "name", required: true, decode: func(v *yaml.Node, fp fieldPath) {
			if s, ok := d.str(v, fp); ok {
				m.Name = s
				if msg := checkDNSSubdomain(s); msg != "" {
					d.errorf(v, fp, "invalid policy name %q: %s", truncate(s), msg)
				}
			}
		}},
		{name: "namespace", decode: func(v *yaml.Node, fp fieldPath) {
			nsNode = v
			if s, ok := d.str(v, fp); ok {
				m.Namespace = s
				if msg := checkDNSLabel(s); msg != "" {
					d.errorf(v, fp, "invalid namespace %q: %s", truncate(s), msg)
				}
			}
		}},
		{name: "labels", decode: func(v *yaml.Node, fp fieldPath) {
			m.Labels = d.stringMap(v, fp, func(kn *yaml.Node, kp fieldPath, k, val string) {
				if msg := checkQualifiedName(k); msg != "" {
					d.errorf(kn, kp, "invalid label key: %s", msg)
				}
				if msg := checkLabelValue(val); msg != "" {
					d.errorf(kn, kp, "invalid label value %q: %s", truncate(val), msg)
				}
			})
		}},
		{name: "annotations", decode: func(v *yaml.Node, fp fieldPath) {
			m.Annotations = d.stringMap(v, fp, func(kn *yaml.Node, kp fieldPath, k, _ string) {
				if msg := checkQualifiedName(k); msg != "" {
					d.errorf(kn, kp, "invalid annotation key: %s", msg)
				}
			})
		}},
		// The rest of Kubernetes ObjectMeta, set by the API server.
		{name: "generateName", ignore: true}, {name: "uid", ignore: true},
		{name: "resourceVersion", ignore: true}, {name: "generation", ignore: true},
		{name: "creationTimestamp", ignore: true}, {name: "deletionTimestamp", ignore: true},
		{name: "deletionGracePeriodSeconds", ignore: true}, {name: "ownerReferences", ignore: true},
		{name: "finalizers", ignore: true}, {name: "managedFields", ignore: true},
		{name: "selfLink", ignore: true},
	})
	if !ok {
		return
	}
	if pol.Namespaced() && m.Namespace == "" && nsNode == nil {
		d.errorf(n, p, "missing required field %q (a %s is namespaced)", "namespace", KindTracingPolicyNamespaced)
	}
	if !pol.Namespaced() && m.Namespace != "" {
		d.errorf(nsNode, p.field("namespace"), "a %s is cluster-wide and takes no namespace (use kind %s)", KindTracingPolicy, KindTracingPolicyNamespaced)
	}
}

func (d *decoder) spec(n *yaml.Node, p fieldPath, pol *TracingPolicy) {
	s := &pol.Spec
	declared := 0 // hooks written, valid or not
	hooks := func(v *yaml.Node, fp fieldPath, decode func(item *yaml.Node, ip fieldPath)) {
		if v.Kind != yaml.SequenceNode {
			declared++ // a malformed hook list is reported by list
		}
		d.list(v, fp, maxHooks, func(_ int, item *yaml.Node, ip fieldPath) {
			declared++
			decode(item, ip)
		})
	}
	d.scanMacros(n)
	ok := d.mapping(n, p, []field{
		{name: "kprobes", decode: func(v *yaml.Node, fp fieldPath) {
			hooks(v, fp, func(item *yaml.Node, ip fieldPath) {
				if h, ok := d.kprobe(item, ip); ok {
					s.KProbes = append(s.KProbes, h)
				}
			})
		}},
		{name: "fentries", decode: func(v *yaml.Node, fp fieldPath) {
			// Tetragon 1.6's fentries take the kprobe spec, served by
			// fentry/fexit programs instead of kprobes
			hooks(v, fp, func(item *yaml.Node, ip fieldPath) {
				if h, ok := d.kprobe(item, ip); ok {
					s.Fentries = append(s.Fentries, h)
				}
			})
		}},
		{name: "tracepoints", decode: func(v *yaml.Node, fp fieldPath) {
			hooks(v, fp, func(item *yaml.Node, ip fieldPath) {
				if h, ok := d.tracepoint(item, ip, false); ok {
					s.Tracepoints = append(s.Tracepoints, h)
				}
			})
		}},
		{name: "rawtracepoints", decode: func(v *yaml.Node, fp fieldPath) {
			// tracepoints read raw: the TP_PROTO arguments (tracepoints
			// with raw: true)
			hooks(v, fp, func(item *yaml.Node, ip fieldPath) {
				if h, ok := d.tracepoint(item, ip, true); ok {
					s.Tracepoints = append(s.Tracepoints, h)
				}
			})
		}},
		{name: "lsmhooks", decode: func(v *yaml.Node, fp fieldPath) {
			hooks(v, fp, func(item *yaml.Node, ip fieldPath) {
				if h, ok := d.lsmhook(item, ip); ok {
					s.LsmHooks = append(s.LsmHooks, h)
				}
			})
		}},
		{name: "uprobes", decode: func(v *yaml.Node, fp fieldPath) {
			hooks(v, fp, func(item *yaml.Node, ip fieldPath) {
				if h, ok := d.uprobe(item, ip); ok {
					s.UProbes = append(s.UProbes, h)
				}
			})
		}},
		{name: "options", decode: func(v *yaml.Node, fp fieldPath) {
			seen := map[string]bool{}
			d.list(v, fp, maxHooks, func(_ int, item *yaml.Node, ip fieldPath) {
				o := OptionSpec{Src: d.src(item, ip)}
				var nameNode, valueNode *yaml.Node
				d.mapping(item, ip, []field{
					{name: "name", required: true, decode: func(v *yaml.Node, fp fieldPath) { nameNode = v; o.Name, _ = d.str(v, fp) }},
					{name: "value", decode: func(v *yaml.Node, fp fieldPath) { valueNode = v; o.Value, _ = d.str(v, fp) }},
				})
				if nameNode == nil {
					return
				}
				if seen[o.Name] {
					d.errorf(nameNode, ip.field("name"), "option %q is set twice", truncate(o.Name))
					return
				}
				seen[o.Name] = true
				d.option(&o, s, nameNode, valueNode, ip)
				s.Options = append(s.Options, o)
			})
		}},
		{name: "lists", decode: func(v *yaml.Node, fp fieldPath) { d.lists(v, fp, s) }},
		{name: "selectorsMacros", decode: d.macrosField},
		{name: "podSelector", decode: func(v *yaml.Node, fp fieldPath) { s.PodSelector = d.labelSelector(v, fp, false) }},
		{name: "containerSelector", decode: func(v *yaml.Node, fp fieldPath) { s.ContainerSelector = d.labelSelector(v, fp, true) }},
		{name: "enforcers", decode: func(v *yaml.Node, fp fieldPath) { d.enforcers(v, fp, s, false) }},
		// killers is the earlier name of enforcers (killer.yaml)
		{name: "killers", decode: func(v *yaml.Node, fp fieldPath) { d.enforcers(v, fp, s, true) }},
		{name: "usdts", decode: func(v *yaml.Node, fp fieldPath) {
			hooks(v, fp, func(item *yaml.Node, ip fieldPath) {
				if h, ok := d.usdt(item, ip); ok {
					s.Usdts = append(s.Usdts, h)
				}
			})
		}},
		{name: "loader", decode: func(v *yaml.Node, fp fieldPath) {
			// true asks for Tetragon's loader sensor; whether this
			// kernel can serve it is the loader's decision (pkg/hooks)
			if on, ok := d.boolean(v, fp); ok {
				s.Loader, s.LoaderSrc = on, d.src(v, fp)
			}
		}},
		{name: "hostSelector"},
	})
	if ok {
		d.checkListCalls(s)
		d.checkInMapLists(s)
		d.checkEnforcers(s)
	}
	// a policy with loader: true alone asks for loader events (Tetragon's
	// loader test policy is just that)
	if ok && declared == 0 && !s.Loader {
		d.errorf(n, p, "the policy declares no hooks (kprobes, fentries, tracepoints, rawtracepoints, lsmhooks, uprobes or usdts) and no loader")
	}
}

// option checks a spec.options entry; policy-mode sets s.Mode and
// hook-mechanism s.HookMechanism.
func (d *decoder) option(o *OptionSpec, s *Spec, nameNode, valueNode *yaml.Node, p fieldPath) {
	at := valueNode
	if at == nil {
		at = nameNode
	}
	switch o.Name {
	case "policy-mode":
		switch m := PolicyMode(o.Value); m {
		case ModeEnforce, ModeMonitor:
			s.Mode = m
		default:
			d.errorf(at, p.field("value"), "policy-mode must be %s or %s, got %q", ModeEnforce, ModeMonitor, truncate(o.Value))
		}
	case "hook-mechanism":
		switch m := HookMechanism(o.Value); m {
		case MechanismAuto, MechanismKprobe, MechanismSyscallTracepoint:
			s.HookMechanism = m
		default:
			d.errorf(at, p.field("value"), "hook-mechanism must be %s, %s or %s, got %q",
				MechanismAuto, MechanismKprobe, MechanismSyscallTracepoint, truncate(o.Value))
		}
	case "disable-kprobe-multi", "disable-uprobe-multi":
		// Tetragon tuning knobs for its attach method; nothing to tune here,
		// but the policy stays valid.
		switch strings.ToLower(o.Value) {
		case "", "true", "false", "1", "0":
		default:
			d.errorf(at, p.field("value"), "option %s takes true or false, got %q", o.Name, truncate(o.Value))
		}
	default:
		d.errorf(nameNode, p.field("name"), "unknown option %q (supported: policy-mode, hook-mechanism, disable-kprobe-multi, disable-uprobe-multi)", truncate(o.Name))
	}
}

// maxHooks bounds each hook list of a spec.
const maxHooks = 128

func (d *decoder) labelSelector(n *yaml.Node, p fieldPath, container bool) *LabelSelector {
	ls := &LabelSelector{Src: d.src(n, p)}
	checkKey := func(v *yaml.Node, fp fieldPath, key string) {
		if container {
			if key != "name" {
				d.errorf(v, fp, "containerSelector supports only the key \"name\", got %q", truncate(key))
			}
			return
		}
		if msg := checkQualifiedName(key); msg != "" {
			d.errorf(v, fp, "invalid label key %q: %s", truncate(key), msg)
		}
	}
	d.mapping(n, p, []field{
		{name: "matchLabels", decode: func(v *yaml.Node, fp fieldPath) {
			ls.MatchLabels = d.stringMap(v, fp, func(kn *yaml.Node, kp fieldPath, k, val string) {
				checkKey(kn, kp, k)
				if msg := checkLabelValue(val); !container && msg != "" {
					d.errorf(kn, kp, "invalid label value %q: %s", truncate(val), msg)
				}
			})
		}},
		{name: "matchExpressions", decode: func(v *yaml.Node, fp fieldPath) {
			d.list(v, fp, MaxFilters, func(_ int, item *yaml.Node, ip fieldPath) {
				var r LabelSelectorRequirement
				var opNode, valuesNode *yaml.Node
				d.mapping(item, ip, []field{
					{name: "key", required: true, decode: func(v *yaml.Node, fp fieldPath) {
						if s, ok := d.str(v, fp); ok {
							r.Key = s
							checkKey(v, fp, s)
						}
					}},
					{name: "operator", required: true, decode: func(v *yaml.Node, fp fieldPath) {
						opNode = v
						if s, ok := d.str(v, fp); ok {
							switch s {
							case "In", "NotIn", "Exists", "DoesNotExist":
								r.Operator = s
							default:
								d.errorf(v, fp, "unknown operator %q (supported: In, NotIn, Exists, DoesNotExist)", truncate(s))
							}
						}
					}},
					{name: "values", decode: func(v *yaml.Node, fp fieldPath) {
						valuesNode = v
						r.Values, _ = d.strings(v, fp, MaxValues)
					}},
				})
				switch r.Operator {
				case "In", "NotIn":
					if len(r.Values) == 0 && valuesNode == nil {
						d.errorf(opNode, ip.field("values"), "operator %s needs values", r.Operator)
					}
				case "Exists", "DoesNotExist":
					if valuesNode != nil && len(valuesNode.Content) > 0 {
						d.errorf(valuesNode, ip.field("values"), "operator %s takes no values", r.Operator)
					}
				}
				ls.MatchExpressions = append(ls.MatchExpressions, r)
			})
		}},
	})
	return ls
}
