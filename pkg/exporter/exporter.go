// Package exporter writes every event to a file as a JSON line, the same
// JSON as `tetra getevents -o json`, for log shippers: Tetragon's
// --export-filename, with size-based rotation, allow and deny filters and a
// rate limit.
//
// The exporter is an event-bus subscriber with a bounded queue of its own,
// so a slow or stalled disk costs exported events (counted), never the
// agent's pipeline or its GetEvents clients.
package exporter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/encoder"
	"github.com/tetragon-lite/tetragon/pkg/eventbus"
	"github.com/tetragon-lite/tetragon/pkg/filters"
)

// DefaultReportEvery is how often dropped events are reported in the file
// when a rate limit holds some back: Tetragon's minute.
const DefaultReportEvery = time.Minute

// Options configure an exporter.
type Options struct {
	// Filename is the file written; rotated files go next to it.
	Filename string
	// MaxSizeMB is the size at which the file is rotated, in MiB.
	MaxSizeMB int
	// MaxBackups is how many rotated files are kept; 0 keeps all of them.
	MaxBackups int
	// Compress gzips rotated files.
	Compress bool
	// Allow and Deny are GetEvents filters: an event is written when no
	// allow filter is given or one matches, and no deny filter matches.
	Allow, Deny []*api.Filter
	// RateLimit is the most events written per minute; <= 0 is no limit.
	RateLimit int
	// QueueSize is how many events wait for the disk before new ones are
	// dropped.
	QueueSize int
	// NodeName goes into the rate_limit_info lines.
	NodeName string
	// ReportEvery is how often a rate_limit_info line reports the events
	// the rate limit dropped (0: DefaultReportEvery).
	ReportEvery time.Duration
}

// Stats are the exporter's counters.
type Stats struct {
	// Exported events and the bytes written, rate_limit_info lines included.
	Exported, Bytes uint64
	// LastExported is when the last event was written (zero: none yet).
	LastExported time.Time
	// QueueDropped are the events lost to a full queue: the disk was too slow.
	QueueDropped uint64
	// RateLimited are the events the rate limit dropped.
	RateLimited uint64
	// WriteErrors are the events that could not be written.
	WriteErrors uint64
}

// Exporter is one export file. Build it with New, run Run in a goroutine;
// it ends when the bus closes, once the queue is written.
type Exporter struct {
	log   zerolog.Logger
	opts  Options
	sub   *eventbus.Subscription
	match *filters.Matcher
	file  *lineFile
	enc   *encoder.JSON
	// batch holds the lines of the events taken off the queue since the
	// last write (pending of them): one write for all the events waiting,
	// not one per event, at rates where the system call was most of an
	// event's cost
	batch   bytes.Buffer
	pending uint64
	limiter *rate.Limiter
	done    chan struct{}

	exported, bytes, rateLimited, writeErrors atomic.Uint64
	last                                      atomic.Int64
	// pendingDrops: rate-limited events not yet reported in the file;
	// only Run's goroutine touches it
	pendingDrops uint64
	lastErrLog   time.Time
	// abandoned: the agent stopped waiting for the file (Abandon); what is
	// still queued is dropped, and the file is neither written nor opened
	// again (a write stuck on a FIFO or a hung disk may still return)
	abandoned atomic.Bool
}

// Abandon makes Run drop what is still queued instead of writing it, and
// close the file: the agent is stopping and gave up waiting for a write
// that does not return. Safe to call from any goroutine.
func (e *Exporter) Abandon() { e.abandoned.Store(true) }

// New checks the options, opens nothing yet (the file is created on the
// first event) and subscribes to bus, so no event published from now on is
// missed.
func New(bus *eventbus.Bus, opts Options, log zerolog.Logger) (*Exporter, error) {
	if opts.MaxSizeMB <= 0 {
		return nil, fmt.Errorf("export file max size %d MiB: must be positive", opts.MaxSizeMB)
	}
	if opts.MaxBackups < 0 {
		return nil, fmt.Errorf("export file max backups %d: must be 0 (keep all) or more", opts.MaxBackups)
	}
	if opts.QueueSize <= 0 {
		return nil, fmt.Errorf("export queue size %d: must be positive", opts.QueueSize)
	}
	if opts.ReportEvery <= 0 {
		opts.ReportEvery = DefaultReportEvery
	}
	m, err := filters.New(opts.Allow, opts.Deny)
	if err != nil {
		return nil, fmt.Errorf("export filters: %w", err)
	}
	if err := checkWritable(opts.Filename); err != nil {
		return nil, err
	}
	e := &Exporter{
		log:   log.With().Str("component", "exporter").Logger(),
		opts:  opts,
		match: m,
		done:  make(chan struct{}),
	}
	e.file = &lineFile{
		name: opts.Filename,
		lj: &lumberjack.Logger{
			Filename:   opts.Filename,
			MaxSize:    opts.MaxSizeMB,
			MaxBackups: opts.MaxBackups,
			Compress:   opts.Compress,
		},
		log: e.log,
	}
	// processes are shared by the events about them and never modified
	// (package process): their JSON is built once
	e.enc = encoder.NewJSON(&e.batch)
	e.enc.CacheProcesses()
	if opts.RateLimit > 0 {
		// a minute's worth may come at once, as in Tetragon
		e.limiter = rate.NewLimiter(rate.Limit(float64(opts.RateLimit)/60), opts.RateLimit)
	}
	// Filters run in Run's goroutine, not in the bus: a costly regex slows
	// the export only.
	e.sub = bus.SubscribeBatches("export", opts.QueueSize, nil)
	return e, nil
}

