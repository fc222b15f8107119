package container

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Refusal is an option that cannot be jailed, with what to do instead.
type Refusal struct {
	Msg, Hint string
}

func (r *Refusal) Error() string { return r.Msg }

// Args are the user's `docker run` arguments, read.
type Args struct {
	Options []string // the user's options, the network one taken out
	Rest    []string // the image and the container's command
	Network string   // the user's --network ("" if none)
	TTY     bool     // -t: the client puts the terminal in raw mode
}

// boolFlags are the `docker run` (and `podman run`) options that take no
// value; every other option takes one, as a separate word or after "=".
var boolFlags = map[string]bool{
	"d": true, "i": true, "t": true, "P": true, "q": true,
	"detach": true, "interactive": true, "tty": true, "publish-all": true, "quiet": true,
	"rm": true, "privileged": true, "init": true, "read-only": true, "sig-proxy": true,
	"no-healthcheck": true, "oom-kill-disable": true, "disable-content-trust": true,
	"help": true, "replace": true, "rmi": true, "read-only-tmpfs": true, "env-host": true,
	"http-proxy": true, "no-hosts": true, "use-cgroupns": true,
}

// Parse reads args, the words after `--docker-run --`, and refuses what
// would let the container leave the jail.
func Parse(args []string) (*Args, error) {
	a := &Args{}
	i := 0
	for i < len(args) {
		w := args[i]
		if w == "--" {
			i++
			break
		}
		if !strings.HasPrefix(w, "-") || w == "-" {
			break
		}
		name, value, words, err := option(args[i:])
		if err != nil {
			return nil, err
		}
		if err := a.take(name, value, args[i:i+words]); err != nil {
			return nil, err
		}
		i += words
	}
	a.Rest = args[i:]
	if len(a.Rest) == 0 {
		return nil, &Refusal{Msg: "--docker-run: no image", Hint: "give docker run's arguments after --, as in: ebpfjail --docker-run -- --rm debian:12 curl https://example.com"}
	}
	return a, nil
}

// option reads the option at args[0]: its name (a short option group
// ending in one that takes a value gives that one), its value, and how
// many words it took.
func option(args []string) (name, value string, words int, err error) {
	w := args[0]
	long := strings.HasPrefix(w, "--")
	body := strings.TrimLeft(w, "-")
	if long {
		if k, v, ok := strings.Cut(body, "="); ok {
			return k, v, 1, nil
		}
		name = body
	} else {
		// -it, -dit, -eFOO=1, -e FOO=1
		for j, r := range body {
			if !boolFlags[string(r)] {
				if j+1 < len(body) {
					return string(r), strings.TrimPrefix(body[j+1:], "="), 1, nil
				}
				name = string(r)
				break
			}
			name = string(r)
		}
	}
	if boolFlags[name] {
		return name, "", 1, nil
	}
	if len(args) < 2 {
		return "", "", 0, &Refusal{Msg: fmt.Sprintf("--docker-run: option %s needs a value", w), Hint: "docker run --help lists its options"}
	}
	return name, args[1], 2, nil
}

// take keeps one option, or refuses it.
func (a *Args) take(name, value string, words []string) error {
	if r := refuse(name, value); r != nil {
		return r
	}
	switch name {
	case "network", "net":
		a.Network = value
		return nil
	case "t", "tty":
		a.TTY = true
	}
	if w := words[0]; !strings.HasPrefix(w, "--") && strings.ContainsRune(boolPrefix(w[1:]), 't') {
		a.TTY = true // -it, -dit
	}
	a.Options = append(a.Options, words...)
	return nil
}

// boolPrefix is the leading run of value-less options of a short option
// group: "it" of -it, "d" of -de FOO=1.
func boolPrefix(group string) string {
	for j, r := range group {
		if !boolFlags[string(r)] {
			return group[:j]
		}
	}
	return group
}

// dangerousCaps are the capabilities that let a container change the
// network, the cgroups or the BPF programs that jail it.
var dangerousCaps = map[string]bool{
	"ALL": true, "NET_ADMIN": true, "SYS_ADMIN": true, "BPF": true, "SYS_MODULE": true,
	"PERFMON": true, "SYS_PTRACE": true, "NET_RAW": true,
}

