package event

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the samples")

// samples are one event of each type (two connections: the two kinds a
// user meets), as the producers fill them. Between them they set every
// field of Event, so the golden files show every field's encoding.
func samples() map[string]Event {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	return map[string]Event{
		"request": {
			V: Version, Type: TypeRequest, Time: at("2026-01-02T03:04:05.678Z"),
			Verdict: Allow, Reason: "rule",
			PID: 1234, PPID: 1200, UID: 1000, Comm: "curl", Exe: "/usr/bin/curl",
			Method: "POST", URL: "https://api.example.test/v1/items?page=2", Scheme: "https",
			Host: "api.example.test", Port: 443, Dst: "198.18.0.7:443", Status: 201,
			BytesUp: 180, BytesDown: 1234, DurationMS: 12.345,
		},
		"connection-tcp": {
			V: Version, Type: TypeConnection, Time: at("2026-01-02T03:04:06.001Z"),
			Verdict: Deny, Reason: "non-HTTP", Hint: "--tcp lets the rule decide non-HTTP connections",
			PID: 99, PPID: 1200, UID: 1000, Comm: "nc", Exe: "/usr/bin/nc.openbsd",
			URL: "tcp://ssh.example.test:22", Scheme: "tcp", Host: "ssh.example.test", Port: 22, Dst: "198.18.0.9:22",
		},
		"connection-tls": {
			V: Version, Type: TypeConnection, Time: at("2026-01-02T03:04:07Z"),
			Verdict: Deny, Reason: "TLS handshake failed: remote error: tls: unknown certificate authority",
			Hint: "the client may not trust the ebpfjail CA: use --no-mitm x.example.test, or point the variable its runtime reads (SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE, ...) at the bundle",
			PID:  5, PPID: 1, UID: 1000, Comm: "node", Exe: "/usr/bin/node",
			URL: "https://x.example.test:443", Scheme: "https", Host: "x.example.test", Port: 443, Dst: "198.18.0.11:443",
		},
		"dns": {
			V: Version, Type: TypeDNS, Time: at("2026-01-02T03:04:05.601Z"),
			Verdict: Allow, PID: 1234, UID: 1000, Comm: "curl", Scheme: "dns", DurationMS: 0.042,
			Name: "api.example.test", QType: "A", Rcode: "NOERROR", Answer: "198.18.0.7",
		},
		"exec": {
			V: Version, Type: TypeExec, Time: at("2026-01-02T03:04:05.5Z"),
			PID: 1234, PPID: 1200, UID: 1000, Comm: "curl", Exe: "/usr/bin/curl",
			Argv: []string{"curl", "-s", "https://api.example.test/v1/items"},
		},
		"secret_misuse": {
			V: Version, Type: TypeSecretMisuse, Time: at("2026-01-02T03:04:08.25Z"),
			Verdict: Deny, Reason: "placeholder of ANTHROPIC_API_KEY sent to a host it does not belong to",
			PID: 1234, PPID: 1200, UID: 1000, Comm: "node", Exe: "/usr/bin/node",
			Method: "POST", URL: "https://paste.example.test/api", Scheme: "https", Host: "paste.example.test", Port: 443,
			Dst: "198.18.0.12:443", Secret: "ANTHROPIC_API_KEY", Where: "header:x-api-key",
		},
		"summary": {
			V: Version, Type: TypeSummary, Time: at("2026-01-02T03:04:09.123Z"),
			Summary: &Summary{ExitStatus: 0, DurationMS: 3500.25, Processes: []Process{
				{
					Comm: "curl", Exe: "/usr/bin/curl", PIDs: []uint32{1234},
					Hosts: []Host{{
						Host: "api.example.test", Port: 443, Methods: map[string]int{"GET": 1, "POST": 1},
						Allowed: 1, Denied: 1, BytesUp: 180, BytesDown: 1234,
					}},
					DNSNames: []string{"api.example.test"},
				},
				{Comm: "nc", Exe: "/usr/bin/nc.openbsd", PIDs: []uint32{99}, Blocked: []string{"tcp://ssh.example.test:22"}},
			}},
		},
	}
}

