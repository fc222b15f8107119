package secrets

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"
)

// FuzzSwap streams arbitrary bodies, cut at arbitrary points, through the
// replacer and the Basic decoding: the output is the input with every
// placeholder swapped (never a partial or a lost byte), and nothing
// panics.
func FuzzSwap(f *testing.F) {
	s, err := New([]Spec{{Name: "K", Hosts: []string{"h.test"}, Value: []byte(realGitHub), InBody: true}})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	ph := s.secrets[0].placeholder
	f.Add([]byte("a"+string(ph)+"b"), uint8(3), "Basic Zm9vOmJhcg==")
	f.Add(ph[:10], uint8(1), "basic "+string(ph))
	f.Add([]byte(string(ph)+string(ph[:20])), uint8(7), "Basic !!!")
	f.Fuzz(func(t *testing.T, body []byte, cut uint8, header string) {
		src := &chunked{b: body, n: int(cut)%17 + 1}
		got, err := io.ReadAll(s.RequestBody(io.NopCloser(src), "h.test", true))
		if want := bytes.ReplaceAll(body, ph, []byte(realGitHub)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("body %q cut every %d: got %q, %v; want %q", body, src.n, got, err, want)
		}
		src = &chunked{b: body, n: int(cut)%13 + 1}
		got, err = io.ReadAll(s.RequestBody(io.NopCloser(src), "other.test", true))
		var me *MisuseError
		if bytes.Contains(got, ph) || bytes.Contains(body, ph) != errors.As(err, &me) {
			t.Fatalf("body %q to another host: got %q, %v; want it cut before the placeholder, with a misuse error if it had one", body, got, err)
		}
		r, _ := http.NewRequest("GET", "https://h.test/", nil)
		r.Header.Set("Authorization", header)
		s.Check(r, "other.test", true)
		s.Swap(r, "h.test", true)
		s.InName(header)
	})
}

// chunked reads n bytes at a time.
type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[n:]
	return n, nil
}
