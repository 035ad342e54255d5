// Package escape turns the bytes of kernel strings (paths, arguments) into
// valid UTF-8 for protobuf string fields without losing any of them.
//
// Tetragon replaces bytes that are not UTF-8 with U+FFFD, which loses them.
// Here each such byte becomes \xHH (two lower-case hex digits), and a
// backslash that could otherwise be read as the start of an escape (one
// followed by a backslash, by 'x' or by an escaped byte) is doubled. Valid
// UTF-8 without such a backslash is left exactly as it is, so ordinary
// strings read the same as in Tetragon. Unescape gives the original bytes
// back. docs/strings.md describes the format for readers of the events.
package escape

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// Bytes returns b as valid UTF-8, escaped as the package describes.
func Bytes(b []byte) string { return String(string(b)) }

// String returns s as valid UTF-8, escaped as the package describes.
func String(s string) string {
	if !needsEscape(s) {
		return s
	}
	var out strings.Builder
	out.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' {
			out.WriteByte('\\')
			if i+1 < len(s) && ambiguousAfterBackslash(s[i+1:]) {
				out.WriteByte('\\')
			}
			i++
			continue
		}
		if c < utf8.RuneSelf {
			out.WriteByte(c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			out.WriteString(`\x`)
			out.WriteByte(hexDigits[c>>4])
			out.WriteByte(hexDigits[c&0xf])
			i++
			continue
		}
		out.WriteString(s[i : i+n])
		i += n
	}
	return out.String()
}

// needsEscape reports whether s holds a byte that is not UTF-8 or a
// backslash that would be misread.
func needsEscape(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for i := strings.IndexByte(s, '\\'); i >= 0; {
		if i+1 < len(s) && ambiguousAfterBackslash(s[i+1:]) {
			return true
		}
		j := strings.IndexByte(s[i+1:], '\\')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// ambiguousAfterBackslash reports whether a backslash followed by rest
// would be read as an escape: rest starts with a backslash, an 'x', or a
// byte that is itself escaped (whose escape starts with a backslash).
func ambiguousAfterBackslash(rest string) bool {
	c := rest[0]
	if c == '\\' || c == 'x' {
		return true
	}
	if c < utf8.RuneSelf {
		return false
	}
	r, n := utf8.DecodeRuneInString(rest)
	return r == utf8.RuneError && n == 1
}

// Unescape returns the bytes String escaped. \\ is a backslash, \xHH the
// byte HH; any other backslash stands for itself.
func Unescape(s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("unescaping %q: not UTF-8", s)
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			out = append(out, c)
			continue
		}
		switch s[i+1] {
		case '\\':
			out = append(out, '\\')
			i++
		case 'x':
			hi, okh := unhex(s, i+2)
			lo, okl := unhex(s, i+3)
			if !okh || !okl {
				return nil, fmt.Errorf("unescaping %q: \\x at offset %d without two hex digits", s, i)
			}
			out = append(out, hi<<4|lo)
			i += 3
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

func unhex(s string, i int) (byte, bool) {
	if i >= len(s) {
		return 0, false
	}
	switch c := s[i]; {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