// checkWritable fails at startup, rather than at the first event, for a
// file that cannot be written: a directory, or a directory we cannot write
// to. It opens nothing: the file may be a FIFO nobody reads yet.
func checkWritable(name string) error {
	if name == "" {
		return errors.New("export filename is empty")
	}
	if st, err := os.Stat(name); err == nil && st.IsDir() {
		return fmt.Errorf("export file %s is a directory", name)
	}
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the export directory: %w", err)
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return fmt.Errorf("export directory %s: %w", dir, &fs.PathError{Op: "write", Path: dir, Err: err})
	}
	return nil
}

// Run writes events until the bus closes and the queue is written, then
// reports what the rate limit still held and closes the file.
func (e *Exporter) Run() {
	defer close(e.done)
	tick := time.NewTicker(e.opts.ReportEvery)
	defer tick.Stop()
	for {
		select {
		case evs, ok := <-e.sub.Batches():
			if !ok {
				e.flush()
				e.reportDrops()
				if err := e.file.Close(); err != nil {
					e.log.Warn().Err(err).Msg("Closing the export file")
				}
				return
			}
			for _, ev := range evs {
				e.handle(ev.GetEventsResponse)
				if e.batch.Len() >= batchBytes {
					e.flush()
				}
			}
			e.sub.Done(len(evs))
			// write when no event is waiting: a line never waits for the
			// next event
			if len(e.sub.Batches()) == 0 {
				e.flush()
			}
		case <-tick.C:
			e.flush()
			e.reportDrops()
		}
	}
}

// Done is closed when Run has returned.
func (e *Exporter) Done() <-chan struct{} { return e.done }

func (e *Exporter) handle(ev *api.GetEventsResponse) {
	if e.abandoned.Load() {
		e.writeErrors.Add(1)
		return
	}
	if !e.match.Match(ev) {
		return
	}
	if e.limiter != nil && !e.limiter.Allow() {
		e.rateLimited.Add(1)
		e.pendingDrops++
		return
	}
	mark := e.batch.Len()
	if err := e.enc.Encode(ev); err != nil {
		e.batch.Truncate(mark)
		e.writeFailed(err, 1)
		return
	}
	e.pending++
}

// batchBytes is the most written at once. A batch is written by one Write,
// which lumberjack never splits across a rotation: far below the smallest
// rotation size (1 MiB).
const batchBytes = 64 << 10

// flush writes the batch.
func (e *Exporter) flush() {
	if e.pending == 0 {
		return
	}
	n := e.pending
	e.pending = 0
	defer e.batch.Reset()
	if e.abandoned.Load() {
		e.writeErrors.Add(n)
		return
	}
	if _, err := (countingWriter{e}).Write(e.batch.Bytes()); err != nil {
		e.writeFailed(err, n)
		return
	}
	e.exported.Add(n)
	e.last.Store(time.Now().UnixNano())
}

// reportDrops writes Tetragon's rate_limit_info event for the events the
// rate limit dropped since the last report.
func (e *Exporter) reportDrops() {
	if e.pendingDrops == 0 || e.abandoned.Load() {
		return
	}
	ts, err := protojson.Marshal(timestamppb.Now())
	if err != nil {
		e.writeFailed(err, 1)
		return
	}
	var line rateLimitLine
	line.Info.Dropped = e.pendingDrops
	line.NodeName = e.opts.NodeName
	line.Time = ts
	b, err := json.Marshal(line)
	if err != nil {
		e.writeFailed(err, 1)
		return
	}
	if _, err := (countingWriter{e}).Write(append(b, '\n')); err != nil {
		e.writeFailed(err, 1)
		return
	}
	e.pendingDrops = 0
}

// rateLimitLine is Tetragon's RateLimitInfo event as protojson writes it
// (a uint64 is a string there).
type rateLimitLine struct {
	Info struct {
		Dropped uint64 `json:"number_of_dropped_process_events,string"`
	} `json:"rate_limit_info"`
	NodeName string          `json:"node_name,omitempty"`
	Time     json.RawMessage `json:"time"`
}

// writeFailed counts the events that could not be written (a
// rate_limit_info line counts as one) and logs err.
func (e *Exporter) writeFailed(err error, events uint64) {
	n := e.writeErrors.Add(events)
	// a full disk fails every write: say so once a minute, not per event
	if now := time.Now(); n == 1 || now.Sub(e.lastErrLog) >= time.Minute {
		e.lastErrLog = now
		e.log.Warn().Err(err).Uint64("failed", n).Str("file", e.opts.Filename).Msg("Events are not exported")
	}
}

// Stats reads the counters; safe for concurrent use.
func (e *Exporter) Stats() Stats {
	s := Stats{
		Exported:     e.exported.Load(),
		Bytes:        e.bytes.Load(),
		QueueDropped: e.sub.Dropped(),
		RateLimited:  e.rateLimited.Load(),
		WriteErrors:  e.writeErrors.Load(),
	}
	if ns := e.last.Load(); ns != 0 {
		s.LastExported = time.Unix(0, ns)
	}
	return s
}

// countingWriter writes to the exporter's file and counts the bytes. The
// encoder writes each line with one Write, which lumberjack never splits
// across a rotation, and lineFile writes whole or not at all.
type countingWriter struct{ e *Exporter }

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.e.file.Write(p)
	w.e.bytes.Add(uint64(n))
	return n, err
}
