// Package mounts finds filesystems in the kernel's mount table: where the
// cgroup2 hierarchy and bpffs are mounted. It is the one reader of
// /proc/mounts, shared by the jail, its tests and the attempts that try to
// leave a jail; it imports nothing of ebpfjail.
package mounts
