// Package container owns --docker-run: reading the user's `docker run`
// arguments (the options that cannot be jailed are refused, the network
// option is mapped), finding the engine's command-line client as the user
// would run it (DOCKER_HOST and the current context are the client's own
// business), and the arguments ebpfjail adds so that the container's
// processes start inside the jail's cgroup with the jail's trust bundle.
package container
