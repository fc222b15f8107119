package secrets

import (
	"path"
	"strings"
)

// belongs reports whether sc may be sent to host: a host matching one of
// its globs (the --no-mitm glob syntax, whatever the case), over TLS or,
// when the operator allowed it, plain HTTP.
func (sc *secret) belongs(host string, secure bool) bool {
	if !secure && !sc.cleartext {
		return false
	}
	return MatchHost(sc.hosts, host)
}

// MatchHost reports whether host, lower-cased, matches one of globs
// (path.Match syntax, compared in lower case): the matching --no-mitm
// uses, so that a --secret host and a --no-mitm host can be compared.
func MatchHost(globs []string, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, g := range globs {
		if ok, _ := path.Match(strings.ToLower(g), host); ok {
			return true
		}
	}
	return false
}
