// Package cliflags holds the checks ebpfjail's command line needs beyond
// what pflag does: a single-value flag given twice, a flag whose value
// would be the "--" that ends the options, and the hint a usage error
// about a flag gets (that flag's own help line).
package cliflags
