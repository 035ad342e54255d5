package tracingpolicy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseChanges(t *testing.T) {
	pols, err := Parse("x.yaml", []byte(header+fdInstall+`    - matchCapabilityChanges:
      - type: Permitted
        operator: NotIn
        isNamespaceCapability: true
        values: [cap_setuid, CAP_SYS_ADMIN]
      matchNamespaceChanges:
      - operator: In
        values: [Mnt, User, Uts]
`))
	if err != nil {
		t.Fatal(err)
	}
	s := pols[0].Spec.KProbes[0].Selectors[0]
	c := s.MatchCapabilityChanges
	if len(c) != 1 || c[0].Type != CapPermitted || c[0].Operator != OpNotIn || !c[0].IsNamespaceCapability ||
		c[0].Mask != 1<<7|1<<21 || !slices.Equal(c[0].Values, []string{"CAP_SETUID", "CAP_SYS_ADMIN"}) {
		t.Fatalf("matchCapabilityChanges %+v", c)
	}
	n := s.MatchNamespaceChanges
	if len(n) != 1 || n[0].Operator != OpIn || n[0].Mask != 1<<2|1<<9|1<<0 {
		t.Fatalf("matchNamespaceChanges %+v", n)
	}
}

// FuzzChangeValues parses change filters with arbitrary operators and
// values: an accepted entry's mask has exactly the bits of its values, a
// rejected one is reported on a line of the document.
func FuzzChangeValues(f *testing.F) {
	f.Add("In", "Mnt", "Net", "Effective", "CAP_SETUID")
	f.Add("NotIn", "mnt", "", "Permitted", "cap_sys_admin")
	f.Add("In", "PidForChildren", "TimeForChildren", "Ambient", "CAP_NOPE")
	f.Add("Within", "Uts\n", "\"x", "", "0")
	f.Fuzz(func(t *testing.T, op, ns1, ns2, capType, capName string) {
		for _, s := range []string{op, ns1, ns2, capType, capName} {
			if !utf8.ValidString(s) {
				return // YAML text is UTF-8: no policy to parse (not a skip: nothing is left unchecked)
			}
		}
		q := strconv.Quote
		data := []byte(fmt.Sprintf("%s%s    - matchNamespaceChanges:\n      - operator: %s\n        values: [%s, %s]\n      matchCapabilityChanges:\n      - type: %s\n        operator: %s\n        values: [%s]\n",
			header, fdInstall, q(op), q(ns1), q(ns2), q(capType), q(op), q(capName)))
		pols, err := Parse("f.yaml", data)
		checkParsed(t, data, pols, err)
		if err != nil {
			if errors.Is(err, ErrNotPolicy) {
				t.Fatalf("a TracingPolicy document reported as not a policy: %v", err)
			}
			return
		}
		if op != "In" && op != "NotIn" {
			t.Fatalf("operator %q accepted", op)
		}
		s := pols[0].Spec.KProbes[0].Selectors[0]
		var want uint32
		for _, v := range []string{ns1, ns2} {
			k := slices.Index(NamespaceKinds[:], NamespaceType(v))
			if k < 0 {
				t.Fatalf("namespace %q accepted", v)
			}
			want |= 1 << k
		}
		if got := s.MatchNamespaceChanges[0].Mask; got != want {
			t.Fatalf("namespace mask %#x for %q %q, want %#x", got, ns1, ns2, want)
		}
		c := s.MatchCapabilityChanges[0]
		num, ok := capabilityNumber(capName)
		if !ok || c.Mask != 1<<num || c.Values[0] != strings.ToUpper(capName) || string(c.Type) != capType {
			t.Fatalf("capability %q of type %q accepted as %+v", capName, capType, c)
		}
	})
}
