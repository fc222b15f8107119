package mounts

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// InfoTable is the calling process's mountinfo (proc(5)): one line per
// mount, with ids, devices and the part of the filesystem each shows.
const InfoTable = "/proc/self/mountinfo"

// Info is one mountinfo line: mount ID shows the part Root of the
// filesystem on device Major:Minor at Point.
type Info struct {
	ID           uint64
	Major, Minor uint32
	Root, Point  string
}

// ReadInfo reads InfoTable.
func ReadInfo() ([]Info, error) {
	b, err := os.ReadFile(InfoTable)
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return ParseInfo(string(b)), nil
}

// ParseInfo reads "ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ..." lines; lines
// it cannot read are skipped.
func ParseInfo(s string) []Info {
	var out []Info
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		id, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		maj, min, ok := strings.Cut(f[2], ":")
		if !ok {
			continue
		}
		major, err1 := strconv.ParseUint(maj, 10, 32)
		minor, err2 := strconv.ParseUint(min, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, Info{ID: id, Major: uint32(major), Minor: uint32(minor), Root: Unescape(f[3]), Point: Unescape(f[4])})
	}
	return out
}
