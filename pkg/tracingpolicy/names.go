package tracingpolicy

import (
	"fmt"
	"strings"
)

// Kubernetes name rules (k8s.io/apimachinery validation), restated.

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || c >= 'A' && c <= 'Z' }

// checkDNSLabel returns why s is not a DNS-1123 label, or "".
func checkDNSLabel(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > 63 {
		return "must be at most 63 characters"
	}
	for i := 0; i < len(s); i++ {
		if !isLowerAlnum(s[i]) && s[i] != '-' {
			return "must consist of lower case letters, digits and '-'"
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return "must start and end with a lower case letter or digit"
	}
	return ""
}

// checkDNSSubdomain returns why s is not a DNS-1123 subdomain (the rule for
// Kubernetes object names), or "".
func checkDNSSubdomain(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > 253 {
		return "must be at most 253 characters"
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return "must not contain empty dot-separated parts"
		}
		for i := 0; i < len(label); i++ {
			if !isLowerAlnum(label[i]) && label[i] != '-' {
				return "must consist of lower case letters, digits, '-' and '.'"
			}
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "each dot-separated part must start and end with a lower case letter or digit"
		}
	}
	return ""
}

// checkNamePart checks the name part of a qualified name, or a label value.
func checkNamePart(s string) string {
	if len(s) > 63 {
		return "must be at most 63 characters"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return "must consist of letters, digits, '-', '_' and '.'"
		}
	}
	if s != "" && (!isAlnum(s[0]) || !isAlnum(s[len(s)-1])) {
		return "must start and end with a letter or digit"
	}
	return ""
}

// checkQualifiedName returns why s is not a label or annotation key
// ([prefix/]name), or "".
func checkQualifiedName(s string) string {
	prefix, name, hasPrefix := strings.Cut(s, "/")
	if !hasPrefix {
		name = prefix
	} else if msg := checkDNSSubdomain(prefix); msg != "" {
		return "prefix " + msg
	}
	if name == "" {
		return "name part must not be empty"
	}
	return checkNamePart(name)
}

// checkLabelValue returns why s is not a label value, or "".
func checkLabelValue(s string) string { return checkNamePart(s) }

// capabilityNumber returns the number of a capability name (CAP_SYS_ADMIN is
// 21), matching case-insensitively.
func capabilityNumber(name string) (int, bool) {
	caps := [...]string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
		"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
		"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
		"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
		"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
		"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
		"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
	}
	for i, c := range caps {
		if strings.EqualFold(c, name) {
			return i, true
		}
	}
	return 0, false
}

// maxSignal is the highest signal number (SIGRTMAX on Linux).
const maxSignal = 64

func signalRange() string { return fmt.Sprintf("1..%d", maxSignal) }
