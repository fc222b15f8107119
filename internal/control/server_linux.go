//go:build linux

package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Server serves a Hub on a unix socket.
type Server struct {
	hub    *Hub
	ln     *net.UnixListener
	path   string
	jailed func(pid int) bool
	log    *slog.Logger
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	mu    sync.Mutex
	conns map[*net.UnixConn]struct{} // to cut at Close
}

// Listen makes the socket at path (its directory must be root's and is
// made 0700 if it is not) and serves hub on it until Close. jailed tells
// whether a pid runs in a jail: such a peer is refused even as root; an
// error finding out must answer true.
func Listen(hub *Hub, path string, jailed func(pid int) bool, log *slog.Logger) (*Server, error) {
	if err := privateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	os.Remove(path) // a dead supervisor's, of the same id: cannot be live
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restrict control socket: %w", err)
	}
	s := &Server{hub: hub, ln: ln, path: path, jailed: jailed, log: log, stop: make(chan struct{}), conns: map[*net.UnixConn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// privateDir checks that dir is a directory of root's that no one else
// may enter, making it so if only its mode is wrong.
func privateDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("check state directory: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != 0 {
		return fmt.Errorf("check state directory: %s is not a directory owned by root", dir)
	}
	if st.Mode&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("restrict state directory: %w", err)
		}
	}
	return nil
}

// Close stops accepting, ends every subscription (after at most
// flushTimeout for the last lines), and removes the socket.
func (s *Server) Close() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		s.hub.End(nil) // no-op when the supervisor ended it with a status
		s.ln.Close()
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(flushTimeout):
		}
		close(s.stop)
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return
		}
		if !s.allowed(c) {
			s.hub.peer(false)
			c.Close()
			continue
		}
		s.hub.peer(true)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// allowed reads the peer's credentials: root, and not in a jail.
func (s *Server) allowed(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	if cred.Uid != 0 || cred.Pid <= 0 || s.jailed(int(cred.Pid)) {
		s.log.Info("control socket: refused a peer", "pid", cred.Pid, "uid", cred.Uid)
		return false
	}
	return true
}

// serve reads the client's request and answers it.
func (s *Server) serve(c *net.UnixConn) {
	c.SetReadDeadline(time.Now().Add(requestTimeout))
	r := bufio.NewReader(&limited{c, maxRequest})
	line, err := r.ReadBytes('\n')
	if err != nil && !(errors.Is(err, errEOF) && len(line) > 0) {
		return
	}
	c.SetReadDeadline(time.Time{})
	var req Request
	enc := json.NewEncoder(c)
	enc.SetEscapeHTML(false)
	send := func(m Message) error {
		m.V = Version
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		return enc.Encode(m)
	}
	if err := json.Unmarshal(line, &req); err != nil {
		send(Message{Error: "not a request: " + err.Error()})
		return
	}
	switch req.Op {
	case OpStatus:
		st := s.hub.Status()
		send(Message{Status: &st})
	case OpSubscribe:
		s.subscribe(c, send)
	case OpAnswer:
		if err := s.hub.Answer(req.ID, req.Answer); err != nil {
			send(Message{Error: err.Error()})
			return
		}
		send(Message{Answered: true})
	default:
		send(Message{Error: fmt.Sprintf("unknown op %q", req.Op)})
	}
}

// subscribe streams the hub's events to one watcher until the end, the
// watcher hangs up, or the server stops.
func (s *Server) subscribe(c *net.UnixConn, send func(Message) error) {
	sub := s.hub.Subscribe()
	defer s.hub.Unsubscribe(sub)
	if send(Message{Status: &sub.first}) != nil {
		return
	}
	// The watcher says nothing more: a read returns when it hangs up.
	gone := make(chan struct{})
	go func() {
		var b [1]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				close(gone)
				return
			}
		}
	}()
	stop := make(chan struct{})
	go func() {
		select {
		case <-gone:
		case <-s.stop:
		}
		close(stop)
	}()
	for {
		it, ok := sub.next(stop)
		if !ok {
			return
		}
		if it.dropped > 0 && send(Message{Dropped: it.dropped}) != nil {
			return
		}
		if it.end != nil {
			send(Message{End: it.end})
			return
		}
		if it.pending != nil {
			if send(Message{Pending: it.pending}) != nil {
				return
			}
			continue
		}
		if send(Message{Event: it.event}) != nil {
			return
		}
	}
}
