package event

import "time"

// Version is the schema version, the "v" field of every event.
const Version = 1

// Types of event.
const (
	TypeRequest      = "request"       // one rule evaluation of an HTTP(S) request (or a spliced connection)
	TypeConnection   = "connection"    // a connection that carried no request: non-HTTP, a failed TLS handshake
	TypeDNS          = "dns"           // one lookup answered by the shim
	TypeExec         = "exec"          // a process started in the jail
	TypeRefused      = "refused"       // something the kernel refused in the jail: a socket, a send, a unix address, inbound packets
	TypeSummary      = "summary"       // at exit: what the jail did, per process
	TypeSecretMisuse = "secret_misuse" // a secret's placeholder sent where the secret does not belong: denied
)

// Verdicts.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Event is one line of --log-json.
type Event struct {
	V    int       `json:"v"`
	Type string    `json:"type"`
	Time time.Time `json:"time"` // RFC 3339 with milliseconds, UTC

	Verdict string `json:"verdict,omitempty"` // allow or deny
	Reason  string `json:"reason,omitempty"`  // why (rule, rule error, no rule, max_tx_bytes, ...)
	Hint    string `json:"hint,omitempty"`    // what the user can do about a failure

	// The process (kernel-recorded at connect() or exec time).
	PID  uint32 `json:"pid,omitempty"`
	PPID uint32 `json:"ppid,omitempty"`
	UID  uint32 `json:"uid,omitempty"`
	Comm string `json:"comm,omitempty"`
	Exe  string `json:"exe,omitempty"`

	// request and connection
	Method      string  `json:"method,omitempty"`
	URL         string  `json:"url,omitempty"`
	Scheme      string  `json:"scheme,omitempty"` // http, https, tcp, dns
	Host        string  `json:"host,omitempty"`
	Port        int     `json:"port,omitempty"`
	Dst         string  `json:"dst,omitempty"`    // address:port the process connected to
	Status      int     `json:"status,omitempty"` // HTTP status sent to the client
	BytesUp     int64   `json:"bytes_up,omitempty"`
	BytesDown   int64   `json:"bytes_down,omitempty"`
	DurationMS  float64 `json:"duration_ms,omitempty"`
	Upstream    string  `json:"upstream,omitempty"`     // request: address:port ebpfjail dialled
	DenyMessage string  `json:"deny_message,omitempty"` // request: the rule's deny message

	// dns
	Name   string `json:"name,omitempty"`
	QType  string `json:"qtype,omitempty"`
	Rcode  string `json:"rcode,omitempty"`
	Answer string `json:"answer,omitempty"` // first address answered
	Server string `json:"server,omitempty"` // address:port the process sent the query to

	// refused (dst is the destination, when there is one)
	Op       string `json:"op,omitempty"`       // connect, sendmsg, socket, bind, inbound, ...
	Family   string `json:"family,omitempty"`   // inet, inet6, unix, packet, netlink, ... or the number
	SockType string `json:"socktype,omitempty"` // stream, dgram, raw, seqpacket, ... or the number
	Proto    string `json:"proto,omitempty"`    // tcp, udp, icmp, icmpv6, ... or the number
	Count    int    `json:"count,omitempty"`    // attempts this event stands for, when more than one

	// exec
	Argv []string `json:"argv,omitempty"`

	// secret_misuse: the secret's name (never its value) and where its
	// placeholder was found: "header:NAME", "query", "body", "dns", "tcp"
	Secret string `json:"secret,omitempty"`
	Where  string `json:"where,omitempty"`

	// summary
	Summary *Summary `json:"summary,omitempty"`
}

// Summary is what --audit prints at exit, per process.
type Summary struct {
	ExitStatus int       `json:"exit_status"`
	DurationMS float64   `json:"duration_ms"`
	Processes  []Process `json:"processes"`
	// Dropped counts the distinct entries (processes, hosts, names,
	// refused attempts) left out because the aggregate was full.
	Dropped int `json:"dropped,omitempty"`
	// Tree is the same run per process (pid), parents before their
	// children: what each process did, who started it.
	Tree []Node `json:"tree,omitempty"`
}

// Process groups what one executable (comm and exe) did.
type Process struct {
	Comm     string   `json:"comm"`
	Exe      string   `json:"exe,omitempty"`
	PIDs     []uint32 `json:"pids"`
	Hosts    []Host   `json:"hosts,omitempty"`
	DNSNames []string `json:"dns_names,omitempty"`
	Blocked  []string `json:"blocked,omitempty"` // non-HTTP and other refused attempts, "tcp://host:port" and the like
}

// Host is what one process did with one host:port.
type Host struct {
	Host      string         `json:"host"`
	Port      int            `json:"port"`
	Methods   map[string]int `json:"methods"` // requests per method
	Allowed   int            `json:"allowed"`
	Denied    int            `json:"denied"`
	BytesUp   int64          `json:"bytes_up"`
	BytesDown int64          `json:"bytes_down"`
}

// Node is one process (one pid) of the tree: what it ran and what it did.
type Node struct {
	PID      uint32   `json:"pid"`
	PPID     uint32   `json:"ppid,omitempty"`
	Depth    int      `json:"depth"` // 0 for a process whose parent is not in the tree
	Comm     string   `json:"comm,omitempty"`
	Exe      string   `json:"exe,omitempty"`
	Argv     []string `json:"argv,omitempty"` // the head of its last execve's arguments
	Hosts    []Host   `json:"hosts,omitempty"`
	DNSNames []string `json:"dns_names,omitempty"`
	// DNSServers are the addresses it sent its DNS queries to.
	DNSServers []string  `json:"dns_servers,omitempty"`
	Refused    []Refusal `json:"refused,omitempty"`
}

// Kinds of refusal.
const (
	RefusedConnection = "connection" // ebpfjail refused a connection that carried no request
	RefusedTLS        = "tls"        // the client refused ebpfjail's certificate
	RefusedKernel     = "kernel"     // the kernel refused a socket, send or connect
)

// Refusal is one kind of attempt of one process that did not get through.
type Refusal struct {
	Kind   string `json:"kind"`
	What   string `json:"what"` // the attempt: "tcp://ssh.example.test:22", "udp 198.51.100.7:9"
	Reason string `json:"reason,omitempty"`
	Hint   string `json:"hint,omitempty"`
	Count  int    `json:"count"`
}
