// Package tlsca owns ebpfjail's certificate authority: the CA key and
// certificate on disk, the leaf certificates the proxy presents when it
// terminates a jailed client's TLS, and the CA bundle (system roots plus the
// ebpfjail CA) the jailed command is pointed at through SSL_CERT_FILE and
// friends, the same certificates as a PKCS#12 trust store for Java, and
// TrustHint: what to tell the user when a client rejects the CA anyway.
//
// Invariants:
//
//   - The CA key never leaves its directory: it is written there once (mode
//     0600, in a directory of mode 0700 owned by the effective user, root for
//     a real jail) and only ever read back into this process. Nothing in this
//     package copies it, exports it, or puts it in the bundle; [CA.CertPEM]
//     and [WriteBundle] only ever contain certificates. A key file that other
//     users could read, or that another user owns, is refused rather than
//     used, because a jailed user who can read the key can mint certificates
//     its own tools trust and so impersonate any host to them.
//   - The CA is a CA for leaves only: MaxPathLen 0, so a leaked leaf key cannot
//     be used to sign further certificates.
//   - What a leaked CA key can sign is bounded: the CA certificate carries
//     extended key usage serverAuth (verifiers apply a chain's EKUs to its
//     leaf), so no client, code-signing or e-mail certificate it signs is
//     accepted; leaves live a day and are re-minted from the cache before
//     they expire. A CA made before the EKU was added is kept, not replaced
//     (see [CA.ServerAuthOnly]); ebpfjail tells the operator.
//
// Two further limits were weighed and left out. Name constraints cannot
// work: a MITM must sign for whatever name the jailed client asks for, so
// the only constraint that fits is none. A CA per run would make a leaked
// key worthless after the run, but users install the CA into trust stores
// (ebpfjail ca export: browsers, Docker images, language runtimes that
// ignore SSL_CERT_FILE), and a new CA every run would break that; the key
// stays root-only on disk instead, which is what a per-run CA would protect
// anyway.
//   - Upstream verification is never disabled anywhere: this package builds
//     only server-side configurations for the jail-facing side, and nothing in
//     ebpfjail sets InsecureSkipVerify. The upstream side of a terminated
//     connection is verified against the system roots, never against this CA.
//
// Leaves are cheap to mint (one ECDSA P-256 signature, a key shared by all
// leaves of a [CA]) and are cached in a bounded LRU; concurrent first
// requests for one name sign once.
//
// The Java trust store is kept from one jail to the next in [DefaultCacheDir]
// ([WriteTrustStoreCached]): it holds certificates only, but a store that
// others could have written would choose what Java trusts, so an entry is
// used only if it and its directory are root's and no one else's to write,
// and only if its checksum holds; otherwise it is rebuilt.
package tlsca
