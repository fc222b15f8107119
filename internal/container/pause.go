package container

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// PausePath is where the pause program is mounted in the pause container.
const PausePath = "/.ebpfjail-pause"

// pauseCode is a loop around a syscall that sleeps until a signal (pause
// on amd64, ppoll with no descriptors on arm64): all the pause container,
// which only holds the network namespace, runs. It is built here, not
// taken from the image, so any image can hold the namespace.
var pauseCode = map[string]struct {
	machine uint16
	code    []byte
}{
	"amd64": {62, []byte{
		0xb8, 0x22, 0x00, 0x00, 0x00, // mov eax, 34 (pause)
		0x0f, 0x05, // syscall
		0xeb, 0xf7, // jmp to the mov
	}},
	"arm64": {183, le32(
		0xd2800000, 0xd2800001, 0xd2800002, 0xd2800003, // mov x0..x3, #0
		0xd2800928, // mov x8, #73 (ppoll)
		0xd4000001, // svc #0
		0x17fffffa, // b to the first mov
	)},
}

func le32(words ...uint32) []byte {
	b := make([]byte, 0, 4*len(words))
	for _, w := range words {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

// pauseELF is a static ELF executable of one loadable segment running the
// pause loop of this machine.
func pauseELF() ([]byte, error) {
	pc, ok := pauseCode[runtime.GOARCH]
	if !ok {
		return nil, fmt.Errorf("no pause program for %s", runtime.GOARCH)
	}
	const base, ehdr, phdr = 0x400000, 64, 56
	size := uint64(ehdr + phdr + len(pc.code))
	b := make([]byte, 0, size)
	b = append(b, 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0) // 64-bit, little endian
	le := binary.LittleEndian
	b = le.AppendUint16(b, 2) // ET_EXEC
	b = le.AppendUint16(b, pc.machine)
	b = le.AppendUint32(b, 1)              // EV_CURRENT
	b = le.AppendUint64(b, base+ehdr+phdr) // entry
	b = le.AppendUint64(b, ehdr)           // program headers
	b = le.AppendUint64(b, 0)              // no section headers
	b = le.AppendUint32(b, 0)              // flags
	b = le.AppendUint16(b, ehdr)
	b = le.AppendUint16(b, phdr)
	b = le.AppendUint16(b, 1) // one program header
	b = le.AppendUint16(b, 64)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, 1)    // PT_LOAD
	b = le.AppendUint32(b, 4|1)  // PF_R|PF_X
	b = le.AppendUint64(b, 0)    // from the file's start
	b = le.AppendUint64(b, base) // vaddr
	b = le.AppendUint64(b, base) // paddr
	b = le.AppendUint64(b, size) // filesz
	b = le.AppendUint64(b, size) // memsz
	b = le.AppendUint64(b, 0x1000)
	return append(b, pc.code...), nil
}

// WritePause writes the pause program into dir, executable by anyone.
func WritePause(dir string) (string, error) {
	b, err := pauseELF()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "pause")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		return "", fmt.Errorf("write pause program: %w", err)
	}
	return p, os.Chmod(p, 0o755)
}
