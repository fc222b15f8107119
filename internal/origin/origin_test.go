package origin

import (
	"os/exec"
	"strings"
	"testing"
)

// The proxy and the DNS shim take an Origin from this package, not from
// internal/bpf: importing the loader for a plain struct linked the whole
// eBPF library into them.
func TestConsumersDoNotLinkTheLoader(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not found")
	}
	const module = "github.com/ebpfjail/ebpfjail/"
	out, err := exec.Command(goTool, "list", "-deps", module+"internal/proxy", module+"internal/dns").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for pkg := range strings.FieldsSeq(string(out)) {
		if strings.HasPrefix(pkg, "github.com/cilium/ebpf") || pkg == module+"internal/bpf" {
			t.Errorf("proxy or dns depends on %s", pkg)
		}
	}
}
