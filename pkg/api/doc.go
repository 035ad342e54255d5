// Package api holds the agent's gRPC API, generated from tetragon.proto by
// scripts/generate.sh.
package api
