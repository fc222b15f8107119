package report

import (
	"testing"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Refused events, deny messages and clients that do not trust the CA, as
// the human log tells them.
func TestHumanRefusedAndDeniedLines(t *testing.T) {
	tlsFail := event.Event{Type: event.TypeConnection, Verdict: event.Deny,
		PID: 5, Comm: "node", URL: "https://x.test:443", Scheme: "https", Host: "x.test", Port: 443}
	withMessage := req(event.Deny, "PUT", "https://x.test/up")
	withMessage.DenyMessage = "uploads go through the review bot"
	udp := event.Event{Type: event.TypeRefused, Verdict: event.Deny, Reason: "UDP is refused except DNS (port 53)", PID: 9, Comm: "python3",
		Op: "sendmsg", Family: "inet", SockType: "dgram", Proto: "udp", Dst: "192.0.2.9:9999"}
	udpBurst := udp
	udpBurst.Count = 49
	udpProbe := udp
	udpProbe.Op, udpProbe.Dst = "connect", "198.18.0.7:443"
	raw := event.Event{Type: event.TypeRefused, Verdict: event.Deny, Reason: "only TCP and UDP sockets", PID: 9, Comm: "ping",
		Op: "socket", Family: "inet", SockType: "raw", Proto: "icmp"}
	unixDoor := event.Event{Type: event.TypeRefused, Verdict: event.Deny, Reason: "unix socket on the deny list", PID: 9, Comm: "docker",
		Op: "connect", Family: "unix", SockType: "stream", Dst: "/run/docker.sock"}
	inbound := event.Event{Type: event.TypeRefused, Verdict: event.Deny, Reason: "inbound from another host",
		Op: "inbound", Family: "inet", Proto: "tcp", Dst: "192.0.2.5", Count: 3}
	untrusted := tlsFail
	untrusted.Reason, untrusted.Hint = "tls handshake: client does not trust the CA: remote error: tls: unknown certificate authority", ""
	checkLevels(t, []levelCase{
		{"deny message", withMessage, all("denied PUT https://x.test/up (curl pid 123): rule; message: uploads go through the review bot")},
		{"refused udp send", udp, all("refused udp sendmsg 192.0.2.9:9999 (python3 pid 9): UDP is refused except DNS (port 53)")},
		{"refused udp burst", udpBurst, all("refused udp sendmsg 192.0.2.9:9999 (python3 pid 9) 49 more times: UDP is refused except DNS (port 53)")},
		{"glibc's udp connect", udpProbe, [3]string{"", "refused udp connect 198.18.0.7:443 (python3 pid 9): UDP is refused except DNS (port 53)",
			"refused udp connect 198.18.0.7:443 (python3 pid 9): UDP is refused except DNS (port 53)"}},
		{"refused raw socket", raw, all("refused socket inet raw icmp (ping pid 9): only TCP and UDP sockets")},
		{"refused unix", unixDoor, [3]string{"", "refused unix stream connect /run/docker.sock (docker pid 9): unix socket on the deny list",
			"refused unix stream connect /run/docker.sock (docker pid 9): unix socket on the deny list"}},
		{"refused inbound", inbound, all("refused inbound from 192.0.2.5 (tcp) 3 packets: inbound from another host")},
		{"client does not trust the CA", untrusted, all("client does not trust the CA of x.test (node pid 5): remote error: tls: unknown certificate authority")},
	})
}
