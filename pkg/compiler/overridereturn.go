package compiler

// hasMatchReturnArgs reports whether a selector of d filters on the
// return value: an Override hook that reports at return cannot honour
// it, as it decides at entry.
func hasMatchReturnArgs(d Decl) bool {
	for _, s := range d.Selectors {
		if len(s.MatchReturnArgs) > 0 {
			return true
		}
	}
	return false
}
