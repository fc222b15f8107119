// Package jail owns a jail's life outside the kernel programs: the cgroup v2
// it runs in, the command started inside it, the state record that lets a
// later run clean up after a dead supervisor, and that cleanup.
//
// Invariants:
//   - The command is born inside the cgroup (CLONE_INTO_CGROUP), so there is
//     no moment in which it or a child runs unjailed; ebpfjail itself stays
//     outside, so its own dials are not steered.
//   - The command never runs as root unless asked for by name (--user root):
//     on a cgroup2 mount without nsdelegate a root child can write its pid
//     into the root cgroup and leave the jail.
//   - It runs with no_new_privs, so no setuid binary gives it root back, and
//     it inherits no descriptor beyond 0-2.
//   - It runs under a seccomp filter (seccomp.go) that lets socket() make
//     only unix, inet, inet6 and netlink sockets and refuses io_uring: the
//     cgroup hooks steer inet sockets, and nothing else may leave.
//   - It runs in a mount namespace of its own (a slave of the host's) in
//     which the denied unix sockets are covered by /dev/null (mask.go), so
//     no spelling of their paths reaches them. The mounts are made before
//     anything that forbids mount changes; a mask that cannot be made stops
//     the start.
//   - It runs in a Landlock domain of its own (landlock.go): no ptrace,
//     memory, environ or pidfd_getfd access to processes outside it, and,
//     with the scopes, no signals to them and no connections to abstract
//     unix sockets they bound. ebpfjail and its rule programs stay outside.
//   - The state record is written before the cgroup is made and removed
//     last, so anything a crashed run left behind is found by Sweep.
//   - On teardown the cgroup's processes are killed before the programs are
//     detached: nothing of the jail ever runs unsteered.
//
// Off Linux only what --weak needs builds: User, Command, StartUnjailed and
// CloseInheritedFDs (spawn_other.go).
//
// This package does not load BPF; it only removes pin files it is told of.
// Minimum kernel: 5.14 (cgroup.kill), CLONE_INTO_CGROUP needs 5.7.
package jail
