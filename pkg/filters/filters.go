// Package filters decides which events a GetEvents client receives, from the
// allow and deny lists of its request.
//
// Filters come from untrusted clients. Go's regexp engine runs in time
// linear in the input, but also in the size of the compiled program: one
// 3 KB regex of counted repetitions ((?:.{1000}|.{999}|...)z) compiles to
// ~350,000 instructions and took 94 s to match a 4 KB path here. So the
// compiled size is bounded per regex and per Matcher, and so is the number
// of filters; a filter's list fields are sets.
package filters

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

const (
	// MaxRegexLen bounds one regex of a filter, in bytes.
	MaxRegexLen = 4096
	// MaxRegexProgram bounds one regex's compiled program, in instructions
	// (^/usr/bin/(curl|wget|nc|python3?)$ is 36; a{1000} is 1,002). A
	// 1,000-instruction regex took up to 55 ms to match a 4 KB string here.
	MaxRegexProgram = 1000
	// MaxMatcherProgram bounds the sum over all the regexes of a Matcher.
	MaxMatcherProgram = 5000
	// MaxFilters bounds each of the allow and deny lists.
	MaxFilters = 256
)

// Matcher is an allow and a deny list compiled once. It is immutable and so
// safe for concurrent use.
type Matcher struct {
	allow []filter
	deny  []filter
}

// filter is one compiled api.Filter. A nil or empty slice means the field
// was not set and does not constrain the event.
type filter struct {
	binary          []*regexp.Regexp
	parentBinary    []*regexp.Regexp
	arguments       []*regexp.Regexp
	parentArguments []*regexp.Regexp
	pod             []*regexp.Regexp
	containerName   []*regexp.Regexp
	containerID     []*regexp.Regexp
	labels          []labels.Selector
	caps            []capCheck
	namespaces      set[string]
	pids            set[uint32]
	eventSet        set[api.EventType]
	policyNames     set[string]
	inContainer     *bool
}

// set is nil when the field is not set.
type set[T comparable] map[T]struct{}

func newSet[T comparable](vs []T) set[T] {
	if len(vs) == 0 {
		return nil
	}
	s := make(set[T], len(vs))
	for _, v := range vs {
		s[v] = struct{}{}
	}
	return s
}

func (s set[T]) has(v T) bool {
	_, ok := s[v]
	return ok
}

// New compiles the lists. An error names the list, the filter's index, the
// field and the regex.
func New(allow, deny []*api.Filter) (*Matcher, error) {
	m := &Matcher{}
	budget := MaxMatcherProgram
	var err error
	if m.allow, err = compileList("allow", allow, &budget); err != nil {
		return nil, err
	}
	if m.deny, err = compileList("deny", deny, &budget); err != nil {
		return nil, err
	}
	return m, nil
}

