//go:build linux

package jail

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// killTimeout bounds how long teardown waits for a killed cgroup to empty.
const killTimeout = 10 * time.Second

// Jail is one jail's cgroup, pin directory and state record.
type Jail struct {
	ID     string // "<supervisor pid>-<random>"
	Cgroup string // cgroup directory
	PinDir string // where the BPF links are pinned
	state  string // state record path
}

// ControlPath is where the jail's control socket goes (internal/control):
// next to its state record, in the root-only state directory, and removed
// with it.
func (j *Jail) ControlPath() string { return controlPath(j.state) }

func controlPath(state string) string { return strings.TrimSuffix(state, ".json") + ".sock" }

// Paths are the roots a jail lives under. The zero value is completed by
// DefaultPaths.
type Paths struct {
	Cgroup2 string // cgroup2 mount; jails live in <Cgroup2>/ebpfjail/<id>
	BPFFS   string // bpffs mount; pins live in <BPFFS>/ebpfjail/<id>
	State   string // state records: <State>/<id>.json
}

// DefaultPaths finds (mounting if needed) the cgroup2 and bpffs mounts.
func DefaultPaths() (Paths, error) {
	cg, err := Cgroup2Mount(true)
	if err != nil {
		return Paths{}, err
	}
	fs, err := BPFFSMount(true)
	if err != nil {
		return Paths{}, err
	}
	return Paths{Cgroup2: cg, BPFFS: fs, State: filepath.Join(RunDir, "jails")}, nil
}

func (p Paths) cgroupRoot() string { return filepath.Join(p.Cgroup2, "ebpfjail") }
func (p Paths) pinRoot() string    { return filepath.Join(p.BPFFS, "ebpfjail") }

// record is the state record: enough for a later run to tell whether the
// supervisor is alive and to undo what it made.
type record struct {
	ID        string `json:"id"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"` // /proc/<pid>/stat field 22: tells a reused pid apart
	// For people reading the record; Sweep derives both from ID.
	Cgroup     string `json:"cgroup"`
	PinDir     string `json:"pin_dir"`
	CreatedUTC string `json:"created"`
	// Kept marks a jail its supervisor left for inspection: Sweep at a
	// jail's start leaves it, only SweepAll (--cleanup) removes it.
	Kept bool `json:"kept,omitempty"`
}

// New records a jail for this process and creates its empty cgroup.
func New(p Paths) (*Jail, error) {
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("make jail id: %w", err)
	}
	pid := os.Getpid()
	id := fmt.Sprintf("%d-%s", pid, hex.EncodeToString(rnd[:]))
	j := &Jail{
		ID:     id,
		Cgroup: filepath.Join(p.cgroupRoot(), id),
		PinDir: filepath.Join(p.pinRoot(), id),
		state:  filepath.Join(p.State, id+".json"),
	}
	st, err := startTime(pid)
	if err != nil {
		return nil, err
	}
	rec := record{ID: id, PID: pid, StartTime: st, Cgroup: j.Cgroup, PinDir: j.PinDir,
		CreatedUTC: time.Now().UTC().Format(time.RFC3339)}
	b, _ := json.Marshal(rec)
	if err := os.MkdirAll(p.State, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	// The record goes first: from here on a crash leaves something Sweep finds.
	if err := writeFileAtomic(j.state, b); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(p.cgroupRoot(), 0o755); err != nil {
		os.Remove(j.state)
		return nil, fmt.Errorf("create cgroup %s: %w", p.cgroupRoot(), err)
	}
	if err := os.Mkdir(j.Cgroup, 0o755); err != nil {
		os.Remove(j.state)
		return nil, fmt.Errorf("create cgroup %s: %w", j.Cgroup, err)
	}
	return j, nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write state record: %w", err)
	}
	return nil
}

