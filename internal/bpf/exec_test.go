//go:build linux

package bpf

import (
	"encoding/binary"
	"reflect"
	"testing"
	"unsafe"
)

// execRecord lays out a ring buffer record the way the C side fills it.
func execRecord(filename string, args []byte, size uint32) []byte {
	var v jailExecEvent
	v.Pid, v.Ppid, v.Uid = 42, 7, 1000
	copy8(&v.Comm, "true")
	for i := 0; i < len(filename) && i < len(v.Filename)-1; i++ {
		v.Filename[i] = int8(filename[i])
	}
	for i := range args {
		v.Args[i] = int8(args[i])
	}
	v.ArgsLen, v.ArgsSize = uint32(len(args)), size
	raw, err := binary.Append(nil, binary.NativeEndian, &v)
	if err != nil {
		panic(err)
	}
	return raw
}

func TestDecodeExecSplitsArgv(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      string
		size      uint32
		want      []string
		truncated bool
	}{
		{"whole", "/bin/true\x00marker-arg\x00\x00x\x00", 0, []string{"/bin/true", "marker-arg", "", "x"}, false},
		{"cut", "sh\x00-c\x00echo hel", 100, []string{"sh", "-c", "echo hel"}, true},
		{"none", "", 0, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := tc.size
			if size == 0 {
				size = uint32(len(tc.args))
			}
			raw := execRecord("/bin/true", []byte(tc.args), size)
			if len(raw) != int(unsafe.Sizeof(jailExecEvent{})) {
				t.Fatalf("record: %d bytes", len(raw))
			}
			ev, err := decodeExec(raw)
			if err != nil {
				t.Fatal(err)
			}
			want := ExecEvent{PID: 42, PPID: 7, UID: 1000, Comm: "true", Exe: "/bin/true", Argv: tc.want, ArgvTruncated: tc.truncated}
			if !reflect.DeepEqual(ev, want) {
				t.Errorf("got %+v, want %+v", ev, want)
			}
		})
	}
}

func TestDecodeExecRejectsShortRecord(t *testing.T) {
	if _, err := decodeExec(make([]byte, 100)); err == nil {
		t.Error("100-byte record: got nil error")
	}
}
