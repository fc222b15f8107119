package secrets

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckRefusesBadSecretOptions(t *testing.T) {
	for _, c := range []struct {
		name   string
		src    Sources
		noMITM []string
		want   string
	}{
		{"no hosts", Sources{Secrets: []string{"KEY"}}, nil, "wants NAME=HOSTGLOB"},
		{"empty hosts", Sources{Secrets: []string{"KEY="}}, nil, "wants NAME=HOSTGLOB"},
		{"bad name", Sources{Secrets: []string{"1KEY=a.example"}}, nil, "not a variable name"},
		{"name with dash", Sources{Secrets: []string{"MY-KEY=a.example"}}, nil, "not a variable name"},
		{"bad glob", Sources{Secrets: []string{"KEY=a[.example"}}, nil, "not a host glob"},
		{"empty glob", Sources{Secrets: []string{"KEY=a.example,"}}, nil, "not a host glob"},
		{"url not host", Sources{Secrets: []string{"KEY=https://a.example/"}}, nil, "not a host glob"},
		{"twice", Sources{Secrets: []string{"KEY=a.example", "KEY=b.example"}}, nil, "given twice"},
		{"no-mitm exact", Sources{Secrets: []string{"KEY=api.example"}}, []string{"API.example"}, `matches --no-mitm "api.example"`},
		{"no-mitm glob", Sources{Secrets: []string{"KEY=api.example"}}, []string{"*.example"}, "matches --no-mitm"},
		{"secret glob over no-mitm", Sources{Secrets: []string{"KEY=*.example"}}, []string{"pinned.example"}, "matches --no-mitm"},
		{"file without secret", Sources{Secrets: []string{"KEY=a.example"}, Files: []string{"OTHER=/x"}}, nil, "--secret-file OTHER: no --secret OTHER"},
		{"cmd without secret", Sources{Commands: []string{"OTHER=true"}}, nil, "--secret-cmd OTHER: no --secret OTHER"},
		{"in-body without secret", Sources{InBody: []string{"OTHER"}}, nil, "--secret-in-body OTHER: no --secret OTHER"},
		{"cleartext without secret", Sources{Cleartext: []string{"OTHER"}}, nil, "--secret-cleartext OTHER: no --secret OTHER"},
		{"file and cmd", Sources{Secrets: []string{"KEY=a.example"}, Files: []string{"KEY=/x"}, Commands: []string{"KEY=true"}}, nil, "already has a --secret-file"},
		{"file no path", Sources{Secrets: []string{"KEY=a.example"}, Files: []string{"KEY"}}, nil, "wants NAME=PATH"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.src.Check(c.noMITM)
			var e *Error
			if !errors.As(err, &e) || !e.Usage || e.Hint == "" {
				t.Fatalf("got %v, want a usage *Error with a hint", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestCheckAcceptsGoodSecretOptions(t *testing.T) {
	src := Sources{Secrets: []string{"KEY=api.example,*.api.example", "_K2=b.example"}, Files: []string{"KEY=/x"},
		Commands: []string{"_K2=echo v"}, InBody: []string{"KEY"}, Cleartext: []string{"_K2"}}
	specs, err := src.specs([]string{"pinned.example"})
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 || !specs[0].InBody || specs[0].Cleartext || specs[1].InBody || !specs[1].Cleartext ||
		strings.Join(specs[0].Hosts, " ") != "api.example *.api.example" {
		t.Errorf("got %+v", specs)
	}
}

func TestValueComesFromEnvironmentFileOrCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "key")
	os.WriteFile(file, []byte("from-file \n\n"), 0o600)
	env := map[string]string{"E": "from-env", "EMPTY": ""}
	o := LoadOptions{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	files := map[string]string{"F": file, "EMPTYF": filepath.Join(dir, "none")}
	commands := map[string]string{"C": "printf '  from-cmd\\n'"}
	for name, want := range map[string]string{"E": "from-env", "F": "from-file ", "C": "from-cmd"} {
		v, err := value(name, files, commands, o)
		if err != nil || string(v) != want {
			t.Errorf("%s: got %q, %v; want %q", name, v, err, want)
		}
	}
	for name, want := range map[string]string{"MISSING": "not in ebpfjail's environment", "EMPTY": "the value is empty"} {
		_, err := value(name, files, commands, o)
		var e *Error
		if !errors.As(err, &e) || !e.Usage || !strings.Contains(err.Error(), want) || !strings.Contains(e.Hint, "--preserve-env="+name) && name == "MISSING" {
			t.Errorf("%s: got %v (%+v), want a usage error containing %q", name, err, e, want)
		}
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, bytes.Repeat([]byte("k"), MaxValue+10), 0o600)
	files["BIG"] = big
	if _, err := value("BIG", files, commands, o); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a file over %d bytes: got %v, want an error", MaxValue, err)
	}
	_, err := value("EMPTYF", files, commands, o)
	var e *Error
	if !errors.As(err, &e) || e.Usage || !strings.Contains(err.Error(), "--secret-file EMPTYF") {
		t.Errorf("unreadable file: got %v, want a failure naming --secret-file EMPTYF", err)
	}
}

func TestSecretCommandFailuresSayWhy(t *testing.T) {
	for _, c := range []struct {
		cmd     string
		timeout time.Duration
		want    string
	}{
		{"echo 'pass: no such entry' >&2; exit 3", time.Minute, "exit status 3: pass: no such entry"},
		{"sleep 30 & sleep 30", 200 * time.Millisecond, "no answer within 200ms"},
		{"head -c 100000 /dev/zero", time.Minute, "output passed"},
		{"yes", time.Minute, "output passed"},
	} {
		start := time.Now()
		_, err := runCommand(c.cmd, nil, c.timeout)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.cmd, err, c.want)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%q: took %v", c.cmd, d)
		}
	}
}

func TestLoadTakesTheNamesOutOfTheEnvironment(t *testing.T) {
	t.Setenv("EBPFJAIL_TEST_SECRET", "sk-real-value-0123456789abcdef")
	set, err := Load(Sources{Secrets: []string{"EBPFJAIL_TEST_SECRET=api.example"}}, nil, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := os.LookupEnv("EBPFJAIL_TEST_SECRET"); ok {
		t.Error("the real value is still in the environment")
	}
	env := strings.Join(set.Env(), "\n")
	if !strings.HasPrefix(env, "EBPFJAIL_TEST_SECRET=") || strings.Contains(env, "sk-real-value-0123456789abcdef") {
		t.Errorf("Env() = %q, want the placeholder only", env)
	}
}

// TestLoadScrubsTheInitialEnvironment runs the test binary again with a
// secret in its initial environment: after Load, /proc/self/environ shows
// the name with the value overwritten.
func TestLoadScrubsTheInitialEnvironment(t *testing.T) {
	const real = "sk-initial-0123456789abcdefghij"
	if os.Getenv("EBPFJAIL_SCRUB_CHILD") == "1" {
		if _, err := Load(Sources{Secrets: []string{"EBPFJAIL_SCRUB_KEY=api.example"}}, nil, LoadOptions{Warn: func(m string) { t.Error(m) }}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile("/proc/self/environ")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(real)) || !bytes.Contains(b, []byte("EBPFJAIL_SCRUB_KEY=****")) || !bytes.Contains(b, []byte("EBPFJAIL_SCRUB_CHILD=1\x00")) {
			t.Errorf("/proc/self/environ after Load: %q", b)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadScrubsTheInitialEnvironment$", "-test.v")
	cmd.Env = append(os.Environ(), "EBPFJAIL_SCRUB_CHILD=1", "EBPFJAIL_SCRUB_KEY="+real)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Errorf("child: %v\n%s", err, out)
	}
}
