package proxy

import (
	"net/http"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// refuseConnect records a CONNECT that ebpfjail cannot answer itself, and
// so refuses: it is never forwarded, since the upstream (were it a proxy)
// would open a tunnel to a port the rule never saw.
func (p *Proxy) refuseConnect(c *conn, r *http.Request, why string) {
	e := c.newEvent(event.TypeRequest)
	e.Method, e.URL, e.Scheme = r.Method, c.scheme+"://"+r.Host, c.scheme
	e.Verdict, e.Reason, e.Status = event.Deny, why, http.StatusBadRequest
	p.emit(e)
}
