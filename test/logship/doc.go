// Package logship tests the log-shipper example of docs/many-hosts.md
// (docs/examples/otelcol.yaml): the real agent writes its events to
// --export-filename, a real OpenTelemetry Collector (scripts/otelcol, built
// once per machine by scripts/otelcol/build.sh) reads that file with the
// example configuration as committed, and the test reads what the collector
// exported.
//
// It runs as root on the host lane only: the qemu lanes' guests have no Go
// toolchain to build the collector with.
package logship
