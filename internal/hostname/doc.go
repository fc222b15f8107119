// Package hostname says whether a string is a host name ebpfjail will put
// in a certificate, show to a rule or hand to a resolver: dot-separated
// labels of lower-case letters, digits, '-' and '_'. It also holds the one
// spelling of a host (Fold, Normalize) and the one way to write it next to
// a port or in a URL (Bracket, JoinPort). One definition, so the proxy, the
// DNS shim, the rules and the CA can never disagree about what a name is.
package hostname
