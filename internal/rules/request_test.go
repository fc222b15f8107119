package rules

import (
	"net/url"
	"reflect"
	"testing"
)

func TestNewRequest(t *testing.T) {
	proc := Proc{PID: 7, PPID: 1, UID: 1000, Comm: "curl", Exe: "/usr/bin/curl"}
	for _, tc := range []struct {
		method string
		d      Dest
		target string // request-target parsed into u; "-" for nil
		url    string
		path   string
	}{
		{"GET", Dest{"http", "example.com", 80}, "/x?y=1", "http://example.com/x?y=1", "/x"},
		{"GET", Dest{"http", "example.com", 8080}, "/", "http://example.com:8080/", "/"},
		{"GET", Dest{"https", "example.com", 443}, "/a%2Fb", "https://example.com/a%2Fb", "/a/b"},
		{"GET", Dest{"https", "example.com", 80}, "/", "https://example.com:80/", "/"},
		{"POST", Dest{"http", "2001:db8::1", 8080}, "/p", "http://[2001:db8::1]:8080/p", "/p"},
		{"OPTIONS", Dest{"http", "example.com", 80}, "*", "http://example.com/*", "*"},
		// Absolute-form without a path: the URL gets one, Path stays "".
		{"GET", Dest{"http", "example.com", 80}, "http://example.com", "http://example.com/", ""},
		{"CONNECT", Dest{"tcp", "2001:db8::1", 22}, "-", "tcp://[2001:db8::1]:22", ""},
		{"CONNECT", Dest{"tcp", "192.0.2.1", 5432}, "-", "tcp://192.0.2.1:5432", ""},
		{"CONNECT", Dest{"https", "example.com", 443}, "-", "https://example.com:443", ""},
		{"QUERY", Dest{"dns", "example.com", 53}, "-", "dns://example.com", ""},
		{"QUERY", Dest{"dns", "a:b", 53}, "-", "dns://a:b", ""},
	} {
		var u *url.URL
		if tc.target != "-" {
			var err error
			if u, err = url.ParseRequestURI(tc.target); err != nil {
				t.Fatalf("%s: %v", tc.target, err)
			}
		}
		got := NewRequest(tc.method, tc.d, u, "10.0.0.1", proc)
		want := &Request{
			URL: tc.url, Method: tc.method, Scheme: tc.d.Scheme, Host: tc.d.Host, Port: tc.d.Port,
			Path: tc.path, RequesterIP: "10.0.0.1", Proc: proc,
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("NewRequest(%s %+v %q):\n got %+v\nwant %+v", tc.method, tc.d, tc.target, got, want)
		}
	}
}

func TestRequestFromURL(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want *Request
	}{
		{"http://A.test", &Request{URL: "http://A.test", Method: "GET", Scheme: "http", Host: "a.test", Port: 80, Path: "/", RequesterIP: "127.0.0.1"}},
		{"https://a.test:8443/x%2Fy?q=1", &Request{URL: "https://a.test:8443/x%2Fy?q=1", Method: "GET", Scheme: "https", Host: "a.test", Port: 8443, Path: "/x/y", RequesterIP: "127.0.0.1"}},
		{"https://[2001:DB8::1]/", &Request{URL: "https://[2001:DB8::1]/", Method: "GET", Scheme: "https", Host: "2001:db8::1", Port: 443, Path: "/", RequesterIP: "127.0.0.1"}},
		{"https://a.test./", &Request{URL: "https://a.test./", Method: "GET", Scheme: "https", Host: "a.test.", Port: 443, Path: "/", RequesterIP: "127.0.0.1"}},
	} {
		got, err := RequestFromURL("GET", tc.raw)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("RequestFromURL(%q):\n got %+v, %v\nwant %+v", tc.raw, got, err, tc.want)
		}
	}
	for raw, want := range map[string]string{
		"ftp://a.test/":                       `want an http or https URL, got "ftp://a.test/"`,
		"http:///x":                           `want an http or https URL, got "http:///x"`,
		"http://a.test:99999999999999999999/": `bad port in "http://a.test:99999999999999999999/"`,
		"http://a.test:x/":                    `parse "http://a.test:x/": invalid port ":x" after host`,
	} {
		if _, err := RequestFromURL("GET", raw); err == nil || err.Error() != want {
			t.Errorf("RequestFromURL(%q): got %v, want %s", raw, err, want)
		}
	}
}
