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