// TestGolden pins the JSON of each sample: a diff here is a change to the
// public format, which must follow SCHEMA.md's versioning rule.
func TestGolden(t *testing.T) {
	for name, e := range samples() {
		t.Run(name, func(t *testing.T) {
			got, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("JSON changed (go test -update rewrites the golden file, then update SCHEMA.md):\n got: %s\nwant: %s", got, want)
			}

			// Round trip: decoding and encoding again gives the same bytes,
			// so no field loses information on the way (time precision,
			// number types).
			var back Event
			if err := json.Unmarshal(want, &back); err != nil {
				t.Fatal(err)
			}
			again, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(append(again, '\n'), want) {
				t.Errorf("round trip:\n got: %s\nwant: %s", again, want)
			}
		})
	}
}

// TestSamplesCoverEveryField makes the examples show every field of
// Event at least once.
func TestSamplesCoverEveryField(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range samples() {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for k := range m {
			seen[k] = true
		}
	}
	for _, tag := range jsonTags(reflect.TypeFor[Event]()) {
		if !seen[tag] {
			t.Errorf("no sample sets %q", tag)
		}
	}
}

func schemaDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("SCHEMA.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSchemaDocumentsEveryField keeps SCHEMA.md honest both ways: every
// JSON field of the types is documented (as `name` in a table row), and
// every table row names a field that exists.
func TestSchemaDocumentsEveryField(t *testing.T) {
	doc := schemaDoc(t)
	documented := map[string]bool{}
	// "| `bytes_up` |" and "| `summary.exit_status` |": the first cell of
	// a field table.
	row := regexp.MustCompile("(?m)^\\| `([a-z_.]+)`\\s+\\|")
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		name := m[1]
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		documented[name] = true
	}
	var all []string
	for _, typ := range []reflect.Type{reflect.TypeFor[Event](), reflect.TypeFor[Summary](), reflect.TypeFor[Process](), reflect.TypeFor[Host]()} {
		for _, tag := range jsonTags(typ) {
			all = append(all, tag)
			if !documented[tag] {
				t.Errorf("%s.%s: no table row for `%s` in SCHEMA.md", typ.Name(), tag, tag)
			}
		}
	}
	for _, typ := range []string{TypeRequest, TypeConnection, TypeDNS, TypeExec, TypeSummary, TypeSecretMisuse} {
		documented[typ] = true // the table of types has a row per type
	}
	for name := range documented {
		if !slices.Contains(all, name) && !isType(name) {
			t.Errorf("SCHEMA.md documents `%s`, which is no field", name)
		}
	}
}

func isType(s string) bool {
	return s == TypeRequest || s == TypeConnection || s == TypeDNS || s == TypeExec || s == TypeSummary || s == TypeSecretMisuse
}

// TestSchemaSectionsAndExamples checks that each type has its section and
// that each golden line is quoted in SCHEMA.md as is, so the examples a
// reader copies are what ebpfjail writes.
func TestSchemaSectionsAndExamples(t *testing.T) {
	doc := schemaDoc(t)
	if !strings.HasPrefix(doc, "# ebpfjail event schema, version 1\n") || Version != 1 {
		t.Errorf("SCHEMA.md's title must name version %d", Version)
	}
	for _, typ := range []string{TypeRequest, TypeConnection, TypeDNS, TypeExec, TypeSummary, TypeSecretMisuse} {
		if !strings.Contains(doc, "\n## `"+typ+"`\n") {
			t.Errorf("SCHEMA.md has no section \"## `%s`\"", typ)
		}
	}
	for name := range samples() {
		want, err := os.ReadFile(filepath.Join("testdata", name+".golden"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(doc, "```json\n"+string(want)+"```\n") {
			t.Errorf("SCHEMA.md does not quote testdata/%s.golden in a json block:\n%s", name, want)
		}
	}
}

// jsonTags returns the JSON names of typ's fields, in order.
func jsonTags(typ reflect.Type) []string {
	var out []string
	for f := range typ.Fields() {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}
