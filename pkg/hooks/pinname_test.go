package hooks

import "testing"

func TestPinName(t *testing.T) {
	for in, want := range map[string]string{
		"enforcement": "enforcement",
		"process.credentials.changes.at.syscalls": "process%2ecredentials%2echanges%2eat%2esyscalls",
		"a%2eb": "a%252eb", // not the same directory as "a.b"
		"a.b":   "a%2eb",
	} {
		if got := PinName(in); got != want {
			t.Errorf("PinName(%q) = %q, want %q", in, got, want)
		}
	}
}