func compileList(list string, fs []*api.Filter, budget *int) ([]filter, error) {
	if len(fs) > MaxFilters {
		return nil, fmt.Errorf("%s list has %d filters, the limit is %d", list, len(fs), MaxFilters)
	}
	out := make([]filter, 0, len(fs))
	for i, f := range fs {
		c, err := compile(f, budget)
		if err != nil {
			return nil, fmt.Errorf("%s filter %d: %w", list, i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func compile(f *api.Filter, budget *int) (filter, error) {
	var c filter
	var err error
	fields := []struct {
		name string
		src  []string
		dst  *[]*regexp.Regexp
	}{
		{"binary_regex", f.GetBinaryRegex(), &c.binary},
		{"parent_binary_regex", f.GetParentBinaryRegex(), &c.parentBinary},
		{"arguments_regex", f.GetArgumentsRegex(), &c.arguments},
		{"parent_arguments_regex", f.GetParentArgumentsRegex(), &c.parentArguments},
		{"pod_regex", f.GetPodRegex(), &c.pod},
		{"container_name_regex", f.GetContainerNameRegex(), &c.containerName},
		{"container_id", f.GetContainerId(), &c.containerID},
	}
	for _, fd := range fields {
		if *fd.dst, err = compileRegexes(fd.name, fd.src, budget); err != nil {
			return filter{}, err
		}
	}
	if c.labels, err = compileLabels(f.GetLabels()); err != nil {
		return filter{}, err
	}
	if c.caps, err = compileCaps(f.GetCapabilities()); err != nil {
		return filter{}, err
	}
	c.pids = newSet(f.GetPid())
	c.namespaces = newSet(f.GetNamespace())
	c.eventSet = newSet(f.GetEventSet())
	c.policyNames = newSet(f.GetPolicyNames())
	if v := f.GetInContainer(); v != nil {
		b := v.GetValue()
		c.inContainer = &b
	}
	return c, nil
}

func compileRegexes(field string, src []string, budget *int) ([]*regexp.Regexp, error) {
	if len(src) == 0 {
		return nil, nil
	}
	out := make([]*regexp.Regexp, 0, len(src))
	for _, s := range src {
		if len(s) > MaxRegexLen {
			return nil, fmt.Errorf("%s %s: regex is %d bytes long, the limit is %d",
				field, quote(s), len(s), MaxRegexLen)
		}
		n, err := programSize(s)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", field, quote(s), err)
		}
		if n > MaxRegexProgram {
			return nil, fmt.Errorf("%s %s: regex compiles to %d instructions, the limit is %d (long literals, counted repetitions and alternations cost most)",
				field, quote(s), n, MaxRegexProgram)
		}
		if *budget -= n; *budget < 0 {
			return nil, fmt.Errorf("%s %s: the filters' regexes compile to more than %d instructions in all",
				field, quote(s), MaxMatcherProgram)
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", field, quote(s), err)
		}
		out = append(out, re)
	}
	return out, nil
}

// quote quotes a regex for an error message, cut to a readable length.
func quote(s string) string {
	const limit = 64
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:limit]) + "..."
}

// programSize is the number of instructions of the program regexp.Compile
// builds for s, which the matching time is proportional to.
func programSize(s string) (int, error) {
	re, err := syntax.Parse(s, syntax.Perl)
	if err != nil {
		return 0, err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0, err
	}
	return len(prog.Inst), nil
}

// Match reports whether ev passes: no allow filter or any allow filter
// matches, and no deny filter matches. A nil Matcher passes everything.
func (m *Matcher) Match(ev *api.GetEventsResponse) bool {
	if m == nil || len(m.allow)+len(m.deny) == 0 {
		return true
	}
	v := viewOf(ev)
	return (len(m.allow) == 0 || anyFilter(m.allow, &v)) && !anyFilter(m.deny, &v)
}

func anyFilter(fs []filter, v *view) bool {
	for i := range fs {
		if fs[i].match(v) {
			return true
		}
	}
	return false
}

// match reports whether every field set in f matches.
func (f *filter) match(v *view) bool {
	if f.eventSet != nil && !f.eventSet.has(v.typ) {
		return false
	}
	if f.pids != nil {
		pid := v.process.GetPid()
		if pid == nil || !f.pids.has(pid.GetValue()) {
			return false
		}
	}
	if f.policyNames != nil && (v.policy == "" || !f.policyNames.has(v.policy)) {
		return false
	}
	if f.inContainer != nil && (v.process == nil || inContainer(v.process) != *f.inContainer) {
		return false
	}
	if f.binary != nil && (v.process == nil || !anyMatch(f.binary, v.process.GetBinary())) {
		return false
	}
	if f.arguments != nil && (v.process == nil || !anyMatch(f.arguments, v.process.GetArguments())) {
		return false
	}
	if f.parentBinary != nil && (v.parent == nil || !anyMatch(f.parentBinary, v.parent.GetBinary())) {
		return false
	}
	if f.parentArguments != nil && (v.parent == nil || !anyMatch(f.parentArguments, v.parent.GetArguments())) {
		return false
	}
	if f.containerID != nil && (v.process.GetDocker() == "" || !anyMatch(f.containerID, v.process.GetDocker())) {
		return false
	}
	if f.labels != nil && !matchLabels(f.labels, v.process.GetPod()) {
		return false
	}
	if f.caps != nil && !matchCaps(f.caps, v.process.GetCap()) {
		return false
	}
	if f.namespaces != nil && (v.process.GetPod() == nil || !f.namespaces.has(v.process.GetPod().GetNamespace())) {
		return false
	}
	name := v.process.GetContainer().GetName()
	// the pod's name in Kubernetes; outside, the container's (the Docker
	// counterpart of a pod)
	podName := name
	if pod := v.process.GetPod(); pod != nil {
		podName = pod.GetName()
	}
	if f.pod != nil && (podName == "" || !anyMatch(f.pod, podName)) {
		return false
	}
	if f.containerName != nil && (name == "" || !anyMatch(f.containerName, name)) {
		return false
	}
	return true
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(s) })
}

// inContainer reports whether p runs in a container, known by its id or name.
func inContainer(p *api.Process) bool {
	return p.GetDocker() != "" || p.GetContainer().GetId() != "" || p.GetContainer().GetName() != "" || p.GetPod() != nil
}
