package profile

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
)

// Start honours two hidden variables for performance work (make bench):
// EBPFJAIL_CPUPROFILE=PATH writes a CPU profile of the
// whole run and EBPFJAIL_MEMPROFILE=PATH a heap profile at exit. Root only,
// like ebpfjail itself: the file is created with root's rights wherever it
// points, so an unprivileged environment must not choose it (--weak runs as
// the user and ignores them). The returned function stops and writes; a
// failure is a line on warn.
func Start(warn io.Writer) (stop func()) {
	cpu, mem := os.Getenv("EBPFJAIL_CPUPROFILE"), os.Getenv("EBPFJAIL_MEMPROFILE")
	if (cpu == "" && mem == "") || os.Geteuid() != 0 {
		return func() {}
	}
	var cpuFile *os.File
	if cpu != "" {
		f, err := os.OpenFile(cpu, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(warn, "ebpfjail: warning: EBPFJAIL_CPUPROFILE: %v\n", err)
		} else {
			cpuFile = f
		}
	}
	return func() {
		if cpuFile != nil {
			pprof.StopCPUProfile()
			cpuFile.Close()
		}
		if mem != "" {
			runtime.GC()
			if err := writeHeap(mem); err != nil {
				fmt.Fprintf(warn, "ebpfjail: warning: EBPFJAIL_MEMPROFILE: %v\n", err)
			}
		}
	}
}

func writeHeap(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return fmt.Errorf("write heap profile: %w", err)
	}
	return nil
}
