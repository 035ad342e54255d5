package testutil

import (
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSServer is a DNS server on 127.0.0.1 (UDP) for tests: it records the
// names it is asked and answers every A query with 127.0.0.1, others with
// no records.
type DNSServer struct {
	// Addr is its host:port.
	Addr string

	mu    sync.Mutex
	names []string
	asked chan string
}

// StartDNSServer starts a DNSServer that stops with the test.
func StartDNSServer(t testing.TB) *DNSServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("starting the test DNS server: %v", err)
	}
	s := &DNSServer{Addr: conn.LocalAddr().String(), asked: make(chan string, 64)}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply, ok := s.answer(buf[:n]); ok {
				_, _ = conn.WriteTo(reply, from)
			}
		}
	}()
	return s
}

// Names are the names asked so far, without the trailing dot.
func (s *DNSServer) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.names...)
}

// Asked receives each name asked (without the trailing dot), as it is.
func (s *DNSServer) Asked() <-chan string { return s.asked }

func (s *DNSServer) answer(pkt []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(pkt)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.TrimSuffix(q.Name.String(), ".")
	s.mu.Lock()
	s.names = append(s.names, name)
	s.mu.Unlock()
	select {
	case s.asked <- name:
	default:
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true})
	b.EnableCompression()
	if b.StartQuestions() != nil || b.Question(q) != nil || b.StartAnswers() != nil {
		return nil, false
	}
	if q.Type == dnsmessage.TypeA {
		rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 1}
		if b.AResource(rh, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}}) != nil {
			return nil, false
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
