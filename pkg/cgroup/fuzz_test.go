package cgroup

import (
	"strings"
	"testing"
)

func FuzzContainerID(f *testing.F) {
	for _, s := range []string{
		"/docker/" + id1,
		"/system.slice/docker-" + id1 + ".scope",
		"/kubepods/burstable/pod1/cri-containerd-" + id1 + ".scope",
		"crio-" + id1 + ".scope",
		"/docker/" + id1 + "/docker/" + id2 + "/x",
		"/",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		id := ContainerID(in)
		if id == "" {
			return
		}
		if !isID(id) {
			t.Fatalf("ContainerID(%q) = %q, not a 64-digit lower-case hex id", in, id)
		}
		if !strings.Contains(in, id) {
			t.Fatalf("ContainerID(%q) = %q, which the input does not contain", in, id)
		}
		// The id names its own leaf, so extracting it again is stable.
		if again := ContainerID(id); again != id {
			t.Fatalf("ContainerID(%q) = %q, want the id itself", id, again)
		}
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	for _, s := range []string{
		"9:name=systemd:/docker/" + id1 + "\n4:memory:/docker/" + id1 + "\n0::/docker/" + id1 + "\n",
		"0::/system.slice/docker-" + id1 + ".scope\n",
		"12:name=systemd:/docker/" + id1 + "\n0::/\n",
		"3:memory:/user.slice\n2:name=systemd:/user.slice/session-1.scope\n",
		"0::/\n",
		"garbage\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		path, err := ParseProcCgroup(strings.NewReader(in))
		if err != nil {
			if path != "" {
				t.Fatalf("ParseProcCgroup returned %q together with error %v", path, err)
			}
			return
		}
		if path == "" {
			t.Fatalf("ParseProcCgroup(%q) returned an empty path and no error", in)
		}
		if !strings.Contains(in, ":"+path) {
			t.Fatalf("ParseProcCgroup(%q) = %q, not a path of the input", in, path)
		}
	})
}
