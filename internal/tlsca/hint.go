package tlsca

import (
	"path/filepath"
	"strings"
)

// clientTrust is where one kind of client reads the CAs it trusts, and so
// what to check when it rejects the jail's CA. ebpfjail sets each of these
// (internal/supervisor's trust files), so a rejection means something beat
// them: a flag, a config file of higher rank, or roots built into the client.
type clientTrust struct {
	names   []string // program names: comm's first word or the exe's base, version suffix removed
	setting string
}

var clientTrusts = []clientTrust{
	// Before python: the AWS CLI and pip are python scripts, named in comm.
	{[]string{"aws"}, "the AWS CLI reads AWS_CA_BUNDLE, which ebpfjail sets; a ca_bundle in ~/.aws/config or --ca-bundle beats it"},
	{[]string{"pip"}, "pip reads PIP_CERT, which ebpfjail sets; a cert in pip.conf or --cert beats it"},
	{[]string{"npm", "npx", "pnpm", "yarn", "corepack", "node", "nodejs"}, "npm, pnpm and yarn read npm_config_cafile, node reads NODE_EXTRA_CA_CERTS, which ebpfjail sets; --cafile or --ca on the command line, or a program's own ca option, beats them"},
	{[]string{"java"}, "Java trusts the store that JAVA_TOOL_OPTIONS names (-Djavax.net.ssl.trustStore), which ebpfjail sets; a trust store on java's command line or the program's own beats it"},
	{[]string{"python"}, "Python reads SSL_CERT_FILE, requests REQUESTS_CA_BUNDLE, httplib2 HTTPLIB2_CA_CERTS and pip PIP_CERT, which ebpfjail sets; a program that loads certifi's bundle itself reads none of them"},
	{[]string{"deno"}, "Deno reads DENO_CERT, which ebpfjail sets; --cert beats it"},
	{[]string{"bun"}, "Bun reads NODE_EXTRA_CA_CERTS, which ebpfjail sets"},
	{[]string{"ruby", "bundle", "bundler", "gem"}, "Ruby reads SSL_CERT_FILE and bundler BUNDLE_SSL_CA_CERT, which ebpfjail sets"},
	{[]string{"php", "composer"}, "PHP reads curl.cainfo and openssl.cafile, which ebpfjail sets in an ini file it adds through PHP_INI_SCAN_DIR; a cafile the program passes beats them"},
	{[]string{"git", "git-remote-http", "git-remote-https"}, "git reads GIT_SSL_CAINFO, which ebpfjail sets"},
	{[]string{"curl"}, "curl reads CURL_CA_BUNDLE, which ebpfjail sets; --cacert beats it"},
	{[]string{"wget"}, "wget reads ca_certificate from a wgetrc: ebpfjail gives one through WGETRC unless you have ~/.wgetrc or WGETRC of your own, where you add ca_certificate = the bundle"},
	{[]string{"dotnet"}, ".NET reads SSL_CERT_FILE and SSL_CERT_DIR, which ebpfjail sets"},
	{[]string{"cargo"}, "cargo reads CARGO_HTTP_CAINFO, which ebpfjail sets"},
}

// TrustHint is the hint for a client that rejected the jail's CA during (or
// right after) the TLS handshake for host: the setting its runtime reads,
// when exe or comm say which runtime it is, and --no-mitm always. A client
// with roots built in (Rust's webpki-roots, many static binaries) reads no
// setting at all, and --no-mitm is its only way through.
func TrustHint(exe, comm, host string) string {
	noMITM := "use --no-mitm " + host + " to pass this TLS unopened, decided once by host"
	if setting, ok := ClientSetting(exe, comm); ok {
		return "the client may not trust the ebpfjail CA: " + setting + "; or " + noMITM
	}
	return "the client may not trust the ebpfjail CA: point the variable its runtime reads (SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE, ...) at the bundle, or, for a client with built-in roots, " + noMITM
}

// ClientSetting is the CA setting of the runtime exe or comm name, and
// whether the runtime was recognised.
func ClientSetting(exe, comm string) (string, bool) {
	for _, name := range []string{commName(comm), programName(exe)} {
		if name == "" {
			continue
		}
		for _, c := range clientTrusts {
			for _, n := range c.names {
				if n == name {
					return c.setting, true
				}
			}
		}
	}
	return "", false
}

// commName is comm's first word (npm titles itself "npm install ..."),
// version suffix removed.
func commName(comm string) string {
	f := strings.Fields(comm)
	if len(f) == 0 {
		return ""
	}
	return programName(f[0])
}

// programName is a path's base without a version suffix: python3.11,
// php8.2 and ruby3.1 are python, php and ruby.
func programName(path string) string {
	if path == "" {
		return ""
	}
	name := strings.ToLower(filepath.Base(path))
	return strings.TrimRight(name, "0123456789.")
}
