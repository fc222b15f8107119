//go:build linux

package attack

import (
	"context"
	"testing"

	"github.com/ebpfjail/ebpfjail/internal/rules"
)

// RuleFor adds the identity attempts' deny to Rule: it must keep every
// verdict Rule gives, the max_tx_bytes object included (a trailing `&&`
// would turn that object into plain true and the upgrade attempt would
// prove nothing).
func TestRuleForKeepsRulesVerdictsAndDeniesTheBlockedProgram(t *testing.T) {
	const attacker, blocked = "/tmp/a/ebpfjail", "/tmp/a/ebpfjail-denied"
	src := RuleFor(Spec{Attacker: attacker, BlockedExe: blocked})
	js, err := rules.NewJS(src, "attack rule", rules.JSOptions{})
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	defer js.Close()
	for _, c := range []struct {
		name  string
		req   rules.Request
		allow bool
		limit int64
	}{
		{"decoy", rules.Request{Host: Decoy, Port: 443, Path: "/", Proc: rules.Proc{Exe: attacker}}, true, 0},
		{"upgrade path keeps its limit", rules.Request{Host: Decoy, Port: 80, Path: UpgradePath, Proc: rules.Proc{Exe: attacker}}, true, UpgradeLimit},
		{"tunnel port", rules.Request{Host: Decoy, Port: TunnelPort, Path: "/", Proc: rules.Proc{Exe: attacker}}, false, 0},
		{"local name", rules.Request{Host: LocalName, Port: 80, Path: "/", Proc: rules.Proc{Exe: attacker}}, true, 0},
		{"forbidden", rules.Request{Host: Forbidden, Port: 443, Path: "/", Proc: rules.Proc{Exe: attacker}}, false, 0},
		{"blocked program", rules.Request{Host: Decoy, Port: 443, Path: "/", Proc: rules.Proc{Exe: blocked}}, false, 0},
		{"blocked program, upgrade path", rules.Request{Host: Decoy, Port: 80, Path: UpgradePath, Proc: rules.Proc{Exe: blocked}}, false, 0},
	} {
		v := js.Evaluate(context.Background(), &c.req)
		if v.Allow != c.allow || (c.allow && v.MaxTxBytes != c.limit) {
			t.Errorf("%s: got allow=%v max_tx_bytes=%d (%s), want allow=%v max_tx_bytes=%d", c.name, v.Allow, v.MaxTxBytes, v.Reason, c.allow, c.limit)
		}
	}
}
