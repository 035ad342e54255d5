package tracingpolicy

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder walks one YAML document's node tree, collecting every error with
// its position instead of stopping at the first.
type decoder struct {
	file string
	errs *ErrorList
	// budget is the number of nodes the walk may still visit.
	budget    int
	exhausted bool
	// listCalls locates, by hook, what checkListCalls reports on the
	// kprobes whose call is "list:NAME"
	listCalls map[Source]listCall
	// macros are the current spec's selectorsMacros, by name
	macros map[string]*yaml.Node
	// inMapLists are the lists InMap values name, checked by
	// checkInMapLists once spec.lists is read
	inMapLists []inMapListRef
	// enforcerLists are the lists spec.enforcers names, and
	// notifyActions the NotifyEnforcer actions, checked by checkEnforcers
	enforcerLists []inMapListRef
	notifyActions []Source
}

// listCall is where a list kprobe's call is written, and its syscall
// field if it is (a list call takes its kind from the list, and a
// contrary syscall field is an error).
type listCall struct {
	call    Source
	syscall *Source
}

// fieldPath is a dotted field path, e.g. spec.kprobes[0].args.
type fieldPath string

func (p fieldPath) field(name string) fieldPath {
	if p == "" {
		return fieldPath(name)
	}
	return p + "." + fieldPath(name)
}

func (p fieldPath) index(i int) fieldPath {
	b := make([]byte, 0, len(p)+8)
	b = append(b, p...)
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(i), 10)
	return fieldPath(append(b, ']'))
}

func (d *decoder) src(n *yaml.Node, p fieldPath) Source {
	s := Source{File: d.file, Path: string(p)}
	if n != nil {
		s.Line, s.Column = n.Line, n.Column
	}
	return s
}

func (d *decoder) errorf(n *yaml.Node, p fieldPath, format string, args ...any) {
	d.add(d.src(n, p).Errorf(format, args...))
}

// add records an error, up to maxErrors per file.
func (d *decoder) add(e FieldError) {
	if d.exhausted {
		return
	}
	if len(d.errs.Errors) >= maxErrors {
		// Aliases can repeat one mistake endlessly; stop the walk.
		d.exhausted = true
		e.Msg = "too many errors, giving up on this file"
	}
	d.errs.Errors = append(d.errs.Errors, e)
}

// maxErrors bounds the errors collected for one file.
const maxErrors = 1000

// deref follows aliases and charges the node budget; it returns nil once the
// budget is spent (reporting that once), which ends the walk.
func (d *decoder) deref(n *yaml.Node, p fieldPath) *yaml.Node {
	for hops := 0; n != nil && n.Kind == yaml.AliasNode; hops++ {
		if hops > 100 {
			d.errorf(n, p, "alias chain too long")
			return nil
		}
		n = n.Alias
	}
	if n == nil || !d.charge(n, p, 1) {
		return nil
	}
	return n
}

// charge spends cost units of the node budget; it reports false once the
// budget is spent (reporting that once), which ends the walk.
func (d *decoder) charge(n *yaml.Node, p fieldPath, cost int) bool {
	if d.exhausted {
		return false
	}
	d.budget -= cost
	if d.budget < 0 {
		d.errorf(n, p, "document too large: more than %d YAML nodes (after expanding aliases)", maxNodes)
		d.exhausted = true
		return false
	}
	return true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's kind for "must be a ..." errors.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("string %q", truncate(n.Value))
		case "!!int":
			return "integer " + truncate(n.Value)
		case "!!bool":
			return "boolean " + n.Value
		case "!!float":
			return "number " + truncate(n.Value)
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), truncate(n.Value))
	}
	return "an unexpected node"
}

func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// field describes one key of a YAML mapping.
type field struct {
	name     string
	required bool
	// decode handles the (alias-resolved, non-null) value; nil means a
	// Tetragon field this agent does not implement.
	decode func(v *yaml.Node, p fieldPath)
	// ignore accepts and drops the field (Kubernetes bookkeeping).
	ignore bool
}

type pair struct{ key, value *yaml.Node }