// outsideSockets are the unix sockets that lead out of the jail, as a
// command's jail denies them: container engines (whoever reaches one starts
// containers outside the jail) and resolver daemons (lookups the DNS shim
// never sees). A container may not get one mounted, nor a directory above
// one.
var outsideSockets = []string{
	"/run/docker.sock", "/run/containerd/containerd.sock", "/run/podman/podman.sock",
	"/run/crio/crio.sock", "/run/buildkit/buildkitd.sock",
	"/run/systemd/resolve/io.systemd.Resolve", "/run/nscd/socket",
}

// leadsOut reports whether mounting src would hand the container one of
// outsideSockets, DOCKER_HOST's socket, or a rootless engine's.
func leadsOut(src string) bool {
	if !filepath.IsAbs(src) {
		return false // a named volume
	}
	src = canonical(src)
	list := append([]string{}, outsideSockets...)
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		list = append(list, h)
	}
	for _, s := range list {
		s = canonical(s)
		if s == src || src == "/" || strings.HasPrefix(s, src+"/") {
			return true
		}
	}
	base := filepath.Base(src)
	return base == "docker.sock" || base == "podman.sock" || base == "containerd.sock" ||
		strings.HasPrefix(src, "/run/user/") && (strings.Contains(src, "/docker") || strings.Contains(src, "/podman") || strings.Count(src, "/") <= 3)
}

// canonical spells p as the kernel would resolve it (/var/run is /run).
func canonical(p string) string {
	p = filepath.Clean(p)
	if strings.HasPrefix(p, "/var/run/") || p == "/var/run" {
		p = "/run" + strings.TrimPrefix(p, "/var/run")
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// refuse is why the option name=value cannot be jailed, or nil.
func refuse(name, value string) *Refusal {
	v := strings.ToLower(value)
	switch name {
	case "privileged":
		return &Refusal{Msg: "--docker-run: --privileged cannot be jailed (a privileged container can detach the jail's programs)", Hint: "drop --privileged; add only the capabilities the container needs with --cap-add"}
	case "cap-add":
		for _, c := range strings.Split(value, ",") {
			c = strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
			if dangerousCaps[c] {
				return &Refusal{Msg: fmt.Sprintf("--docker-run: --cap-add %s cannot be jailed (it can change the network or the programs that jail the container)", c), Hint: "drop --cap-add " + c}
			}
		}
	case "pid":
		if v == "host" {
			return &Refusal{Msg: "--docker-run: --pid host cannot be jailed (the container could reach processes outside the jail)", Hint: "drop --pid host"}
		}
	case "network", "net":
		if v != "" && v != "none" && v != "host" {
			return &Refusal{Msg: fmt.Sprintf("--docker-run: --network %s cannot be jailed (ebpfjail listens in the container's own namespace, or with host in the host's)", value), Hint: "drop --network (the container gets a namespace of its own with loopback only), or give --network host"}
		}
	case "volumes-from":
		return &Refusal{Msg: "--docker-run: --volumes-from cannot be jailed (another container's mounts may hold an engine's socket)", Hint: "mount what the container needs with -v"}
	case "cgroup-parent":
		return &Refusal{Msg: "--docker-run: --cgroup-parent cannot be jailed (ebpfjail puts the container in the jail's cgroup)", Hint: "drop --cgroup-parent"}
	case "cgroupns":
		if v == "host" {
			return &Refusal{Msg: "--docker-run: --cgroupns host cannot be jailed (the container sees the host's cgroups)", Hint: "drop --cgroupns host; the default private cgroup namespace works"}
		}
	case "v", "volume", "mount":
		if s := mountSource(name, value); s != "" && leadsOut(s) {
			return &Refusal{Msg: fmt.Sprintf("--docker-run: mounting %s cannot be jailed (it holds a container engine's or a resolver's socket, which leads out of the jail)", s), Hint: "drop that mount; mount only the files the container needs"}
		}
	}
	return nil
}

// mountSource is the host side of a -v or --mount value.
func mountSource(name, value string) string {
	if name != "mount" {
		src, _, _ := strings.Cut(value, ":")
		return src
	}
	for _, kv := range strings.Split(value, ",") {
		k, v, _ := strings.Cut(kv, "=")
		if k == "source" || k == "src" {
			return v
		}
	}
	return ""
}
