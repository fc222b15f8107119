package secrets

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const (
	realAnthropic = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-abcdefghijKLMNOP_qrstuv-AA"
	realGitHub    = "ghp_0123456789abcdefABCDEF0123456789abcd"
)

func newTestSet(t *testing.T, specs ...Spec) *Set {
	t.Helper()
	s, err := New(specs)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func placeholderOf(t *testing.T, s *Set, name string) string {
	t.Helper()
	for _, kv := range s.Env() {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s in Env %q", name, s.Env())
	return ""
}

func TestPlaceholderKeepsPrefixLengthAndShape(t *testing.T) {
	for _, real := range []string{realAnthropic, realGitHub, "AKIAIOSFODNN7EXAMPLEXYZ1", "0123456789abcdef0123456789abcdef", "xoxb-1234567890-abcdefghijklmnop"} {
		s := newTestSet(t, Spec{Name: "K", Hosts: []string{"h.test"}, Value: []byte(real)})
		ph := placeholderOf(t, s, "K")
		if len(ph) != len(real) || ph == real {
			t.Fatalf("placeholder %q for %q: want same length, different", ph, real)
		}
		sc := s.secrets[0]
		if ph[:sc.prefix] != real[:sc.prefix] {
			t.Errorf("placeholder %q lost the prefix of %q", ph, real)
		}
		for i := range real {
			if classOf(real[i]) == "" && ph[i] != real[i] {
				t.Errorf("placeholder %q: byte %d is %q, want %q kept", ph, i, ph[i], real[i])
			}
			if isHex([]byte(real[sc.prefix:])) {
				continue
			}
			if (classOf(real[i]) == "") != (classOf(ph[i]) == "") || (classOf(real[i]) != "" && classOf(real[i]) != classOf(ph[i])) {
				t.Errorf("placeholder %q: byte %d class differs from %q", ph, i, real)
			}
		}
	}
	s := newTestSet(t, Spec{Name: "A", Hosts: []string{"x"}, Value: []byte(realAnthropic)})
	if ph := placeholderOf(t, s, "A"); !strings.HasPrefix(ph, "sk-ant-api03-") {
		t.Errorf("placeholder %q: want the sk-ant-api03- prefix", ph)
	}
	if h := placeholderOf(t, newTestSet(t, Spec{Name: "H", Hosts: []string{"x"}, Value: []byte("0123456789abcdef0123456789abcdef")}), "H"); strings.Trim(h, "0123456789abcdef") != "" {
		t.Errorf("hex value got placeholder %q, want hex", h)
	}
}

func TestNewRefusesBadSpecsWithoutTheValue(t *testing.T) {
	for _, tc := range []struct {
		specs []Spec
		want  string
	}{
		{[]Spec{{Name: "SHORT", Hosts: []string{"h"}, Value: []byte("sk-tooShort99")}}, "too short"},
		{[]Spec{{Name: "EMPTY", Hosts: []string{"h"}}}, "empty"},
		{[]Spec{{Name: "NOHOST", Value: []byte(realGitHub)}}, "no host"},
		{[]Spec{{Name: "BADGLOB", Hosts: []string{"[x"}, Value: []byte(realGitHub)}}, "does not parse"},
		{[]Spec{{Name: "NEWLINE", Hosts: []string{"h"}, Value: []byte(realGitHub + "\n")}}, "control character"},
		{[]Spec{{Name: "D", Hosts: []string{"h"}, Value: []byte(realGitHub)}, {Name: "D", Hosts: []string{"h"}, Value: []byte(realGitHub)}}, "twice"},
	} {
		_, err := New(tc.specs)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.specs[0].Name) {
			t.Errorf("New(%s): got %v, want an error naming it and saying %q", tc.specs[0].Name, err, tc.want)
		}
		if err != nil && len(tc.specs[0].Value) > 0 && strings.Contains(err.Error(), string(tc.specs[0].Value)) {
			t.Errorf("error %q holds the value", err)
		}
	}
	if s, err := New(nil); s != nil || err != nil {
		t.Errorf("New(nil) = %v, %v; want nil, nil", s, err)
	}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestRequestSwapsEveryHeadSpellingForItsHost(t *testing.T) {
	s := newTestSet(t, Spec{Name: "API_KEY", Hosts: []string{"*.api.test", "api.test"}, Value: []byte(realAnthropic)})
	ph := placeholderOf(t, s, "API_KEY")
	r, _ := http.NewRequest("GET", "https://api.test/v1?key="+url.QueryEscape(ph)+"&x=1", nil)
	r.Header.Set("Authorization", "Bearer "+ph)
	r.Header.Set("X-Api-Key", ph)
	r.Header.Set("Proxy-Authorization", basic("user", ph))
	r.Header.Set("X-Custom", "a="+ph+";b")
	orig, origURL := r.Header, r.URL
	if m := s.Check(r, "EU.api.test", true); m != nil {
		t.Fatalf("Check = %+v; want no misuse", m)
	}
	if !s.Swap(r, "EU.api.test", true) {
		t.Fatalf("Swap = false; want swapped")
	}
	for k, want := range map[string]string{
		"Authorization": "Bearer " + realAnthropic, "X-Api-Key": realAnthropic,
		"Proxy-Authorization": basic("user", realAnthropic), "X-Custom": "a=" + realAnthropic + ";b",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	if got := r.URL.Query().Get("key"); got != realAnthropic {
		t.Errorf("query key: got %q, want the real value", got)
	}
	if strings.Contains(orig.Get("Authorization"), realAnthropic) || strings.Contains(origURL.RawQuery, "AbCd") {
		t.Errorf("the original header or URL (what the rule and logs saw) got the real value")
	}
}

func TestRequestMisuse(t *testing.T) {
	s := newTestSet(t, Spec{Name: "GH", Hosts: []string{"api.github.com"}, Value: []byte(realGitHub)})
	ph := placeholderOf(t, s, "GH")
	for _, tc := range []struct {
		name, host, where string
		secure            bool
		set               func(r *http.Request)
	}{
		{"other host header", "paste.test", "header:x-leak", true, func(r *http.Request) { r.Header.Set("X-Leak", ph) }},
		{"other host basic", "paste.test", "header:authorization", true, func(r *http.Request) { r.Header.Set("Authorization", basic(ph, "")) }},
		{"other host query", "paste.test", "query", true, func(r *http.Request) { r.URL.RawQuery = "q=" + ph }},
		{"other host path", "paste.test", "path", true, func(r *http.Request) { r.URL.Path = "/" + ph }},
		{"plain http", "api.github.com", "header:authorization", false, func(r *http.Request) { r.Header.Set("Authorization", "token "+ph) }},
		{"in the host", "api.github.com", "host", true, func(r *http.Request) { r.Host = strings.ToLower(ph[4:30]) + ".api.github.com" }},
	} {
		r, _ := http.NewRequest("GET", "https://"+tc.host+"/", nil)
		tc.set(r)
		m := s.Check(r, tc.host, tc.secure)
		swapped := s.Swap(r, tc.host, tc.secure)
		if swapped || m == nil || m.Secret != "GH" || m.Where != tc.where {
			t.Errorf("%s: got %v, %+v; want misuse of GH in %s", tc.name, swapped, m, tc.where)
		}
		if strings.Contains(r.Header.Get("Authorization")+r.URL.String(), realGitHub) {
			t.Errorf("%s: the real value went into the request", tc.name)
		}
	}
	r, _ := http.NewRequest("GET", "http://api.github.com/", nil)
	cs := newTestSet(t, Spec{Name: "GH", Hosts: []string{"api.github.com"}, Value: []byte(realGitHub), Cleartext: true})
	r.Header.Set("Authorization", "token "+placeholderOf(t, cs, "GH"))
	if m := cs.Check(r, "api.github.com", false); m != nil || !cs.Swap(r, "api.github.com", false) {
		t.Errorf("--secret-cleartext over plain HTTP: got %+v, want swapped", m)
	}
}

// oneByte reads one byte at a time: every match is split across reads.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

func TestRequestBodySwapsAndStopsAtMisuse(t *testing.T) {
	s := newTestSet(t,
		Spec{Name: "IN", Hosts: []string{"api.test"}, Value: []byte(realAnthropic), InBody: true},
		Spec{Name: "GH", Hosts: []string{"github.test"}, Value: []byte(realGitHub)})
	in, gh := placeholderOf(t, s, "IN"), placeholderOf(t, s, "GH")
	body := `{"key":"` + in + `","again":"` + in + `"}`
	got, err := io.ReadAll(s.RequestBody(io.NopCloser(oneByte{strings.NewReader(body)}), "api.test", true))
	if want := strings.ReplaceAll(body, in, realAnthropic); err != nil || string(got) != want {
		t.Errorf("in-body swap: got %q, %v; want %q", got, err, want)
	}
	leak := "text=hello+" + gh + "+bye"
	got, err = io.ReadAll(s.RequestBody(io.NopCloser(oneByte{strings.NewReader(leak)}), "paste.test", true))
	var me *MisuseError
	if !asMisuse(err, &me) || me.Misuse.Secret != "GH" || me.Misuse.Where != "body" || strings.Contains(string(got), gh[:len(gh)-1]) {
		t.Errorf("body to another host: got %q, %v; want a GH body misuse before the placeholder", got, err)
	}
	if strings.Contains(err.Error(), realGitHub) {
		t.Errorf("error %q holds the real value", err)
	}
	got, err = io.ReadAll(s.RequestBody(io.NopCloser(strings.NewReader(gh)), "github.test", true))
	if err != nil || string(got) != gh {
		t.Errorf("GH's placeholder to its host without --secret-in-body: got %q, %v; want it untouched", got, err)
	}
}

func asMisuse(err error, me **MisuseError) bool {
	m, ok := err.(*MisuseError)
	*me = m
	return ok
}

func TestResponseRedactsEchoedValues(t *testing.T) {
	s := newTestSet(t, Spec{Name: "K", Hosts: []string{"api.test"}, Value: []byte(realAnthropic)})
	ph := placeholderOf(t, s, "K")
	body := strings.Repeat("x", 40000) + "invalid key " + realAnthropic + " end"
	res := &http.Response{StatusCode: 401, Header: http.Header{"X-Echo": {realAnthropic}}, Trailer: http.Header{}}
	res.Body = io.NopCloser(io.MultiReader(oneByte{strings.NewReader(body)}, trailerAtEOF{res.Trailer}))
	if err := s.Response(res); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	if tr := res.Trailer.Get("X-Trailer"); tr != "t="+ph {
		t.Errorf("trailer: got %q, want the placeholder", tr)
	}
	if want := strings.ReplaceAll(body, realAnthropic, ph); string(got) != want || res.Header.Get("X-Echo") != ph {
		t.Errorf("response: body ends %q, header %q; want the placeholder in both", got[len(got)-120:], res.Header.Get("X-Echo"))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	io.WriteString(zw, "echo "+realAnthropic)
	zw.Close()
	res = &http.Response{StatusCode: 200, Header: http.Header{"Content-Encoding": {"gzip"}}, Body: io.NopCloser(&gz)}
	if err := s.Response(res); err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(res.Body); string(got) != "echo "+ph || res.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip response: got %q (Content-Encoding %q), want it plain with the placeholder", got, res.Header.Get("Content-Encoding"))
	}
	res = &http.Response{StatusCode: 200, Header: http.Header{"Content-Encoding": {"br"}}, Body: io.NopCloser(&bytes.Buffer{})}
	if err := s.Response(res); err == nil {
		t.Errorf("a br body: got no error, want one (it cannot be checked)")
	}
}

func TestInNameFoldsCaseAndDots(t *testing.T) {
	s := newTestSet(t, Spec{Name: "K", Hosts: []string{"api.test"}, Value: []byte(realAnthropic)})
	ph := placeholderOf(t, s, "K")
	core := strings.ToUpper(ph[13:40])
	split := core[:10] + "." + core[10:] + ".evil.test"
	if got := s.InName(split); got != "K" {
		t.Errorf("InName(%q) = %q, want K", split, got)
	}
	if got := s.InName("api.test"); got != "" {
		t.Errorf("InName(api.test) = %q, want none", got)
	}
	sc := s.NewScanner(1 << 16)
	if got := sc.Check([]byte("PASS " + ph[:30])); got != "" {
		t.Errorf("Check(first half) = %q, want none yet", got)
	}
	if got := sc.Check([]byte(ph[30:] + "\r\n")); got != "K" {
		t.Errorf("Check(second half) = %q, want K", got)
	}
}

// trailerAtEOF sets a trailer holding the real value as the body ends, as
// net/http fills trailers.
type trailerAtEOF struct{ h http.Header }

func (t trailerAtEOF) Read([]byte) (int, error) {
	t.h.Set("X-Trailer", "t="+realAnthropic)
	return 0, io.EOF
}
