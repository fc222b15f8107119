package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// SocketSuffix ends a control socket's name in the state directory:
// <id>.sock next to the state record <id>.json.
const SocketSuffix = ".sock"

// maxLine bounds one message from a server (an event with a long URL and
// argv stays far below it).
const maxLine = 1 << 20

// Jails lists the ids of the jails with a control socket in stateDir,
// sorted. A socket whose supervisor died is listed too, until --cleanup
// removes it; dialing it fails.
func Jails(stateDir string) ([]string, error) {
	ents, err := os.ReadDir(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list jails: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), SocketSuffix); ok && e.Type()&os.ModeSocket != 0 {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// SocketPath is the control socket of jail id in stateDir.
func SocketPath(stateDir, id string) string { return filepath.Join(stateDir, id+SocketSuffix) }

// Conn is one client connection.
type Conn struct {
	c  net.Conn
	sc *bufio.Scanner
}

// Dial connects to the socket at path and asks for op.
func Dial(ctx context.Context, path, op string) (*Conn, error) {
	return DialRequest(ctx, path, Request{Op: op})
}

// DialRequest connects to the socket at path and sends req.
func DialRequest(ctx context.Context, path string, req Request) (*Conn, error) {
	req.V = Version
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to jail: %w", err)
	}
	b, _ := json.Marshal(req)
	c.SetWriteDeadline(time.Now().Add(requestTimeout))
	if _, err := c.Write(append(b, '\n')); err != nil {
		c.Close()
		return nil, fmt.Errorf("ask jail: %w", err)
	}
	c.SetWriteDeadline(time.Time{})
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	return &Conn{c: c, sc: sc}, nil
}

// Next reads the next message; io.EOF-like errors end the stream.
func (c *Conn) Next() (Message, error) {
	if !c.sc.Scan() {
		if err := c.sc.Err(); err != nil {
			return Message{}, fmt.Errorf("read from jail: %w", err)
		}
		return Message{}, errClosed
	}
	var m Message
	if err := json.Unmarshal(c.sc.Bytes(), &m); err != nil {
		return Message{}, fmt.Errorf("read from jail: %w", err)
	}
	if m.Error != "" {
		return m, fmt.Errorf("jail says: %s", m.Error)
	}
	return m, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

var errClosed = errors.New("the jail closed the connection")

// AskStatus returns the status of the jail at path.
func AskStatus(ctx context.Context, path string) (Status, error) {
	c, err := Dial(ctx, path, OpStatus)
	if err != nil {
		return Status{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.c.SetReadDeadline(dl)
	}
	m, err := c.Next()
	if err != nil {
		return Status{}, err
	}
	if m.Status == nil {
		return Status{}, errors.New("read from jail: no status")
	}
	return *m.Status, nil
}

// Running returns the status of every live jail in stateDir whose id
// starts with prefix ("" for all), in id order.
func Running(ctx context.Context, stateDir, prefix string) ([]Status, error) {
	ids, err := Jails(stateDir)
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, id := range ids {
		if !strings.HasPrefix(id, prefix) {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := AskStatus(ctx, SocketPath(stateDir, id))
		cancel()
		if err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// AnswerHeld gives decision to the request held as id in whichever
// running jail holds it.
func AnswerHeld(ctx context.Context, stateDir, id, decision string) error {
	ids, err := Jails(stateDir)
	if err != nil {
		return err
	}
	for _, jail := range ids {
		c, err := DialRequest(ctx, SocketPath(stateDir, jail), Request{Op: OpAnswer, ID: id, Answer: decision})
		if err != nil {
			continue
		}
		c.c.SetReadDeadline(time.Now().Add(requestTimeout))
		m, err := c.Next()
		c.Close()
		if err == nil && m.Answered {
			return nil
		}
		if err != nil && !strings.Contains(err.Error(), ErrNoPending.Error()) {
			return err
		}
	}
	return fmt.Errorf("no request waits for an answer as %s (answered, timed out, or its jail ended)", id)
}
