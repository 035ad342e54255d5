package cgroup

import (
	"strings"
	"testing"
)

const (
	id1 = "80f1210b154b346a270d72b2cace23f167c598fc036a11993e93b33c1e8cef91"
	id2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestContainerID(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"cgroupfs docker", "/docker/" + id1, id1},
		{"cgroupfs docker trailing newline", "/docker/" + id1 + "\n", id1},
		{"cgroupfs leaf", id1, id1},
		{"systemd docker scope", "/system.slice/docker-" + id1 + ".scope", id1},
		{"systemd docker scope leaf", "docker-" + id1 + ".scope", id1},
		{"containerd cri", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c.slice/cri-containerd-" + id1 + ".scope", id1},
		{"containerd cri leaf", "cri-containerd-" + id1 + ".scope", id1},
		{"cri-o", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9.slice/crio-" + id1 + ".scope", id1},
		{"cri-o v2 container sub-cgroup", "/kubepods.slice/crio-" + id1 + ".scope/container", id1},
		{"cri-o conmon is no container", "/machine.slice/crio-conmon-" + id1 + ".scope", ""},
		{"podman", "/machine.slice/libpod-" + id1 + ".scope", id1},
		{"podman rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id1 + ".scope/container", id1},
		{"podman conmon is no container", "/machine.slice/libpod-conmon-" + id1 + ".scope", ""},
		{"kubepods cgroupfs", "/kubepods/burstable/pod3f1c-44/" + id1, id1},
		{"nested sub-cgroup", "/docker/" + id1 + "/init.scope", id1},
		{"nested deep sub-cgroups", "/docker/" + id1 + "/a/b/c", id1},
		{"docker in docker: deepest wins", "/docker/" + id1 + "/docker/" + id2, id2},
		{"docker in docker below a sub-cgroup", "/docker/" + id1 + "/docker/" + id2 + "/sub", id2},
		{"cgroup namespace relative path", "/../docker-" + id2 + ".scope", id2},
		{"host root", "/", ""},
		{"empty", "", ""},
		{"host systemd service", "/system.slice/containerd.service", ""},
		{"host user session", "/user.slice/user-0.slice/session-3.scope", ""},
		{"docker parent only", "/docker", ""},
		{"docker scope without id", "/system.slice/docker.service", ""},
		{"63 hex digits", "/docker/" + id1[:63], ""},
		{"65 hex digits", "/docker/" + id1 + "0", ""},
		{"upper-case hex is not an id", "/docker/" + strings.ToUpper(id1), ""},
		{"non-hex", "/docker/" + strings.Repeat("g", 64), ""},
		{"scope with wrong suffix", "/system.slice/docker-" + id1 + ".service", ""},
		{"unknown runtime prefix", "/system.slice/rkt-" + id1 + ".scope", ""},
		{"id inside a longer segment", "/docker/x" + id1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ContainerID(tt.in); got != tt.want {
				t.Errorf("ContainerID(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{
			name: "hybrid docker container (measured here)",
			in: "9:name=systemd:/docker/" + id1 + "\n" +
				"8:pids:/docker/" + id1 + "\n" +
				"4:memory:/docker/" + id1 + "\n" +
				"1:cpu:/docker/" + id1 + "\n" +
				"0::/docker/" + id1 + "\n",
			want: "/docker/" + id1,
		},
		{
			name: "cgroup v2 only",
			in:   "0::/system.slice/docker-" + id1 + ".scope\n",
			want: "/system.slice/docker-" + id1 + ".scope",
		},
		{
			name: "hybrid where runc left the unified hierarchy at the root",
			in: "12:name=systemd:/docker/" + id1 + "\n" +
				"3:memory:/docker/" + id1 + "\n" +
				"0::/\n",
			want: "/docker/" + id1,
		},
		{
			name: "v1 only, container id only in a controller hierarchy",
			in: "2:name=systemd:/system.slice/containerd.service\n" +
				"1:cpu,cpuacct:/docker/" + id1 + "\n",
			want: "/docker/" + id1,
		},
		{
			name: "host process, hybrid: unified path preferred",
			in: "9:name=systemd:/init.scope\n" +
				"1:cpu:/\n" +
				"0::/init.scope\n",
			want: "/init.scope",
		},
		{
			name: "host process, v1 only: systemd hierarchy preferred",
			in: "3:memory:/user.slice\n" +
				"2:name=systemd:/user.slice/user-0.slice/session-1.scope\n",
			want: "/user.slice/user-0.slice/session-1.scope",
		},
		{
			name: "v1 without systemd: first in file order",
			in:   "5:memory:/a\n4:cpu:/b\n",
			want: "/a",
		},
		{
			name: "path containing a colon",
			in:   "0::/weird:name/" + id1 + "\n",
			want: "/weird:name/" + id1,
		},
		{
			name: "cgroup namespace root",
			in:   "0::/\n",
			want: "/",
		},
		{
			name: "CRLF and blank lines",
			in:   "\r\n0::/docker/" + id1 + "\r\n\n",
			want: "/docker/" + id1,
		},
		{name: "empty file", in: "", wantErr: "no cgroup entries"},
		{name: "garbage", in: "hello world\n", wantErr: "want hierarchy-ID:controllers:path"},
		{name: "non-numeric hierarchy", in: "x::/docker\n", wantErr: "want hierarchy-ID:controllers:path"},
		{name: "empty path", in: "0::\n", wantErr: "empty path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcCgroup(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseProcCgroup() = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseProcCgroup(): %v", err)
			}
			if got != tt.want {
				t.Errorf("ParseProcCgroup() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseProcCgroupLongLine(t *testing.T) {
	in := "0::/" + strings.Repeat("a", maxLine+1) + "\n"
	if _, err := ParseProcCgroup(strings.NewReader(in)); err == nil {
		t.Fatal("a line longer than the limit was accepted")
	}
}
