package report

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/ebpfjail/ebpfjail/pkg/event"
)

// Summary returns what the Audit has seen: the tree of processes, and the
// same per executable (comm and exe) as schema v1 had it before the tree.
// The same events give the same summary whatever their order. The result
// shares nothing with the Audit, which can go on aggregating.
func (a *Audit) Summary(exitStatus int, duration time.Duration) event.Summary {
	s := event.Summary{
		ExitStatus: exitStatus,
		// Microsecond resolution, like the events' durations.
		DurationMS: math.Round(float64(duration)/float64(time.Microsecond)) / 1000,
		Processes:  []event.Process{},
	}
	if a == nil {
		return s
	}
	a.mu.Lock()
	s.Dropped = a.dropped
	nodes := make(map[uint32]event.Node, len(a.nodes))
	for pid, n := range a.nodes {
		nodes[pid] = n.snapshot(pid)
	}
	a.mu.Unlock()
	s.Tree = tree(nodes)
	s.Processes = byExecutable(s.Tree)
	return s
}

// snapshot copies n out, sorted: hosts by name then port, names and
// refusals alphabetically.
func (n *node) snapshot(pid uint32) event.Node {
	out := event.Node{PID: pid, PPID: n.ppid, Comm: n.comm, Exe: n.exe, Argv: slices.Clone(n.argv)}
	if n.procExe != "" {
		out.Exe = n.procExe
	}
	if out.PPID == pid {
		out.PPID = 0
	}
	for _, h := range n.hosts {
		c := *h
		c.Methods = maps(h.Methods)
		out.Hosts = append(out.Hosts, c)
	}
	slices.SortFunc(out.Hosts, func(x, y event.Host) int {
		return cmp.Or(cmp.Compare(x.Host, y.Host), cmp.Compare(x.Port, y.Port))
	})
	out.DNSNames = sortedKeys(n.names)
	out.DNSServers = sortedKeys(n.servers)
	for _, r := range n.refused {
		out.Refused = append(out.Refused, *r)
	}
	slices.SortFunc(out.Refused, func(x, y event.Refusal) int {
		return cmp.Or(cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.What, y.What))
	})
	return out
}

func maps(m map[string]int) map[string]int {
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// tree orders the nodes parents first, depth first, siblings by pid. A
// node whose parent is not in the tree is a root; so is a node on a cycle
// (a reused pid can make one), so that every node is listed once.
func tree(nodes map[uint32]event.Node) []event.Node {
	children := map[uint32][]uint32{}
	var pids, roots []uint32
	for pid, n := range nodes {
		pids = append(pids, pid)
		if _, ok := nodes[n.PPID]; ok && n.PPID != 0 && pid != 0 {
			children[n.PPID] = append(children[n.PPID], pid)
		} else {
			roots = append(roots, pid)
		}
	}
	slices.Sort(pids)
	slices.Sort(roots)
	for _, c := range children {
		slices.Sort(c)
	}
	out := make([]event.Node, 0, len(nodes))
	seen := map[uint32]bool{}
	type item struct {
		pid   uint32
		depth int
	}
	walk := func(root uint32) {
		stack := []item{{root, 0}}
		for len(stack) > 0 {
			it := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[it.pid] {
				continue
			}
			seen[it.pid] = true
			n := nodes[it.pid]
			n.Depth = it.depth
			out = append(out, n)
			c := children[it.pid]
			for i := len(c) - 1; i >= 0; i-- {
				stack = append(stack, item{c[i], it.depth + 1})
			}
		}
	}
	for _, pid := range append(roots, pids...) {
		walk(pid) // the roots, then what a cycle kept from them
	}
	return out
}

// byExecutable groups the tree per (comm, exe), the summary's processes.
// A process whose exe is unknown (it only asked DNS names) counts under
// the only executable of the same comm, if there is one; node 0 (events
// whose process was not found) is an entry of its own with no pid.
func byExecutable(nodes []event.Node) []event.Process {
	type key struct{ comm, exe string }
	progs := map[key]*event.Process{}
	exes := map[string]map[string]bool{} // comm → exes
	for _, n := range nodes {
		if n.Exe != "" && n.PID != 0 {
			if exes[n.Comm] == nil {
				exes[n.Comm] = map[string]bool{}
			}
			exes[n.Comm][n.Exe] = true
		}
	}
	names, blocked := map[key]map[string]bool{}, map[key]map[string]bool{}
	for _, n := range nodes {
		k := key{n.Comm, n.Exe}
		if k.exe == "" && n.PID != 0 && len(exes[k.comm]) == 1 {
			for e := range exes[k.comm] {
				k.exe = e
			}
		}
		p := progs[k]
		if p == nil {
			p = &event.Process{Comm: k.comm, Exe: k.exe, PIDs: []uint32{}}
			progs[k], names[k], blocked[k] = p, map[string]bool{}, map[string]bool{}
		}
		if n.PID != 0 {
			p.PIDs = append(p.PIDs, n.PID)
		}
		p.Hosts = addHosts(p.Hosts, n.Hosts)
		for _, name := range n.DNSNames {
			names[k][name] = true
		}
		for _, r := range n.Refused {
			blocked[k][blockedEntry(r)] = true
		}
	}
	out := make([]event.Process, 0, len(progs))
	for k, p := range progs {
		slices.Sort(p.PIDs)
		p.DNSNames, p.Blocked = sortedKeys(names[k]), sortedKeys(blocked[k])
		out = append(out, *p)
	}
	slices.SortFunc(out, func(x, y event.Process) int {
		return cmp.Or(cmp.Compare(x.Comm, y.Comm), cmp.Compare(x.Exe, y.Exe))
	})
	return out
}

// addHosts adds more to hosts, summing the entries of the same host:port,
// and keeps them sorted.
func addHosts(hosts, more []event.Host) []event.Host {
	for _, m := range more {
		i, found := slices.BinarySearchFunc(hosts, m, func(x, y event.Host) int {
			return cmp.Or(cmp.Compare(x.Host, y.Host), cmp.Compare(x.Port, y.Port))
		})
		if !found {
			m.Methods = maps(m.Methods)
			hosts = slices.Insert(hosts, i, m)
			continue
		}
		h := &hosts[i]
		for meth, c := range m.Methods {
			h.Methods[meth] += c
		}
		h.Allowed += m.Allowed
		h.Denied += m.Denied
		h.BytesUp += m.BytesUp
		h.BytesDown += m.BytesDown
	}
	return hosts
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
