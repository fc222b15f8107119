package replay

import (
	"strings"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// ruleReasons are the reasons an engine gives (package rules), and the
// wrappers that keep the rule's answer in the record: --audit's and
// --ask's.
var ruleReasons = []string{
	"rule", "Script execution timed out", "program evaluation failed", "no rule", "allow all",
}

// Recorded is the rule's verdict on a request or lookup event, and whether
// a rule decided it at all (see the package documentation for --audit,
// --ask and max_tx_bytes).
func Recorded(e event.Event) (allow, ruled bool) {
	r := e.Reason
	switch {
	case r == "audit":
		// An audit with no rule: nothing but what happened to compare with.
		return true, true
	case strings.HasPrefix(r, "audit: the rule allows"):
		return true, true
	case strings.HasPrefix(r, "audit: the rule would deny"):
		return false, true
	case strings.HasPrefix(r, "person: "), strings.HasPrefix(r, "timeout: "), strings.Contains(r, "(not asked: "):
		// --ask holds only what the rule denied.
		return false, true
	case strings.HasPrefix(r, "max_tx_bytes"):
		// The rule allowed it, with a limit the request went over.
		return true, true
	}
	if e.Verdict == event.Allow {
		// Forwarded: the rule allowed it, whatever happened upstream after.
		return true, true
	}
	if e.Verdict != event.Deny {
		return false, false
	}
	if e.Type == event.TypeDNS {
		// The shim refuses a name only on the rule's word.
		return false, true
	}
	for _, p := range ruleReasons {
		if r == p || strings.HasPrefix(r, p+":") || strings.HasPrefix(r, p+" ") {
			return false, true
		}
	}
	// Refused before the rule was asked.
	return false, false
}
