//go:build linux

package attack

import (
	"strconv"
	"strings"
	"testing"
)

// The rule is a constant string: it must name the constants the proxy
// attempts and the canaries rely on.
func TestRuleNamesTheProxyAttemptsConstants(t *testing.T) {
	for _, want := range []string{
		"r.port !== " + strconv.Itoa(TunnelPort),
		"r.host === '" + LocalName + "'",
		"r.path !== '" + UpgradePath + "'",
		"max_tx_bytes: " + strconv.Itoa(UpgradeLimit),
	} {
		if !strings.Contains(Rule, want) {
			t.Errorf("Rule %q: want it to contain %q", Rule, want)
		}
	}
}
