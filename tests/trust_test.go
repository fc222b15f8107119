package tests

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebpfjail/ebpfjail/internal/testutil"
)

// trustBody is what the trust origin answers on /c/NAME.
const trustBody = "hello from the trust origin\n"

// trustOrigin is a TLS origin (allowed.test on 443, certificate from a test
// CA that only ebpfjail trusts) serving what each client fetches. A client
// proves it trusts the jail's CA when the origin saw its request and the
// client exited 0: ebpfjail terminates its TLS with a leaf of the jail's
// CA, so a client still on the system roots (or its own) aborts the
// handshake before any request goes out.
type trustOrigin struct {
	*site
	mu    sync.Mutex
	seen  []string
	files map[string]trustFile
}

type trustFile struct {
	ctype string
	body  []byte
}

func newTrustOrigin(t *testing.T) *trustOrigin {
	t.Helper()
	testutil.RequireRoot(t)
	h := testutil.NewHost(t)
	o := &trustOrigin{site: &site{h: h, ca: testutil.NewTestCA(t)}, files: map[string]trustFile{}}
	o.dns = h.ServeDNS(t, 53)
	ln := h.Listen(t, "tcp", "[::]:443")
	srv := &http.Server{
		Handler:           http.HandlerFunc(o.serve),
		ReadHeaderTimeout: 30 * time.Second,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{o.ca.Leaf(t, "allowed.test")},
			NextProtos:   []string{"h2", "http/1.1"},
		},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("trust origin: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return o
}

// add serves body at path.
func (o *trustOrigin) add(path, ctype string, body []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.files[path] = trustFile{ctype, body}
}

func (o *trustOrigin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.seen = append(o.seen, r.URL.Path)
	f, ok := o.files[r.URL.Path]
	o.mu.Unlock()
	switch {
	case ok:
		w.Header().Set("Content-Type", f.ctype)
		w.Write(f.body)
	case strings.HasPrefix(r.URL.Path, "/c/"):
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(trustBody))
	default:
		http.NotFound(w, r)
	}
}

// saw reports whether the origin received a request for path.
func (o *trustOrigin) saw(path string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range o.seen {
		if p == path {
			return true
		}
	}
	return false
}

// fetch runs command jailed (as nobody, MITM, every request allowed) and
// fails unless it exited 0 and the origin received path.
func (o *trustOrigin) fetch(t *testing.T, path string, command ...string) result {
	t.Helper()
	r := o.run(t, "true", nil, command...)
	o.arrived(t, r, path)
	return r
}

// arrived fails unless the run exited 0 and the origin received path.
func (o *trustOrigin) arrived(t *testing.T, r result, path string) {
	t.Helper()
	if r.code != 0 || !o.saw(path) {
		t.Fatalf("got exit %d and origin saw %s: %v, want exit 0 and the request to have arrived\n%s",
			r.code, path, o.saw(path), r)
	}
}

// runClient runs tool's argv for https://allowed.test+path jailed (MITM,
// every request allowed), with a HOME of its own.
func (o *trustOrigin) runClient(t *testing.T, tool, path string, argv func(t *testing.T, dir, url string) []string) result {
	t.Helper()
	requireTool(t, tool)
	dir := sharedDir(t)
	return o.run(t, "true", nil, append([]string{"env", "HOME=" + dir}, argv(t, dir, "https://allowed.test"+path)...)...)
}

