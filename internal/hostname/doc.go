// Package hostname says whether a string is a host name ebpfjail will put
// in a certificate, show to a rule or hand to a resolver: dot-separated
// labels of lower-case letters, digits, '-' and '_'. One definition, so the
// proxy and the CA can never disagree about what a name is.
package hostname
