package supervisor

import (
	"bytes"
	"errors"
	"testing"
)

func TestLoggerWritesOneLineFormatAtEveryVerbosity(t *testing.T) {
	for v, want := range map[int]string{
		0: "ebpfjail: warning: detach programs err=\"no such link\"\n",
		1: "ebpfjail: command started pid=42 jail=1-ab\n" +
			"ebpfjail: warning: detach programs err=\"no such link\"\n",
		2: "ebpfjail: debug: dns shim component=dns malformed_queries=0 note=\"\"\n" +
			"ebpfjail: command started pid=42 jail=1-ab\n" +
			"ebpfjail: warning: detach programs err=\"no such link\"\n",
	} {
		var b bytes.Buffer
		log := NewLogger(&b, v)
		log.With("component", "dns").Debug("dns shim", "malformed_queries", 0, "note", "")
		log.Info("command started", "pid", 42, "jail", "1-ab")
		log.Warn("detach programs", "err", errors.New("no such link"))
		if b.String() != want {
			t.Errorf("-v x%d: got\n%s\nwant\n%s", v, b.String(), want)
		}
	}
}
