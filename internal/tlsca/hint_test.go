package tlsca

import (
	"strings"
	"testing"
)

func TestTrustHintNamesTheClientsOwnSetting(t *testing.T) {
	for _, c := range []struct{ exe, comm, want string }{
		{"/usr/bin/node", "npm install ebp", "npm_config_cafile"},
		{"/usr/bin/node", "node", "NODE_EXTRA_CA_CERTS"},
		{"/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "HttpClient-1-Wo", "javax.net.ssl.trustStore"},
		{"/usr/bin/python3.11", "python3", "REQUESTS_CA_BUNDLE"},
		{"/usr/bin/python3.11", "aws", "AWS_CA_BUNDLE"},
		{"/usr/bin/php8.2", "php", "curl.cainfo"},
		{"/usr/bin/ruby3.1", "ruby", "SSL_CERT_FILE"},
		{"/usr/lib/git-core/git-remote-http", "git-remote-http", "GIT_SSL_CAINFO"},
		{"/usr/bin/wget", "wget", "WGETRC"},
		{"", "deno", "DENO_CERT"},
		{"/opt/tool/mytool", "mytool", "built-in roots"},
		{"", "", "built-in roots"},
	} {
		got := TrustHint(c.exe, c.comm, "x.test")
		if !strings.Contains(got, c.want) || !strings.Contains(got, "--no-mitm x.test") {
			t.Errorf("TrustHint(%q, %q) = %q, want it to name %s and --no-mitm x.test", c.exe, c.comm, got, c.want)
		}
	}
}
