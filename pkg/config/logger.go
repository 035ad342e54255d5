package config

import (
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
)

// NewLogger returns a logger writing to w at the configured level, as "text"
// (human-readable) or "json" (one object per line).
func (c Config) NewLogger(w io.Writer) (zerolog.Logger, error) {
	level, format := c.LogLevel, c.LogFormat
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("log-level %q: want trace, debug, info, warn or error", level)
	}
	switch format {
	case "json":
	case "text":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: true}
	default:
		return zerolog.Logger{}, fmt.Errorf("log-format %q: want text or json", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