// trustScript writes a client script into a directory the jailed user
// reads and returns its path.
func trustScript(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// trustClient is one runtime's fetch of a URL.
type trustClient struct {
	name string
	tool string // skipped when not installed
	argv func(t *testing.T, dir, url string) []string
}

var trustClients = []trustClient{
	{"curl", "curl", func(t *testing.T, dir, u string) []string { return []string{"curl", "-sSf", u} }},
	{"wget", "wget", func(t *testing.T, dir, u string) []string { return []string{"wget", "-q", "-O-", u} }},
	{"go", "go", func(t *testing.T, dir, u string) []string { return []string{goClient(t), u} }},
	{"node", "node", func(t *testing.T, dir, u string) []string {
		return []string{"node", "-e", `fetch(process.argv[1]).then(r => r.text()).then(b => console.log(b)).catch(e => { console.error(e.cause || e); process.exit(1) })`, u}
	}},
	{"python-urllib", "python3", func(t *testing.T, dir, u string) []string {
		return []string{python(t), "-c", "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())", u}
	}},
	{"python-requests", "python3", func(t *testing.T, dir, u string) []string {
		requirePyModule(t, "requests")
		return []string{python(t), "-c", "import sys, requests; r = requests.get(sys.argv[1], timeout=10); r.raise_for_status(); print(r.text)", u}
	}},
	{"python-httplib2", "python3", func(t *testing.T, dir, u string) []string {
		requirePyModule(t, "httplib2")
		return []string{python(t), "-c", "import sys, httplib2; resp, body = httplib2.Http(timeout=10).request(sys.argv[1]); assert resp.status == 200, resp.status; print(body.decode())", u}
	}},
	{"ruby", "ruby", func(t *testing.T, dir, u string) []string {
		return []string{"ruby", "-rnet/http", "-e", "r = Net::HTTP.get_response(URI(ARGV[0])); exit 1 unless r.code == '200'; puts r.body", u}
	}},
	{"php-stream", "php", func(t *testing.T, dir, u string) []string {
		return []string{"php", "-r", `$b = file_get_contents($argv[1]); if ($b === false) exit(1); echo $b;`, u}
	}},
	{"php-curl", "php", func(t *testing.T, dir, u string) []string {
		requirePHPExtension(t, "curl")
		return []string{"php", "-r", `$c = curl_init($argv[1]); curl_setopt($c, CURLOPT_RETURNTRANSFER, true); $b = curl_exec($c); if ($b === false) { fwrite(STDERR, curl_error($c) . "\n"); exit(1); } echo $b;`, u}
	}},
	{"java", "java", func(t *testing.T, dir, u string) []string {
		src := trustScript(t, dir, "Fetch.java", javaFetch)
		return []string{"java", src, u}
	}},
}

const javaFetch = `import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Fetch {
    public static void main(String[] args) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(
            HttpRequest.newBuilder(URI.create(args[0])).build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) System.exit(1);
        System.out.print(r.body());
    }
}
`

// TestPrivilegedEveryRuntimeTrustsTheJailsCA fetches over HTTPS through the
// MITM with each runtime's own client, as nobody, with nothing but what
// ebpfjail puts in the command's environment to make it trust the jail.
func TestPrivilegedEveryRuntimeTrustsTheJailsCA(t *testing.T) {
	o := newTrustOrigin(t)
	for _, c := range trustClients {
		t.Run(c.name, func(t *testing.T) {
			path := "/c/" + c.name
			r := o.runClient(t, c.tool, path, c.argv)
			o.arrived(t, r, path)
			contains(t, c.name+" output", r.stdout, strings.TrimSpace(trustBody))
		})
	}
	noJailsLeft(t)
}

// requirePyModule skips when the jail's python3 lacks module (Debian's
// python3-NAME package installs it).
func requirePyModule(t *testing.T, module string) {
	t.Helper()
	if err := exec.Command(python(t), "-c", "import "+module).Run(); err != nil {
		t.Skipf("python3 module %s not installed (Debian: python3-%s)", module, module)
	}
}

// requirePHPExtension skips when php lacks extension (Debian: php-NAME).
func requirePHPExtension(t *testing.T, ext string) {
	t.Helper()
	out, err := exec.Command("php", "-m").Output()
	if err != nil || !strings.Contains("\n"+string(out), "\n"+ext+"\n") {
		t.Skipf("php extension %s not installed (Debian: php-%s)", ext, ext)
	}
}

// npmPackage builds the tarball of a package with only a package.json and
// returns it with its npm integrity string.
func npmPackage(t *testing.T, name, version string) ([]byte, string) {
	t.Helper()
	pkg := []byte(`{"name":"` + name + `","version":"` + version + `","description":"installed through ebpfjail"}` + "\n")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{Name: "package/package.json", Mode: 0o644, Size: int64(len(pkg)), ModTime: time.Unix(1e9, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	tw.Write(pkg)
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(buf.Bytes())
	return buf.Bytes(), "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

// serveNPM makes the origin an npm registry at https://allowed.test/npm/
// holding one package, and returns the registry's URL.
func (o *trustOrigin) serveNPM(t *testing.T, name, version string) string {
	t.Helper()
	reg := "https://allowed.test/npm/"
	tgz, integrity := npmPackage(t, name, version)
	tarball := "/npm/" + name + "/-/" + name + "-" + version + ".tgz"
	doc := map[string]any{
		"name":      name,
		"dist-tags": map[string]string{"latest": version},
		"versions": map[string]any{version: map[string]any{
			"name": name, "version": version,
			"dist": map[string]string{"tarball": "https://allowed.test" + tarball, "integrity": integrity},
		}},
	}
	packument, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	o.add("/npm/"+name, "application/json", packument)
	o.add(tarball, "application/octet-stream", tgz)
	return reg
}

// nodePackageManagers install a package from a registry into the current
// directory, writing caches under dir; bin finds or installs the tool.
var nodePackageManagers = []struct {
	name string
	bin  func(t *testing.T) string
	args func(dir, reg string) string
}{
	// No retries: a client that rejects the CA fails at once instead of
	// backing off for a minute.
	{"npm", func(t *testing.T) string { return mustLookPath(t, "npm") }, func(dir, reg string) string {
		return "install --no-save --no-audit --no-fund --no-update-notifier --fetch-retries=0 --cache=" + dir + "/cache --registry " + reg
	}},
	{"pnpm", func(t *testing.T) string { return npmBinary(t, "pnpm@10", "pnpm/bin/pnpm.cjs") }, func(dir, reg string) string {
		return "add --fetch-retries=0 --store-dir=" + dir + "/store --cache-dir=" + dir + "/cache --registry=" + reg
	}},
	{"yarn", func(t *testing.T) string { return npmBinary(t, "yarn@1", "yarn/bin/yarn.js") }, func(dir, reg string) string {
		return "add --no-lockfile --non-interactive --cache-folder " + dir + "/cache --registry " + reg
	}},
}

// TestPrivilegedNodePackageManagersInstallThroughTheMITMDespiteAnNpmrcCafile
// installs a package with the real npm, pnpm and yarn from a registry on
// the test origin. The project's .npmrc names the system bundle as cafile,
// as Debian's /usr/etc/npmrc does: npm hands a configured cafile to node as
// the whole CA list, so NODE_EXTRA_CA_CERTS alone is not enough.
func TestPrivilegedNodePackageManagersInstallThroughTheMITMDespiteAnNpmrcCafile(t *testing.T) {
	o := newTrustOrigin(t)
	for _, pm := range nodePackageManagers {
		t.Run(pm.name, func(t *testing.T) {
			bin := pm.bin(t)
			pkg := "ebpfjail-tiny-" + pm.name
			reg := o.serveNPM(t, pkg, "1.0.0")
			dir := sharedDir(t)
			proj := filepath.Join(dir, "proj")
			if err := os.Mkdir(proj, 0o777); err != nil {
				t.Fatal(err)
			}
			os.Chmod(proj, 0o777) // past the umask: the tool runs as nobody
			trustScript(t, proj, ".npmrc", "cafile=/etc/ssl/certs/ca-certificates.crt\n")
			os.Chmod(trustScript(t, proj, "package.json", `{"name":"proj","version":"1.0.0","private":true}`+"\n"), 0o666)
			script := "cd " + proj + " && " + bin + " " + pm.args(dir, reg) + " " + pkg
			r := o.fetch(t, "/npm/"+pkg+"/-/"+pkg+"-1.0.0.tgz", "env", "HOME="+dir, "sh", "-c", script)
			b, err := os.ReadFile(filepath.Join(proj, "node_modules", pkg, "package.json"))
			if err != nil || !strings.Contains(string(b), "installed through ebpfjail") {
				t.Errorf("installed package.json: %q (%v), want the registry's\n%s", b, err, r)
			}
		})
	}
	noJailsLeft(t)
}

// wheel builds a pure-Python wheel of one empty module.
func wheel(t *testing.T, name, version string) []byte {
	t.Helper()
	info := name + "-" + version + ".dist-info/"
	files := []struct{ name, body string }{
		{name + "/__init__.py", ""},
		{info + "METADATA", "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"},
		{info + "WHEEL", "Wheel-Version: 1.0\nGenerator: ebpfjail-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
		{info + "RECORD", name + "/__init__.py,,\n" + info + "METADATA,,\n" + info + "WHEEL,,\n" + info + "RECORD,,\n"},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, f.body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestPrivilegedPipAndGitFetchThroughTheMITM downloads a wheel with pip
// (PIP_CERT) and lists a repository's refs with git (GIT_SSL_CAINFO) over
// git's dumb HTTP protocol.
func TestPrivilegedPipAndGitFetchThroughTheMITM(t *testing.T) {
	o := newTrustOrigin(t)
	t.Run("pip", func(t *testing.T) {
		if err := exec.Command(python(t), "-m", "pip", "--version").Run(); err != nil {
			t.Skip("pip not installed for python3 (Debian: python3-pip)")
		}
		dir := sharedDir(t)
		whl := "/pip/ebpfjail_tiny-1.0-py3-none-any.whl"
		o.add(whl, "application/octet-stream", wheel(t, "ebpfjail_tiny", "1.0"))
		o.fetch(t, whl, "env", "HOME="+dir, python(t), "-m", "pip", "download", "--no-deps", "--no-cache-dir",
			"--disable-pip-version-check", "--retries", "0", "-d", dir, "https://allowed.test"+whl)
		if _, err := os.Stat(filepath.Join(dir, filepath.Base(whl))); err != nil {
			t.Errorf("pip downloaded no wheel: %v", err)
		}
	})
	t.Run("git", func(t *testing.T) {
		requireTool(t, "git")
		const ref = "0123456789abcdef0123456789abcdef01234567\trefs/heads/main\n"
		o.add("/git/repo.git/info/refs", "text/plain", []byte(ref))
		r := o.fetch(t, "/git/repo.git/info/refs", "env", "HOME="+sharedDir(t), "git", "ls-remote", "https://allowed.test/git/repo.git")
		contains(t, "git ls-remote", r.stdout, ref)
	})
	noJailsLeft(t)
}

// npmBinary installs an npm package that ships a binary (no install
// script runs) into a directory the jailed user reads, and returns the
// binary's path; it skips when the npm registry cannot be reached.
func npmBinary(t *testing.T, pkg, rel string) string {
	t.Helper()
	requireTool(t, "npm")
	dir := sharedDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--prefix", dir, "--no-save", "--ignore-scripts", "--no-audit", "--no-fund", "--no-update-notifier", pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot install %s from the npm registry (unreachable?): %v\n%s", pkg, err, out)
	}
	return filepath.Join(dir, "node_modules", rel)
}

// TestPrivilegedDenoAndBunTrustTheJailsCA fetches with Deno (DENO_CERT) and
// Bun (NODE_EXTRA_CA_CERTS), both installed from the npm registry.
func TestPrivilegedDenoAndBunTrustTheJailsCA(t *testing.T) {
	o := newTrustOrigin(t)
	t.Run("deno", func(t *testing.T) {
		deno := npmBinary(t, "@deno/linux-x64-glibc@2", "@deno/linux-x64-glibc/deno")
		dir := sharedDir(t)
		js := trustScript(t, dir, "fetch.js", `const r = await fetch(Deno.args[0]); if (!r.ok) Deno.exit(1); console.log(await r.text());`+"\n")
		r := o.fetch(t, "/c/deno", "env", "HOME="+dir, "DENO_DIR="+filepath.Join(dir, "deno"), "DENO_NO_UPDATE_CHECK=1",
			deno, "run", "--allow-net", js, "https://allowed.test/c/deno")
		contains(t, "deno output", r.stdout, strings.TrimSpace(trustBody))
	})
	t.Run("bun", func(t *testing.T) {
		bun := npmBinary(t, "@oven/bun-linux-x64@1", "@oven/bun-linux-x64/bin/bun")
		dir := sharedDir(t)
		js := trustScript(t, dir, "fetch.mjs", `const r = await fetch(process.argv[2]); if (!r.ok) process.exit(1); console.log(await r.text());`+"\n")
		r := o.fetch(t, "/c/bun", "env", "HOME="+dir, bun, js, "https://allowed.test/c/bun")
		contains(t, "bun output", r.stdout, strings.TrimSpace(trustBody))
	})
	noJailsLeft(t)
}

// TestPrivilegedARejectedCAIsHintedWithTheClientsOwnSetting makes each
// client trust the system roots only, through a flag that beats what
// ebpfjail sets, and reads the hint ebpfjail logs for the handshake the
// client aborted: it names that client's own setting.
func TestPrivilegedARejectedCAIsHintedWithTheClientsOwnSetting(t *testing.T) {
	const system = "/etc/ssl/certs/ca-certificates.crt"
	o := newTrustOrigin(t)
	cases := []struct {
		name, tool, want string
		argv             func(t *testing.T, dir, url string) []string
	}{
		{"npm", "npm", "npm_config_cafile", func(t *testing.T, dir, u string) []string {
			return []string{"npm", "view", "--cafile=" + system, "--fetch-retries=0", "--no-update-notifier",
				"--cache=" + filepath.Join(dir, "cache"), "--registry", u, "ebpfjail-tiny"}
		}},
		{"python", "python3", "HTTPLIB2_CA_CERTS", func(t *testing.T, dir, u string) []string {
			return []string{python(t), "-c", "import ssl, sys, urllib.request; urllib.request.urlopen(sys.argv[1], context=ssl.create_default_context(cafile='" + system + "'))", u}
		}},
		{"java", "java", "javax.net.ssl.trustStore", func(t *testing.T, dir, u string) []string {
			return []string{"java", "-Djavax.net.ssl.trustStore=/etc/ssl/certs/java/cacerts", "-Djavax.net.ssl.trustStoreType=JKS",
				trustScript(t, dir, "Fetch.java", javaFetch), u}
		}},
		{"curl", "curl", "CURL_CA_BUNDLE", func(t *testing.T, dir, u string) []string {
			return []string{"curl", "-sS", "--cacert", system, u}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := "/c/hint-" + c.name
			r := o.runClient(t, c.tool, path, c.argv)
			if r.code == 0 || o.saw(path) {
				t.Fatalf("the client trusting the system roots only got through (exit %d, origin saw it: %v)\n%s", r.code, o.saw(path), r)
			}
			line := ""
			for _, l := range strings.Split(r.stderr, "\n") {
				if strings.Contains(l, "allowed.test") && strings.Contains(l, "hint: ") {
					line = l
				}
			}
			contains(t, "hint", line, "hint: the client may not trust the ebpfjail CA: ")
			contains(t, "the client's setting", line, c.want)
			contains(t, "the way around", line, "--no-mitm allowed.test")
		})
	}
	noJailsLeft(t)
}
