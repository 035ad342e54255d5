package hookevent

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/tetragon-lite/tetragon/pkg/api"
)

// dnsBits packs a dns argument's integer as bpf/lib/dns.h does.
func dnsBits(qtype, qclass, id uint16, response, parsed bool) int64 {
	v := uint64(qtype) | uint64(qclass)<<dnsClassShift | uint64(id)<<dnsIDShift
	if response {
		v |= dnsResponse
	}
	if parsed {
		v |= dnsParsed
	}
	return int64(v)
}

// The kernel's packed integer and name decode into KprobeDns; without the
// parsed bit no name, type or class is reported, whatever the slot holds.
func TestDnsArg(t *testing.T) {
	for _, tc := range []struct {
		name string
		str  string
		v    int64
		want *api.KprobeDns
	}{
		{"query", "www.example.com", dnsBits(1, 1, 0x1234, false, true),
			&api.KprobeDns{QueryName: "www.example.com", QueryType: 1, QueryTypeStr: "A", QueryClass: 1, TxId: 0x1234, Parsed: true}},
		{"response", "example.net", dnsBits(28, 1, 0xffff, true, true),
			&api.KprobeDns{QueryName: "example.net", QueryType: 28, QueryTypeStr: "AAAA", QueryClass: 1, TxId: 0xffff, Response: true, Parsed: true}},
		{"unnamed type", "x", dnsBits(65280, 3, 0, false, true),
			&api.KprobeDns{QueryName: "x", QueryType: 65280, QueryTypeStr: "TYPE65280", QueryClass: 3, Parsed: true}},
		{"root", "", dnsBits(2, 1, 9, false, true),
			&api.KprobeDns{QueryType: 2, QueryTypeStr: "NS", QueryClass: 1, TxId: 9, Parsed: true}},
		{"not parsed", "stale", dnsBits(1, 1, 5, true, false), &api.KprobeDns{TxId: 5, Response: true}},
		{"nothing", "", 0, &api.KprobeDns{}},
		{"bytes that are no UTF-8", "a\xffb", dnsBits(1, 1, 0, false, true),
			&api.KprobeDns{QueryName: `a\xffb`, QueryType: 1, QueryTypeStr: "A", QueryClass: 1, Parsed: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := dnsArg(tc.str, tc.v).GetDnsArg()
			if !proto.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// Whatever a record holds, the argument marshals (valid UTF-8), reports a
// name only when parsed, and its 16-bit fields stay 16-bit.
func FuzzDnsArg(f *testing.F) {
	f.Add("www.example.com", dnsBits(1, 1, 0x1234, false, true))
	f.Add("a\xff", int64(-1))
	f.Add("", int64(0))
	f.Fuzz(func(t *testing.T, name string, v int64) {
		a := dnsArg(name, v)
		if _, err := proto.Marshal(a); err != nil {
			t.Fatalf("marshal: %v", err)
		}
		d := a.GetDnsArg()
		if !utf8.ValidString(d.GetQueryName()) {
			t.Fatalf("name %q is not UTF-8", d.GetQueryName())
		}
		if d.GetTxId() > 0xffff || d.GetQueryType() > 0xffff || d.GetQueryClass() > 0xffff {
			t.Fatalf("field wider than 16 bits: %v", d)
		}
		if !d.GetParsed() && (d.GetQueryName() != "" || d.GetQueryType() != 0 || d.GetQueryTypeStr() != "" || d.GetQueryClass() != 0) {
			t.Fatalf("unparsed argument reports a question: %v", d)
		}
		if d.GetParsed() && (d.GetQueryTypeStr() == "" || strings.Contains(d.GetQueryTypeStr(), " ")) {
			t.Fatalf("type %d has mnemonic %q", d.GetQueryType(), d.GetQueryTypeStr())
		}
	})
}
