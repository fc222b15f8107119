package rules

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// typicalRequest is what the proxy hands the engine for an HTTPS request
// from curl.
func typicalRequest() *Request {
	return &Request{
		URL:         "https://api.example.com/v1/messages?beta=true",
		Method:      "GET",
		Scheme:      "https",
		Host:        "api.example.com",
		Port:        443,
		Path:        "/v1/messages",
		RequesterIP: "10.0.0.2",
		Proc:        Proc{PID: 41234, PPID: 41200, UID: 1000, Comm: "curl", Exe: "/usr/bin/curl"},
	}
}

const typicalRule = `r.host === 'api.example.com' && r.method === 'GET'`

func BenchmarkJSTypicalRule(b *testing.B) {
	js, err := NewJS(typicalRule, "bench", benchOptions())
	if err != nil {
		b.Fatal(err)
	}
	ctx, r := context.Background(), typicalRequest()
	b.ReportAllocs()
	for b.Loop() {
		if v := js.Evaluate(ctx, r); !v.Allow {
			b.Fatalf("denied: %+v", v)
		}
	}
}

func BenchmarkJSParallel(b *testing.B) {
	js, err := NewJS(typicalRule, "bench", benchOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx, r := context.Background(), typicalRequest()
		for pb.Next() {
			if v := js.Evaluate(ctx, r); !v.Allow {
				b.Errorf("denied: %+v", v)
				return
			}
		}
	})
}

func BenchmarkParseResult(b *testing.B) {
	for _, tc := range []struct{ name, text string }{
		{"bool", "true\n"},
		{"object", `{"allow":false,"deny_message":"blocked by policy"}`},
		{"max_tx_bytes", `{"allow":{"max_tx_bytes":1024}}`},
		{"text", "not allowed here"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ParseResult(tc.text)
			}
		})
	}
}

// benchOptions uses a long timeout: these machines can stall for seconds,
// and a benchmark must not fail because of it.
func benchOptions() JSOptions {
	return JSOptions{Logger: testutil.DiscardLogger(), Timeout: time.Minute}
}

// BenchmarkLineProcess and BenchmarkShell compare with httpjail's published
// figures (line processor 70-90 µs, shell 0.7-1.6 ms per evaluation).
func BenchmarkLineProcess(b *testing.B) {
	// httpjail's benchmark program: a sh loop answering true.
	script := filepath.Join(b.TempDir(), "rule.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nwhile read -r line; do echo true; done\n"), 0o755); err != nil {
		b.Fatal(err)
	}
	p, err := NewLineProcess(script, ProcOptions{Logger: testutil.DiscardLogger(), Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx, r := context.Background(), typicalRequest()
	b.ReportAllocs()
	for b.Loop() {
		if v := p.Evaluate(ctx, r); !v.Allow {
			b.Fatalf("denied: %+v", v)
		}
	}
}

func BenchmarkShell(b *testing.B) {
	sh, err := NewShell("true", ShellOptions{Logger: testutil.DiscardLogger(), Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	ctx, r := context.Background(), typicalRequest()
	b.ReportAllocs()
	for b.Loop() {
		if v := sh.Evaluate(ctx, r); !v.Allow {
			b.Fatalf("denied: %+v", v)
		}
	}
}
