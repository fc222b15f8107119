package control

import (
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Version is the protocol version, the "v" of every line.
const Version = 1

// Timeouts: a client has requestTimeout to send its request; a line to a
// watcher that stopped reading is given up after writeTimeout (only its
// own goroutine waits); at the end, the server waits flushTimeout for the
// watchers to get their last lines.
const (
	requestTimeout = 5 * time.Second
	writeTimeout   = 10 * time.Second
	flushTimeout   = time.Second
	maxRequest     = 4096
)

// Operations a client may ask for.
const (
	OpStatus    = "status"    // one status message, then the server closes
	OpSubscribe = "subscribe" // a status, every event as it happens, then an end
	OpAnswer    = "answer"    // decide a held request (ID, Answer); one Message back
)

// Request is the one line a client sends.
type Request struct {
	V      int    `json:"v"`
	Op     string `json:"op"`
	ID     string `json:"id,omitempty"`     // answer: the held request
	Answer string `json:"answer,omitempty"` // answer: allow, always or deny
}

// Message is one line from the server: exactly one of its pointer or
// count fields is set.
type Message struct {
	V      int          `json:"v"`
	Status *Status      `json:"status,omitempty"`
	Event  *event.Event `json:"event,omitempty"`
	// Dropped is how many events this subscriber missed (its buffer was
	// full) just before the next message.
	Dropped int64  `json:"dropped,omitempty"`
	End     *End   `json:"end,omitempty"`
	Error   string `json:"error,omitempty"`
	// Pending is a request held for an answer (--ask).
	Pending *Pending `json:"pending,omitempty"`
	// Answered confirms an answer.
	Answered bool `json:"answered,omitempty"`
}

// Status is what `ebpfjail ps` shows of a jail.
type Status struct {
	ID         string    `json:"id"`
	Command    []string  `json:"command"`
	User       string    `json:"user"`
	UID        uint32    `json:"uid"`
	PID        int       `json:"pid,omitempty"` // the command's; absent before it started
	Supervisor int       `json:"supervisor"`    // ebpfjail's pid
	Started    time.Time `json:"started"`
	Counts     Counts    `json:"counts"`
	// Watchers is how many subscribers are attached now; Pending how
	// many requests wait for an answer (--ask).
	Watchers int `json:"watchers"`
	Pending  int `json:"pending"`
	// Peers counts the connections to the control socket.
	Peers Peers `json:"peers"`
}

// Counts are the jail's events so far.
type Counts struct {
	Allowed int64 `json:"allowed"` // requests allowed
	Denied  int64 `json:"denied"`  // requests denied
	Refused int64 `json:"refused"` // connections refused before any request
	DNS     int64 `json:"dns"`     // lookups answered
	Execs   int64 `json:"execs"`   // processes started
}

// Peers are the control socket's connections: accepted (root outside any
// jail) and refused (any other uid, or a process in a jail).
type Peers struct {
	Accepted int64 `json:"accepted"`
	Refused  int64 `json:"refused"`
}

// End is the last message to a subscriber: the jail is gone.
type End struct {
	ExitStatus *int   `json:"exit_status,omitempty"` // absent if the command never ran
	Status     Status `json:"status"`                // the final counts
}
