package tracingpolicy

import "strings"

// operatorAliases are the other spellings Tetragon's parser accepts for
// an operator (its SelectorOp: "gt", "eq", "prefix", "saddr", "Sport",
// "family", ...), mapped to the names this package uses. Its examples use
// them (tcp-accept.yaml has "family" and "state"). In and NotIn, which
// only the process filters take, have no other spelling there either.
var operatorAliases = map[string]Operator{
	"gt": OpGreaterThan, "lt": OpLessThan, "eq": OpEqual, "neq": OpNotEqual,
	"prefix": OpPrefix, "notprefix": OpNotPrefix, "postfix": OpPostfix, "notpostfix": OpNotPostfix,
	"mask":  OpMask,
	"saddr": OpSAddr, "Saddr": OpSAddr, "daddr": OpDAddr, "Daddr": OpDAddr,
	"notsaddr": OpNotSAddr, "NotSaddr": OpNotSAddr, "notdaddr": OpNotDAddr, "NotDaddr": OpNotDAddr,
	"sport": OpSPort, "Sport": OpSPort, "dport": OpDPort, "Dport": OpDPort,
	"notsport": OpNotSPort, "NotSport": OpNotSPort, "notdport": OpNotDPort, "NotDport": OpNotDPort,
	"protocol": OpProtocol, "family": OpFamily, "state": OpState,
}

// canonicalOperator returns the name this package uses for one of
// Tetragon's other spellings of an operator, and s itself otherwise.
func canonicalOperator(s string) string {
	if op, ok := operatorAliases[s]; ok {
		return string(op)
	}
	return s
}

// actionNames are Tetragon's action names: its parser compares them
// without regard to case (sys_write_sigkill.yaml says "SigKill").
var actionNames = []Action{
	ActionPost, ActionNoPost, ActionSigkill, ActionSignal, ActionOverride,
	"FollowFD", "UnfollowFD", "CopyFD", "GetUrl", "DnsLookup", "TrackSock", "UntrackSock",
	"NotifyEnforcer", "CleanupEnforcerNotification", "Set", "Regs", "NotifyKiller",
}

// canonicalAction returns the name of the action s spells in any case,
// and s itself when it names none.
func canonicalAction(s string) string {
	for _, a := range actionNames {
		if strings.EqualFold(s, string(a)) {
			return string(a)
		}
	}
	return s
}