// pairs returns the key/value pairs of mapping n with YAML merge keys (<<)
// expanded; explicit keys take precedence over merged ones.
func (d *decoder) pairs(n *yaml.Node, p fieldPath, depth int) []pair {
	if !d.charge(n, p, len(n.Content)/2) {
		return nil
	}
	var explicit, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSource(v, p, depth)...)
			continue
		}
		explicit = append(explicit, pair{k, v})
	}
	if len(merged) == 0 {
		return explicit
	}
	seen := map[string]bool{}
	for _, pr := range explicit {
		seen[pr.key.Value] = true
	}
	for _, pr := range merged {
		if !seen[pr.key.Value] {
			seen[pr.key.Value] = true
			explicit = append(explicit, pr)
		}
	}
	return explicit
}

func (d *decoder) mergeSource(v *yaml.Node, p fieldPath, depth int) []pair {
	if depth > 10 {
		d.errorf(v, p, "merge keys (<<) nested more than 10 deep")
		d.exhausted = true
		return nil
	}
	v = d.deref(v, p)
	if v == nil {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.pairs(v, p, depth+1)
	case yaml.SequenceNode:
		// Earlier mappings take precedence over later ones.
		var out []pair
		seen := map[string]bool{}
		for _, m := range v.Content {
			prs := d.mergeSource(m, p, depth+1)
			if !d.charge(m, p, len(prs)) {
				return nil
			}
			for _, pr := range prs {
				if !seen[pr.key.Value] {
					seen[pr.key.Value] = true
					out = append(out, pr)
				}
			}
		}
		return out
	}
	d.errorf(v, p, "merge key (<<) value must be a mapping or a list of mappings, got %s", describe(v))
	return nil
}

// mapping decodes the mapping n (already dereferenced) field by field. Keys
// match a field name exactly or, as Tetragon's JSON-based decoding does,
// ignoring case. Unknown, duplicate and missing required fields are errors.
// It returns false when n is not a mapping.
func (d *decoder) mapping(n *yaml.Node, p fieldPath, fields []field) bool {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, p, "must be a mapping, got %s", describe(n))
		return false
	}
	seenAt := map[string]*yaml.Node{}
	for _, pr := range d.pairs(n, p, 0) {
		k := pr.key
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, p, "mapping key must be a string, got %s", describe(k))
			continue
		}
		f := lookupField(fields, k.Value)
		if f == nil {
			d.errorf(k, p.field(k.Value), "unknown field %q%s", truncate(k.Value), suggest(k.Value, fields))
			continue
		}
		fp := p.field(f.name)
		if prev, dup := seenAt[f.name]; dup {
			d.errorf(k, fp, "duplicate field (first set at line %d)", prev.Line)
			continue
		}
		seenAt[f.name] = k
		if f.ignore {
			continue
		}
		if f.decode == nil {
			d.errorf(k, fp, "%s is not supported by this agent", f.name)
			continue
		}
		v := d.deref(pr.value, fp)
		if v == nil || isNull(v) {
			// As in Kubernetes, null means "not set".
			if f.required {
				d.errorf(k, fp, "required field is null")
			}
			continue
		}
		f.decode(v, fp)
	}
	for _, f := range fields {
		if f.required && seenAt[f.name] == nil {
			d.errorf(n, p, "missing required field %q", f.name)
		}
	}
	return true
}

func lookupField(fields []field, key string) *field {
	for i := range fields {
		if fields[i].name == key {
			return &fields[i]
		}
	}
	for i := range fields {
		if strings.EqualFold(fields[i].name, key) {
			return &fields[i]
		}
	}
	return nil
}

// suggest proposes the closest field name for a misspelt key.
func suggest(key string, fields []field) string {
	best, bestDist := "", 3
	for _, f := range fields {
		if f.ignore {
			continue
		}
		if dist := editDistance(strings.ToLower(key), strings.ToLower(f.name)); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	var names []string
	for _, f := range fields {
		if !f.ignore && f.decode != nil {
			names = append(names, f.name)
		}
	}
	return " (valid fields: " + strings.Join(names, ", ") + ")"
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// str reads a scalar as a string. Numbers and booleans are accepted as
// their text (so "values: [4]" reads "4").
func (d *decoder) str(n *yaml.Node, p fieldPath) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, p, "must be a string, got %s", describe(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
	default:
		d.errorf(n, p, "must be a string, got %s", describe(n))
		return "", false
	}
	if len(n.Value) > MaxValueLen {
		d.errorf(n, p, "string of %d bytes is longer than %d bytes", len(n.Value), MaxValueLen)
		return "", false
	}
	return n.Value, true
}

func (d *decoder) boolean(n *yaml.Node, p fieldPath) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, true
		}
	}
	d.errorf(n, p, "must be true or false, got %s", describe(n))
	return false, false
}

