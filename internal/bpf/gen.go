package bpf

// The object is generated with Debian's clang and committed, so `go build`
// needs no C toolchain; `make check-generated` proves the copy is fresh.
//go:generate go tool bpf2go -cc ${BPF_CLANG} -tags linux -target bpfel -type orig_dst -type tuple_key -type exec_event -type exec_id -type proc_exe -type refused_event -type inbound_key -type inbound_count jail ../../bpf/jail.c -- -I../../bpf -I../../bpf/include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror

// The kernel splice is an object of its own: it is loaded once per
// ebpfjail, not per jail, and a kernel that refuses it refuses only it.
//go:generate go tool bpf2go -cc ${BPF_CLANG} -tags linux -target bpfel -type splice_side splice ../../bpf/splice.c -- -I../../bpf -I../../bpf/include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
