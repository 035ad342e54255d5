package tracingpolicy

import (
	"strings"
	"testing"
)

func TestActionTargets(t *testing.T) {
	for _, u := range []string{"http://ebpf.io", "https://127.0.0.1:8443/x?y=1", "HTTP://[::1]/"} {
		if _, err := ParseActionURL(u); err != nil {
			t.Errorf("ParseActionURL(%q): %v", u, err)
		}
	}
	for _, u := range []string{"", "ebpf.io", "ftp://ebpf.io/", "http://", "http:///x", "http://u:p@h/", "http://%zz", "http://h/" + strings.Repeat("a", 3000)} {
		if _, err := ParseActionURL(u); err == nil {
			t.Errorf("ParseActionURL(%q) accepted", u)
		}
	}
	for _, f := range []string{"ebpf.io", "ebpf.io.", "a", "_dmarc.x-y.example", strings.Repeat("a", 63) + ".io"} {
		if err := CheckFQDN(f); err != nil {
			t.Errorf("CheckFQDN(%q): %v", f, err)
		}
	}
	for _, f := range []string{"", ".", "a..b", "-a.io", "a-.io", "a b.io", "ébpf.io", strings.Repeat("a", 64) + ".io", strings.Repeat("a.", 127) + "ab"} {
		if err := CheckFQDN(f); err == nil {
			t.Errorf("CheckFQDN(%q) accepted", f)
		}
	}
}

// FuzzActionTargets: whatever ParseActionURL accepts is an http(s) URL with
// a host and no user information; whatever CheckFQDN accepts is made of
// letters, digits, '-', '_' and dots, at most 253 bytes without the root.
func FuzzActionTargets(f *testing.F) {
	for _, s := range []string{"http://ebpf.io", "https://[::1]:1/x", "ftp://x", "http://u@h", "a..b", "ebpf.io."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if u, err := ParseActionURL(s); err == nil {
			sc := strings.ToLower(u.Scheme)
			if sc != "http" && sc != "https" || u.Hostname() == "" || u.User != nil {
				t.Fatalf("ParseActionURL(%q) accepted %#v", s, u)
			}
		}
		if err := CheckFQDN(s); err == nil {
			name := strings.TrimSuffix(s, ".")
			if name == "" || len(name) > 253 || strings.Contains(name, "..") || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
				t.Fatalf("CheckFQDN(%q) accepted", s)
			}
		}
	})
}