// integer reads an integer scalar in [lo, hi].
func (d *decoder) integer(n *yaml.Node, p fieldPath, lo, hi int64) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.errorf(n, p, "must be an integer, got %s", describe(n))
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil || v < lo || v > hi {
		d.errorf(n, p, "must be an integer between %d and %d, got %s", lo, hi, truncate(n.Value))
		return 0, false
	}
	return v, true
}

func (d *decoder) uint64(n *yaml.Node, p fieldPath) (uint64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.errorf(n, p, "must be an integer, got %s", describe(n))
		return 0, false
	}
	var v uint64
	if err := n.Decode(&v); err != nil {
		d.errorf(n, p, "must be an integer between 0 and %d, got %s", uint64(1<<64-1), truncate(n.Value))
		return 0, false
	}
	return v, true
}

// list decodes sequence n (already dereferenced) item by item, dereferencing
// each item; null items are errors. maxItems bounds the length.
func (d *decoder) list(n *yaml.Node, p fieldPath, maxItems int, item func(i int, v *yaml.Node, ip fieldPath)) bool {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, p, "must be a list, got %s", describe(n))
		return false
	}
	if len(n.Content) > maxItems {
		d.errorf(n, p, "has %d entries, at most %d are allowed", len(n.Content), maxItems)
		return false
	}
	for i, c := range n.Content {
		ip := p.index(i)
		v := d.deref(c, ip)
		if v == nil {
			return false
		}
		if isNull(v) {
			d.errorf(v, ip, "null entry")
			continue
		}
		item(i, v, ip)
	}
	return true
}

// strings reads a list of non-empty strings.
func (d *decoder) strings(n *yaml.Node, p fieldPath, maxItems int) ([]string, []*yaml.Node) {
	var out []string
	var nodes []*yaml.Node
	d.list(n, p, maxItems, func(_ int, v *yaml.Node, ip fieldPath) {
		s, ok := d.str(v, ip)
		if !ok {
			return
		}
		if s == "" {
			d.errorf(v, ip, "empty string")
			return
		}
		out = append(out, s)
		nodes = append(nodes, v)
	})
	return out, nodes
}

// stringMap reads a mapping of strings to strings; check, when set, vets
// each entry (in file order, with the key's node for positions).
func (d *decoder) stringMap(n *yaml.Node, p fieldPath, check func(keyNode *yaml.Node, kp fieldPath, k, v string)) map[string]string {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, p, "must be a mapping, got %s", describe(n))
		return nil
	}
	out := map[string]string{}
	keyLine := map[string]int{}
	for _, pr := range d.pairs(n, p, 0) {
		k, ok := d.str(pr.key, p)
		if !ok {
			continue
		}
		kp := p.field(k)
		if line, dup := keyLine[k]; dup {
			d.errorf(pr.key, kp, "duplicate key (first set at line %d)", line)
			continue
		}
		keyLine[k] = pr.key.Line
		v := d.deref(pr.value, kp)
		if v == nil {
			return out
		}
		val := ""
		if !isNull(v) {
			if val, ok = d.str(v, kp); !ok {
				continue
			}
		}
		out[k] = val
		if check != nil {
			check(pr.key, kp, k, val)
		}
	}
	return out
}

// parseInt parses an integer matchArgs value the way C and Go literals read:
// decimal, 0x hex, 0o or leading-0 octal, 0b binary, optional sign.
func parseInt(s string, t ArgType) (int64, error) {
	info, _ := lookupType(t)
	bits := info.size * 8
	if info.signed {
		v, err := strconv.ParseInt(s, 0, bits)
		if err != nil {
			return 0, rangeErr(err, s, t)
		}
		return v, nil
	}
	v, err := strconv.ParseUint(s, 0, bits)
	if err != nil {
		return 0, rangeErr(err, s, t)
	}
	return int64(v), nil
}

func rangeErr(err error, s string, t ArgType) error {
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return fmt.Errorf("value %q is out of range for type %s", truncate(s), t)
	}
	return fmt.Errorf("value %q is not an integer (type %s)", truncate(s), t)
}