// Keep marks the jail as left for inspection (record.Kept): its cgroup and
// pins stay after this process exits, until SweepAll.
func (j *Jail) Keep() error {
	b, err := os.ReadFile(j.state)
	if err != nil {
		return fmt.Errorf("read state record: %w", err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("read state record: %w", err)
	}
	rec.Kept = true
	b, _ = json.Marshal(rec)
	return writeFileAtomic(j.state, b)
}

// Kill kills every process left in the jail and waits until it is empty.
func (j *Jail) Kill() error {
	return killCgroup(j.Cgroup, killTimeout)
}

// Procs lists the pids in the jail.
func (j *Jail) Procs() ([]string, error) { return cgroupProcs(j.Cgroup) }

// Destroy kills what is left, removes the pins (which detaches programs no
// process holds any more), the cgroup and the state record. The state record
// is kept if anything else fails, so a later Sweep retries.
func (j *Jail) Destroy() error {
	return destroy(j.Cgroup, j.PinDir, j.state)
}

func destroy(cgroup, pins, state string) error {
	// Kill before detaching: nothing of the jail may run unsteered.
	if err := killCgroup(cgroup, killTimeout); err != nil {
		return err
	}
	var errs []error
	if err := os.RemoveAll(pins); err != nil {
		errs = append(errs, fmt.Errorf("remove pins: %w", err))
	}
	if err := removeCgroupTree(cgroup); err != nil {
		errs = append(errs, err)
	}
	removeV1Mirrors(cgroup)
	if len(errs) == 0 && state != "" {
		// A dead supervisor's control socket, which no one answers.
		os.Remove(controlPath(state))
		if err := os.Remove(state); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove state record: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Swept is one jail Sweep removed.
type Swept struct {
	ID    string
	Procs int // processes it killed
}

// Sweep removes every jail whose supervisor is gone: its processes are
// killed, its pins, cgroup and state record removed. It also removes cgroup
// and pin directories with no record whose id names a dead pid (a run that
// died between steps). Live jails, and those kept for inspection
// (Jail.Keep), are left alone.
func Sweep(p Paths, log *slog.Logger) ([]Swept, error) { return sweep(p, log, false) }

// SweepAll is Sweep that also removes the jails kept for inspection.
func SweepAll(p Paths, log *slog.Logger) ([]Swept, error) { return sweep(p, log, true) }

func sweep(p Paths, log *slog.Logger, kept bool) ([]Swept, error) {
	var out []Swept
	var errs []error
	seen := map[string]bool{}
	recs, _ := filepath.Glob(filepath.Join(p.State, "*.json"))
	for _, path := range recs {
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("read state record: %w", err))
			continue
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil || rec.ID == "" {
			log.Warn("ignoring unreadable state record", "path", path, "err", err)
			continue
		}
		seen[rec.ID] = true
		if alive(rec.PID, rec.StartTime) || (rec.Kept && !kept) {
			continue
		}
		// Paths come from this run's mounts, not the record: the dead run may
		// have seen the hierarchy at another mount point (a private mount
		// under `ip netns exec`).
		cg := filepath.Join(p.cgroupRoot(), rec.ID)
		n := countProcs(cg)
		if err := destroy(cg, filepath.Join(p.pinRoot(), rec.ID), path); err != nil {
			errs = append(errs, fmt.Errorf("clean jail %s: %w", rec.ID, err))
			continue
		}
		log.Info("removed jail of a dead supervisor", "jail", rec.ID, "killed", n)
		out = append(out, Swept{ID: rec.ID, Procs: n})
	}
	// Leftovers without a record.
	for _, root := range []string{p.cgroupRoot(), p.pinRoot()} {
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			id := e.Name()
			if !e.IsDir() || seen[id] {
				continue
			}
			pid, err := strconv.Atoi(strings.SplitN(id, "-", 2)[0])
			if err != nil || alive(pid, 0) {
				continue
			}
			seen[id] = true
			cg := filepath.Join(p.cgroupRoot(), id)
			n := countProcs(cg)
			if err := destroy(cg, filepath.Join(p.pinRoot(), id), ""); err != nil {
				errs = append(errs, fmt.Errorf("clean jail %s: %w", id, err))
				continue
			}
			log.Info("removed jail without a state record", "jail", id, "killed", n)
			out = append(out, Swept{ID: id, Procs: n})
		}
	}
	return out, errors.Join(errs...)
}

// InJail reports whether process pid runs in a jail's cgroup, this
// one's or another's, as its /proc/PID/cgroup says; true when that cannot
// be read (a peer that is gone is not trusted).
func (p Paths) InJail(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rel, ok := strings.CutPrefix(line, "0::"); ok {
			dir := filepath.Join(p.Cgroup2, rel)
			return strings.HasPrefix(dir+"/", p.cgroupRoot()+"/")
		}
	}
	return true
}

func countProcs(cgroup string) int {
	p, _ := cgroupProcs(cgroup)
	return len(p)
}

// alive reports whether pid runs and, when start is not 0, is the same
// process that wrote the record (not a reuse of its pid).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := startTime(pid)
	if err != nil {
		return false
	}
	return start == 0 || st == start
}

// startTime reads field 22 of /proc/<pid>/stat (clock ticks since boot).
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read process %d: %w", pid, err)
	}
	return parseStartTime(string(b))
}

func parseStartTime(stat string) (uint64, error) {
	// comm (field 2) may hold spaces and parentheses: count from the last ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("parse process stat: no comm")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, errors.New("parse process stat: too few fields")
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse process stat: %w", err)
	}
	return v, nil
}
