package escape

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"/usr/bin/cat", "/usr/bin/cat"},
		{"café \uFFFD ü", "café \uFFFD ü"},
		{`C:\dir\file`, `C:\dir\file`},
		{`a\`, `a\`},
		{"caf\xe9", `caf\xe9`},
		{"\xff\xfe", `\xff\xfe`},
		{"\xe2\x82", `\xe2\x82`}, // a cut-off three-byte rune
		{`\x41`, `\\x41`},
		{`a\\b`, `a\\\b`},
		{"\\\xff", `\\\xff`},
		{"\\\xc3\xa9", "\\\xc3\xa9"},
	} {
		got := String(c.in)
		if got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
		back, err := Unescape(got)
		if err != nil || string(back) != c.in {
			t.Errorf("Unescape(%q) = %q, %v: want %q", got, back, err, c.in)
		}
	}
}

func TestUnescapeRefuses(t *testing.T) {
	for _, in := range []string{`\x`, `\x4`, `\xg0`, `\xAB`, "\xff"} {
		if b, err := Unescape(in); err == nil {
			t.Errorf("Unescape(%q) = %q, want an error", in, b)
		}
	}
}

// FuzzRoundTrip checks that every byte string escapes to valid UTF-8 that
// unescapes to the same bytes, and that Unescape never panics on any input.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "/bin/sh", "caf\xe9", `\x41`, "\\\xff", `a\\`, "\xe2\x82\xac"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := Bytes(b)
		if !utf8.ValidString(s) {
			t.Fatalf("Bytes(%q) = %q: not UTF-8", b, s)
		}
		back, err := Unescape(s)
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("Unescape(Bytes(%q)) = %q, %v", b, back, err)
		}
		if utf8.Valid(b) && !bytes.ContainsRune(b, '\\') && s != string(b) {
			t.Fatalf("valid %q without a backslash changed to %q", b, s)
		}
		// any text: an error or bytes, never a panic
		Unescape(string(b))
	})
}
