package secrets

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkCheckAndSwap is the per-request cost of one secret on a
// request with a dozen headers to the secret's host.
func BenchmarkCheckAndSwap(b *testing.B) {
	s, err := New([]Spec{{Name: "K", Hosts: []string{"api.test"}, Value: []byte(realAnthropic)}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ph := strings.TrimPrefix(s.Env()[0], "K=")
	r, _ := http.NewRequest("POST", "https://api.test/v1/messages?beta=true", nil)
	for _, h := range []string{"Accept", "User-Agent", "Content-Type", "Anthropic-Version", "X-Stainless-Os", "X-Stainless-Lang", "X-Stainless-Runtime", "Anthropic-Beta", "Connection", "Accept-Language", "X-App"} {
		r.Header.Set(h, "some ordinary value of a header/1.0")
	}
	r.Header.Set("X-Api-Key", ph)
	b.ReportAllocs()
	for b.Loop() {
		rr := *r
		if s.Check(&rr, "api.test", true) != nil || !s.Swap(&rr, "api.test", true) {
			b.Fatal("no swap")
		}
	}
}

// BenchmarkBodyScan is the cost of scanning a 1 MiB body for placeholders.
func BenchmarkBodyScan(b *testing.B) {
	s, err := New([]Spec{{Name: "K", Hosts: []string{"api.test"}, Value: []byte(realAnthropic)}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := strings.Repeat(`{"role":"user","content":"some text sk- with s and k"}`, 1<<20/52)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		io.Copy(io.Discard, s.RequestBody(io.NopCloser(strings.NewReader(body)), "other.test", true))
	}
}
