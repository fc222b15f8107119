//go:build linux

package attack

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// Names the attack rule knows: Decoy is the only name it allows; Forbidden
// is what the fronting attempts really ask for.
const (
	Decoy     = "decoy.attack.test"
	Forbidden = "forbidden.attack.test"
	// Rule is the jail's JavaScript rule for the run: Decoy but its
	// TunnelPort, and LocalName; UpgradePath is limited to UpgradeLimit
	// bytes (attempts_proxy.go).
	Rule = "(r.host === '" + Decoy + "' && r.port !== 9 || r.host === '" + LocalName + "') && " +
		"(r.path !== '" + UpgradePath + "' || {allow: {max_tx_bytes: 1000}})"
)

// Spec tells the jailed side where to aim. It travels as one JSON argument.
type Spec struct {
	// V4 and V6 are the target's addresses (a canary, or a test host).
	V4 netip.Addr `json:"v4"`
	V6 netip.Addr `json:"v6"`
	// Ports on the target: HTTP and HTTPS serve Decoy; UDP and QUIC
	// record datagrams; DNS is the DNS port of both addresses (53: only
	// port 53 is DNS to the jail).
	HTTP  uint16 `json:"http"`
	HTTPS uint16 `json:"https"`
	UDP   uint16 `json:"udp"`
	QUIC  uint16 `json:"quic"`
	DNS   uint16 `json:"dns"`
	// CAKey is ebpfjail's CA private key, which the jail must not read.
	CAKey string `json:"ca_key"`
	// Setuid is a setuid-root copy of id(1), or "" when there is none.
	Setuid string `json:"setuid,omitempty"`
	// Resolver and Engine are unix sockets of each kind that the jail
	// denies: a resolver daemon's and a container engine's.
	Resolver []string `json:"resolver"`
	Engine   []string `json:"engine"`
	// EngineStandIn is the engine socket of Engine that a canary records
	// (the attempts that spell its path differently aim at it).
	EngineStandIn string `json:"engine_stand_in,omitempty"`
	// StateDir and PinDir are ebpfjail's own records and BPF pins.
	StateDir string `json:"state_dir"`
	PinDir   string `json:"pin_dir"`
	// Attacker is the attacker's own program; BlockedExe a copy of it that
	// the rule denies by its exe (RuleFor), "" for none.
	Attacker   string `json:"attacker,omitempty"`
	BlockedExe string `json:"blocked_exe,omitempty"`
	// Inbound is the port the inbound sender (StartInbound) sends to on
	// this host's side of its veth, 0 when there is no sender.
	Inbound uint16 `json:"inbound,omitempty"`
	// Victim is an unjailed process of the jailed user; Abstract an
	// abstract unix socket ("@name") bound outside the jail.
	Victim   *Victim `json:"victim,omitempty"`
	Abstract string  `json:"abstract,omitempty"`
	// Control is a symlink the driver makes, once the jail runs, to the
	// jail's own control socket (watch, ps); "" for none.
	Control string `json:"control,omitempty"`
}

// RuleFor is Rule, and for a spec with a BlockedExe, also a deny of that
// program: every other attempt runs as Attacker, so it means what it did.
func RuleFor(s Spec) string {
	if s.BlockedExe == "" {
		return Rule
	}
	q, _ := json.Marshal(s.BlockedExe) // a JavaScript string literal
	// The exe test comes first: `a && b` is b's value, and Rule's value
	// may be a verdict object (max_tx_bytes) that a trailing test would
	// turn into plain true.
	return "r.proc.exe !== " + string(q) + " && (" + Rule + ")"
}

// Encode is the argument form of s.
func (s Spec) Encode() string {
	b, _ := json.Marshal(s)
	return string(b)
}

// DecodeSpec reads Encode's output.
func DecodeSpec(arg string) (Spec, error) {
	var s Spec
	if err := json.Unmarshal([]byte(arg), &s); err != nil {
		return s, fmt.Errorf("decode attack spec: %w", err)
	}
	if !s.V4.Is4() || !s.V6.Is6() || s.HTTP == 0 || s.HTTPS == 0 || s.UDP == 0 || s.QUIC == 0 || s.DNS == 0 {
		return s, fmt.Errorf("decode attack spec: incomplete: %s", arg)
	}
	return s, nil
}

// Status is an attempt's verdict.
type Status string

const (
	Blocked Status = "blocked"
	Leaked  Status = "LEAKED"
	// NotApplicable: this machine has nothing to attempt it on (no such
	// socket, no setuid helper).
	NotApplicable Status = "n/a"
	// Reached is a control that got through, as it must.
	Reached Status = "ok"
	// Broken is a control that did not get through: the run proves nothing.
	Broken Status = "FAILED"
)

// Outcome is one line of the report.
type Outcome struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// RunArg is the hidden first argument that makes ebpfjail the attacker.
const RunArg = "__attack"

// OnlyArg, NAME[,NAME...] and an encoded Spec run only the named attempts.
const OnlyArg = "__attack-only"
