//go:build 386 || amd64

package bpf

import (
	"crypto/sha256"
	"encoding/hex"
)

// ProcessDigest names the base sensor's object (process.c) as this binary
// embeds it: an agent adopts a pinned base sensor only when it runs the
// very same object, whose records it then decodes.
func ProcessDigest() string {
	sum := sha256.Sum256(_ProcessBytes)
	return hex.EncodeToString(sum[:8])
}
