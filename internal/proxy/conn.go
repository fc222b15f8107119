package proxy

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/ebpfjail/ebpfjail/internal/origin"
	"github.com/ebpfjail/ebpfjail/internal/rules"
)

// conn is what the pipeline knows about one accepted connection.
type conn struct {
	id   uint64
	who  origin.Origin
	proc rules.Proc
	// scheme is "http" or "https" (MITM'd TLS).
	scheme string
	// name is the TLS server name (https) or the CONNECT host the client
	// named; "" for plain HTTP, whose name comes per request from Host.
	name string
	// port is the destination port the child asked for.
	port int
	// dialIP is the child's original destination address, dialed only when
	// it belongs to the request's host; invalid inside a CONNECT tunnel and
	// for synthetic (fake DNS) addresses.
	dialIP netip.Addr
	// destName is the name a synthetic destination address stands for.
	destName string
	// requesterIP is the client's address as the rule sees it: the route's
	// source toward the destination (requesterIP), the peer's in explicit
	// mode.
	requesterIP string
	log         *slog.Logger
	// directTLS marks a connection to the explicit HTTPS listener
	// (Config.ExplicitTLS): TLS sent without a CONNECT goes to port 443.
	directTLS bool
}

// newConn is what the kernel's record who says about a connection: where
// it goes and which process made it, with both on every log
// line of the connection.
func newConn(id uint64, who origin.Origin, log *slog.Logger) *conn {
	log = log.With("dst", who.Dst.String(), "pid", who.PID, "comm", who.Comm, "uid", who.UID)
	proc := procOf(who)
	if who.ExeFrom != origin.ExeKernel {
		// Marked on every line of the connection: exe is not what the
		// kernel recorded at connect().
		log = log.With("exe_from", exeFrom(who))
	}
	if who.ExeTruncated {
		log = log.With("exe_truncated", true) // the path is longer than the kernel keeps
	}
	return &conn{
		id:          id,
		who:         who,
		proc:        proc,
		scheme:      "http",
		port:        int(who.Dst.Port()),
		dialIP:      who.Dst.Addr(),
		requesterIP: requesterIP(who.Dst),
		log:         log,
	}
}

// procOf is the process as the kernel recorded it at connect(). Only when
// the kernel saw no exec of it (no identity hooks on this kernel) is its
// executable read from /proc, now: by then the process may have exited
// (exe "") or exec'd another program, so that exe proves little (exeFrom
// marks it). A record without a parent (none is 0 in the jail) gets it from
// /proc too.
func procOf(who origin.Origin) rules.Proc {
	pr := rules.Proc{PID: who.PID, PPID: who.PPID, UID: who.UID, Comm: who.Comm, Exe: who.Exe}
	if who.ExeFrom == origin.ExeUnseen {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", who.PID)); err == nil {
			pr.Exe = exe
		}
	}
	if pr.PPID != 0 {
		return pr
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", who.PID)); err == nil {
		// Field 4, after the parenthesised comm (which may hold spaces).
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 1 {
				if v, err := strconv.ParseUint(f[1], 10, 32); err == nil {
					pr.PPID = uint32(v)
				}
			}
		}
	}
	return pr
}

// exeFrom says where procOf found the exe when the kernel record had none.
func exeFrom(who origin.Origin) string {
	if who.ExeFrom == origin.ExeUnseen {
		return "/proc, after connect()"
	}
	return "none: the kernel forgot it"
}

// destHost names the destination without help from the client: the name
// behind a synthetic address, else the address.
func (c *conn) destHost() string {
	if c.destName != "" {
		return c.destName
	}
	if !c.who.Dst.IsValid() {
		return "unknown" // explicit mode: only the client's words say where
	}
	return c.who.Dst.Addr().Unmap().String()
}
