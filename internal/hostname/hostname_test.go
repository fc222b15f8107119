package hostname

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for name, want := range map[string]bool{
		"example.com": true, "a-b_c.example": true, "xn--bcher-kva.example": true, "localhost": true,
		"": false, ".": false, "a..b": false, "Example.com": false, "a b": false, "good.example#.evil.example": false,
		"evil.example/.good": false, "host:443": false, "[::1]": false, "a%zz": false,
		strings.Repeat("a", 64) + ".example": false, strings.Repeat("a.", 127) + "a": false,
	} {
		if got := Valid(name); got != want {
			t.Errorf("Valid(%q): got %v, want %v", name, got, want)
		}
	}
}

func TestSpelling(t *testing.T) {
	for _, tc := range []struct{ in, fold, norm, bracket string }{
		{"Example.COM.", "example.com", "example.com", "Example.COM."},
		{"example.com", "example.com", "example.com", "example.com"},
		{"[2001:DB8::1]", "[2001:db8::1]", "2001:db8::1", "[2001:DB8::1]"},
		{"2001:db8::1", "2001:db8::1", "2001:db8::1", "[2001:db8::1]"},
		{"[a", "[a", "a", "[a"},
		{"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1"},
		{".", "", "", "."},
		{"A:b.", "a:b", "a:b", "A:b."},
		{"fe80::1%eth0", "fe80::1%eth0", "fe80::1%eth0", "[fe80::1%eth0]"},
		{"", "", "", ""},
	} {
		if got := Fold(tc.in); got != tc.fold {
			t.Errorf("Fold(%q): got %q, want %q", tc.in, got, tc.fold)
		}
		if got := Normalize(tc.in); got != tc.norm {
			t.Errorf("Normalize(%q): got %q, want %q", tc.in, got, tc.norm)
		}
		if got := Bracket(tc.in); got != tc.bracket {
			t.Errorf("Bracket(%q): got %q, want %q", tc.in, got, tc.bracket)
		}
	}
	if got, want := JoinPort("::1", 8080), "[::1]:8080"; got != want {
		t.Errorf("JoinPort: got %q, want %q", got, want)
	}
	if got, want := JoinPort("example.com", 443), "example.com:443"; got != want {
		t.Errorf("JoinPort: got %q, want %q", got, want)
	}
}
