package report

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// The page: one file, its style and script inline, so that it can be
// attached to a ticket and opened anywhere without fetching anything.
var (
	//go:embed page/report.html.tmpl
	pageHTML string
	//go:embed page/report.css
	pageCSS string
	//go:embed page/report.js
	pageJS string

	pageTmpl = template.Must(template.New("report").Parse(pageHTML))
)

// pageCSP forbids every fetch and every script but the page's own (by its
// hash): were a name from the audited program ever to slip past the
// escaping, the browser would still not run it.
var pageCSP = func() string {
	sum := sha256.Sum256([]byte(pageJS))
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
}()

// maxRows bounds the timeline table (the chart has every mark).
const maxRows = 2000

type pageView struct {
	Name, CSP, Totals, Start, Span string
	CSS                            template.CSS
	JS                             template.JS
	Events, Dropped, MarksLeft     int
	Exit                           *int
	Nodes                          []nodeView
	Marks                          []markView
	Data                           pageData
}

// pageData is what the script draws, as JSON in the page.
type pageData struct {
	Span  float64 `json:"span"` // milliseconds from the first event to the last
	Lanes []lane  `json:"lanes"`
	Marks []Mark  `json:"marks"`
}

type lane struct {
	PID   uint32 `json:"pid"`
	Depth int    `json:"depth"`
	Label string `json:"label"`
}

type nodeView struct {
	PID, PPID  uint32
	Depth      int
	Comm, Exe  string
	Argv       string
	Quiet      bool
	Hosts      []hostView
	DNSNames   []string
	DNSServers []string
	Refused    []refusalView
}

type hostView struct {
	HostPort, Methods, Up, Down, Class string
	Allowed, Denied                    int
}

type refusalView struct {
	Kind, Title, What, Reason, Hint string
	Count                           int // shown when more than one
}

type markView struct {
	At, Proc, Kind, Verdict, Label string
}

// WriteHTML writes s as one self-contained HTML page: the process tree
// with each process's hosts, bytes, verdicts, DNS names and refusals, and
// a timeline. html/template escapes every string for where it goes.
func WriteHTML(w io.Writer, s *Session) error {
	v := pageView{
		Name: s.Name, CSP: pageCSP, CSS: template.CSS(pageCSS), JS: template.JS(pageJS),
		Totals: totals(s.Summary), Start: s.Start.UTC().Format(time.RFC3339),
		Span:   humanMS(float64(s.End.Sub(s.Start).Microseconds()) / 1000),
		Events: s.Events, Dropped: s.Summary.Dropped, Exit: s.Exit,
	}
	comm := map[uint32]string{}
	for _, n := range s.Summary.Tree {
		nv := viewNode(n)
		v.Nodes = append(v.Nodes, nv)
		label := nv.Comm
		if n.PID != 0 {
			label += " " + strconv.FormatUint(uint64(n.PID), 10)
		}
		comm[n.PID] = label
		v.Data.Lanes = append(v.Data.Lanes, lane{PID: n.PID, Depth: n.Depth, Label: label})
	}
	v.Data.Span = float64(s.End.Sub(s.Start).Microseconds()) / 1000
	v.Data.Marks = s.Timeline
	for i, m := range s.Timeline {
		if i == maxRows {
			break
		}
		v.Marks = append(v.Marks, markView{At: "+" + humanMS(m.MS), Proc: comm[m.PID], Kind: m.Kind, Verdict: m.Verdict, Label: m.Label})
	}
	v.MarksLeft = s.MarksDropped + max(0, len(s.Timeline)-maxRows)
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, v); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

func viewNode(n event.Node) nodeView {
	nv := nodeView{PID: n.PID, PPID: n.PPID, Depth: n.Depth, Comm: n.Comm, Exe: n.Exe, DNSNames: n.DNSNames, DNSServers: n.DNSServers,
		Quiet: len(n.Hosts) == 0 && len(n.DNSNames) == 0 && len(n.Refused) == 0}
	if nv.Comm == "" {
		nv.Comm = "(unknown)"
	}
	if len(n.Argv) > 0 {
		args := make([]string, len(n.Argv))
		for i, a := range n.Argv {
			args[i] = shellQuote(a)
		}
		nv.Argv = strings.Join(args, " ")
	}
	for _, h := range n.Hosts {
		hv := hostView{HostPort: joinHostPort(h.Host, h.Port), Methods: methodList(h.Methods), Allowed: h.Allowed,
			Denied: h.Denied, Up: humanBytes(h.BytesUp), Down: humanBytes(h.BytesDown), Class: event.Allow}
		if h.Denied > 0 {
			hv.Class = event.Deny
		}
		nv.Hosts = append(nv.Hosts, hv)
	}
	for _, r := range n.Refused {
		rv := refusalView{Kind: r.Kind, What: r.What, Reason: r.Reason, Hint: r.Hint}
		if r.Count > 1 {
			rv.Count = r.Count
		}
		switch r.Kind {
		case event.RefusedTLS:
			rv.Title = "TLS handshake failed"
		case event.RefusedKernel:
			rv.Title = "refused by the kernel"
		default:
			rv.Title = "refused"
		}
		nv.Refused = append(nv.Refused, rv)
	}
	return nv
}
