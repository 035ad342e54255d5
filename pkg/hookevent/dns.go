package hookevent

import (
	"strconv"

	"github.com/tetragon-lite/tetragon/pkg/api"
	"github.com/tetragon-lite/tetragon/pkg/escape"
)

// The bits of a dns argument's integer, as bpf/lib/dns.h packs the
// question's type and class and the header's id and QR bit.
const (
	dnsTypeMask   = 0xffff
	dnsClassShift = 16
	dnsIDShift    = 32
	dnsResponse   = 1 << 48
	dnsParsed     = 1 << 49
)

// dnsTypes names the query types in use (IANA's DNS parameters registry).
var dnsTypes = map[uint32]string{
	1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX",
	16: "TXT", 28: "AAAA", 29: "LOC", 33: "SRV", 35: "NAPTR", 39: "DNAME",
	43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 50: "NSEC3", 52: "TLSA",
	64: "SVCB", 65: "HTTPS", 99: "SPF", 251: "IXFR", 252: "AXFR", 255: "ANY",
	257: "CAA",
}

// dnsTypeName returns a query type's mnemonic; a type without one is
// written as RFC 3597 writes unknown types ("TYPE65280").
func dnsTypeName(t uint32) string {
	if n, ok := dnsTypes[t]; ok {
		return n
	}
	return "TYPE" + strconv.FormatUint(uint64(t), 10)
}

// dnsArg decodes a dns argument: the question's name the kernel wrote as
// text into the string slot, and the packed integer. A payload that held
// no well-formed question reports only parsed false (and the QR bit and
// id, when there was a header with a question count).
func dnsArg(name string, v int64) *api.KprobeArgument {
	u := uint64(v)
	d := &api.KprobeDns{
		TxId:     uint32(u>>dnsIDShift) & 0xffff,
		Response: u&dnsResponse != 0,
		Parsed:   u&dnsParsed != 0,
	}
	if d.Parsed {
		d.QueryName = escape.String(name)
		d.QueryType = uint32(u) & dnsTypeMask
		d.QueryTypeStr = dnsTypeName(d.QueryType)
		d.QueryClass = uint32(u>>dnsClassShift) & 0xffff
	}
	return &api.KprobeArgument{Arg: &api.KprobeArgument_DnsArg{DnsArg: d}}
}
