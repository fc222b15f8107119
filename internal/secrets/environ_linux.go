package secrets

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// scrubEnviron overwrites the values of names with '*' in this process's
// initial environment block, the one the kernel shows as
// /proc/PID/environ. The Go runtime copied it at start and os.Unsetenv
// works on the copy, so without this the block would keep the real values
// for the life of the process.
func scrubEnviron(names []string) error {
	start, end, err := environBounds()
	if err != nil {
		return err
	}
	mem, err := os.OpenFile("/proc/self/mem", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open /proc/self/mem: %w", err)
	}
	defer mem.Close()
	block := make([]byte, end-start)
	defer clear(block)
	if _, err := mem.ReadAt(block, start); err != nil {
		return fmt.Errorf("read the environment block: %w", err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	changed := false
	off := 0
	for _, kv := range bytes.Split(block, []byte{0}) {
		if k, v, ok := bytes.Cut(kv, []byte("=")); ok && want[string(k)] && len(v) > 0 {
			copy(block[off+len(k)+1:], bytes.Repeat([]byte("*"), len(v)))
			changed = true
		}
		off += len(kv) + 1
	}
	if !changed {
		return nil
	}
	if _, err := mem.WriteAt(block, start); err != nil {
		return fmt.Errorf("write the environment block: %w", err)
	}
	return nil
}

// environBounds reads env_start and env_end (fields 50 and 51) of
// /proc/self/stat.
func environBounds() (start, end int64, err error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces: count after its ')'.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 49 {
		return 0, 0, fmt.Errorf("read /proc/self/stat: %d fields", len(f))
	}
	start, err1 := strconv.ParseInt(f[47], 10, 64)
	end, err2 := strconv.ParseInt(f[48], 10, 64)
	if err1 != nil || err2 != nil || end < start {
		return 0, 0, fmt.Errorf("read /proc/self/stat: env_start %q, env_end %q", f[47], f[48])
	}
	return start, end, nil
}
