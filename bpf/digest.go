//go:build 386 || amd64

package bpf

import (
	"crypto/sha256"
	"encoding/hex"
)

// ProcessDigest names the base sensor's object (process.c) as this binary
// embeds it: an agent adopts a pinned base sensor only when it runs the
// very same object, whose records it then decodes.
func ProcessDigest() string { return digest(_ProcessBytes) }

// DispatchDigest names the syscall dispatcher's object (dispatch.c) the
// same way: an agent adopts a pinned dispatcher, whose maps it then
// writes, only when it runs the very same object.
func DispatchDigest() string { return digest(_DispatchBytes) }

func digest(object []byte) string {
	sum := sha256.Sum256(object)
	return hex.EncodeToString(sum[:8])
}

// HookDigest names the attach points' object (hook.c) the same way.
func HookDigest() string { return digest(_HookBytes) }
