package report

import (
	"strconv"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// UntrustedCA begins the reason of a connection event whose client aborted
// the TLS handshake because it does not trust ebpfjail's CA (an unknown-CA
// or bad-certificate alert, or a close right after the certificate): a
// class of its own in the logs and the audit.
const UntrustedCA = "tls handshake: client does not trust the CA"

// refusedWhat names what a refused event refused, in the words of the
// socket call, for the human line and the audit's blocked list:
//
//	udp sendmsg 192.0.2.9:9999        a UDP send (or connect) to a non-DNS port
//	socket inet raw icmp              a socket the jail does not make
//	unix stream connect /run/x.sock   a unix side door
//	inbound from 192.0.2.5 (tcp)      packets from another host
func refusedWhat(e event.Event) string {
	switch e.Op {
	case "socket":
		return join("socket", clean(e.Family), clean(e.SockType), clean(e.Proto))
	case "inbound":
		what := join("inbound from", clean(e.Dst))
		if e.Proto != "" {
			what += " (" + clean(e.Proto) + ")"
		}
		return what
	case "dropped":
		return "attempts not reported one by one"
	}
	kind := e.Proto
	if e.Family == "unix" || kind == "" {
		kind = join(e.Family, e.SockType)
	}
	return join(clean(kind), clean(e.Op), clean(e.Dst))
}

// refusedLevel is the verbosity from which a refused event is told: by
// default, like a blocked connection, except what libraries do on their
// own at every name lookup: glibc's getaddrinfo connects a UDP socket to
// each answer to sort them, and asks nscd over a unix socket; a UDP connect
// and a unix address wait for -v. Every one is in the JSON log and the
// audit.
func refusedLevel(e event.Event) int {
	if e.Family == "unix" || e.Op == "connect" && e.Proto == "udp" {
		return 1
	}
	return 0
}

// refused is the human line of a refused event.
//
//	refused udp sendmsg 192.0.2.9:9999 (python3 pid 12): UDP is refused except DNS (port 53)
//	refused udp sendmsg 192.0.2.9:9999 (python3 pid 12) 49 more times: UDP is refused except DNS (port 53)
func (h *Human) refused(e event.Event) (string, int) {
	n := strconv.Itoa(max(e.Count, 1))
	var line string
	switch {
	case e.Op == "dropped":
		line = join("refused", n, "more attempts, not reported one by one")
	case e.Op == "inbound":
		line = join("refused", refusedWhat(e), n, "packets")
	case e.Count > 1:
		line = join("refused", refusedWhat(e), procLabel(e), n, "more times")
	default:
		line = join("refused", refusedWhat(e), procLabel(e))
	}
	return withReason(line, e), refusedLevel(e)
}
