package rules

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A rule program runs as the jailed user, who may own its file: --sh runs
// the script anew for each request and --proc restarts its program, so a
// jailed command that rewrote the file would decide its own requests. A
// pinned program is what the operator named at start: every argument
// (argv[0] looked up in PATH) that names a regular file the rule's user
// could modify (by mode bits: the file, or a directory on its path,
// writable or owned by the user) is copied once, at start, into a sealed
// memfd that nobody can change, and the program gets /proc/self/fd/N in its
// place (argv[0] is executed from it; a script's interpreter reads it).
// What the program opens by itself (imports, configuration, a script named
// inside a --sh command line) is not pinned: keep those out of the user's
// reach. Files only root can change are run as they are (an interpreter
// finds its libraries next to its real path). Nothing is pinned for uid 0,
// who can change anything anyway, nor off Linux, which has no sealed memfds:
// no jail runs there, and --weak is no boundary a pinned file would hold.

// pinned is a program's argv with its pinned files.
type pinned struct {
	path  string   // what to execute
	argv  []string // argv[0] stays the name the operator gave
	files []*os.File
}

// firstPinFD is the descriptor number the first pinned file has in the
// program (exec.Cmd.ExtraFiles start at 3).
const firstPinFD = 3

// pinProgram pins argv's files for the user of cred (nil: this process's).
func pinProgram(argv []string, cred *syscall.Credential) (*pinned, error) {
	p := &pinned{argv: append([]string(nil), argv...)}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		// Left to exec.Command, which reports it the usual way.
		path = argv[0]
	}
	p.path = path
	uid, gids := uint32(os.Getuid()), []uint32{uint32(os.Getgid())}
	if cred != nil {
		uid, gids = cred.Uid, append([]uint32{cred.Gid}, cred.Groups...)
	}
	if uid == 0 || !sealable {
		return p, nil
	}
	for i, a := range argv {
		name := a
		if i == 0 {
			name = path
		}
		fi, err := os.Stat(name)
		if err != nil || !fi.Mode().IsRegular() || !replaceable(name, uid, gids) {
			continue
		}
		f, err := sealedCopy(name)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("pin rule program file %s: %w", name, err)
		}
		fd := "/proc/self/fd/" + strconv.Itoa(firstPinFD+len(p.files))
		p.files = append(p.files, f)
		if i == 0 {
			p.path = fd
		} else {
			p.argv[i] = fd
		}
	}
	return p, nil
}

// command is an exec.Cmd running the pinned program.
func (p *pinned) command(cmd *exec.Cmd) *exec.Cmd {
	if strings.HasPrefix(p.path, "/proc/self/fd/") {
		cmd.Path, cmd.Err = p.path, nil
	}
	cmd.Args = p.argv
	cmd.ExtraFiles = p.files
	return cmd
}

func (p *pinned) close() {
	for _, f := range p.files {
		f.Close()
	}
	p.files = nil
}

// replaceable reports whether the user uid (groups gids) could change what
// name leads to: write the file, or replace it or a directory on its path
// (as written, and with symlinks resolved). Judged by mode bits only.
func replaceable(name string, uid uint32, gids []uint32) bool {
	abs, err := filepath.Abs(name)
	if err != nil {
		return true
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return true
	}
	return pathReplaceable(abs, uid, gids) || pathReplaceable(real, uid, gids)
}

func pathReplaceable(abs string, uid uint32, gids []uint32) bool {
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return true
	}
	// A symlink's own mode means nothing: only its directory can change it.
	if st.Mode&unix.S_IFMT != unix.S_IFLNK && mayWrite(&st, uid, gids) {
		return true
	}
	childOwned := st.Uid == uid
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		var ds unix.Stat_t
		if err := unix.Stat(dir, &ds); err != nil {
			return true
		}
		// A sticky directory lets others remove or rename only what they
		// own (or when they own the directory).
		sticky := ds.Mode&unix.S_ISVTX != 0 && !childOwned && ds.Uid != uid
		if mayWrite(&ds, uid, gids) && !sticky {
			return true
		}
		if dir == "/" || dir == "." {
			return false
		}
		childOwned = ds.Uid == uid
	}
}

// mayWrite: the owner can always chmod; otherwise the group or other bits.
func mayWrite(st *unix.Stat_t, uid uint32, gids []uint32) bool {
	if st.Uid == uid {
		return true
	}
	for _, g := range gids {
		if st.Gid == g {
			return st.Mode&0o020 != 0
		}
	}
	return st.Mode&0o002 != 0
}
