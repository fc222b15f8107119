package jail

import (
	"errors"
	"strings"
	"testing"
)

func TestIsolationLayersSayWhatHoldsAndWhatIsMissing(t *testing.T) {
	for _, tc := range []struct {
		name         string
		iso          Isolation
		openAbstract bool
		held         int
		missing      string
	}{
		{"no landlock", Isolation{Err: errors.New("landlock: EOPNOTSUPP")}, false, 0, "Landlock (landlock: EOPNOTSUPP)"},
		{"ptrace only", Isolation{ABI: 5}, false, 1, "Landlock scopes (ABI 5 < 6"},
		{"everything", Isolation{ABI: 7}, false, 3, ""},
		{"abstract opened", Isolation{ABI: 7}, true, 2, "off because of --allow-unix @NAME"},
	} {
		held, missing := tc.iso.Layers(tc.openAbstract)
		if len(held) != tc.held {
			t.Errorf("%s: %d layers hold (%q), want %d", tc.name, len(held), held, tc.held)
		}
		got := strings.Join(missing, "; ")
		if (tc.missing == "") != (got == "") || !strings.Contains(got, tc.missing) {
			t.Errorf("%s: missing %q, want it to contain %q", tc.name, got, tc.missing)
		}
	}
}

func TestProbeIsolationAgreesWithItsError(t *testing.T) {
	iso := ProbeIsolation()
	if (iso.ABI == 0) != (iso.Err != nil) {
		t.Fatalf("got ABI %d, err %v: want exactly one", iso.ABI, iso.Err)
	}
}
