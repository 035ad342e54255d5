// Command otelcol-tetragon is the smallest OpenTelemetry Collector that runs
// the example configuration in docs/examples/otelcol.yaml: the filelog
// receiver (which reads the agent's --export-filename JSON lines) and the
// debug exporter (which prints what it received). It is built, in this
// module of its own so the project's go.mod gains none of the collector's
// dependencies, by build.sh, for test/logship; a fleet would run its usual
// collector distribution with the same receiver configuration.
package main

import (
	"fmt"
	"os"

	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/filelogreceiver"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

func factories() (otelcol.Factories, error) {
	var f otelcol.Factories
	var err error
	if f.Receivers, err = otelcol.MakeFactoryMap(filelogreceiver.NewFactory()); err != nil {
		return f, fmt.Errorf("receivers: %w", err)
	}
	if f.Exporters, err = otelcol.MakeFactoryMap(debugexporter.NewFactory()); err != nil {
		return f, fmt.Errorf("exporters: %w", err)
	}
	// the collector's own logs and metrics (service::telemetry)
	f.Telemetry = otelconftelemetry.NewFactory()
	return f, nil
}

func main() {
	cmd := otelcol.NewCommand(otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol-tetragon",
			Description: "OpenTelemetry Collector with the filelog receiver and the debug exporter",
			Version:     "v0.165.0",
		},
		Factories: factories,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{fileprovider.NewFactory(), envprovider.NewFactory()},
			},
		},
	})
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
