// Package attack is ebpfjail's escape self-test (`ebpfjail check --attack`):
// a fixed set of attempts, run by a jailed process, to get a byte out of the
// jail without the rule's consent, and the canaries that tell whether one did.
//
// The attempts run inside a real jail whose rule allows one decoy name and
// nothing else, so the fronting attacks (SNI≠Host, absolute-URI≠Host,
// CONNECT through an allowed request) have something allowed to hide
// behind. Every attempt tags what it sends with its own name (the HTTP path,
// the DNS label, the datagram), so a canary that receives anything can say
// which attempt leaked.
//
// Each attempt judges itself from the client's side and fails closed: an
// attempt counts as blocked only when the kernel refused it or ebpfjail
// answered with its own 403; a response from anyone else, a timeout after
// the bytes went out, or an allowed-looking error (502) counts as leaked.
// The canaries judge from the other side: whatever reaches one, except the
// controls, is a leak whatever the client saw. Two controls (an allowed
// request over HTTP and over HTTPS) must reach the canary, or the run proves
// nothing and says so.
//
// This package runs on both sides of the jail: Drive sets a run up (the
// canaries, a victim process outside the jail, a private /etc/hosts) and
// runs ebpfjail on a copy of itself; Run is the jailed command and Child
// the other hidden commands ebpfjail re-executes itself as.
// Like a jail, the attempts and the driver need Linux: elsewhere only the
// --target parsing builds.
package attack
