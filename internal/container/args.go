package container

import (
	"fmt"
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

// engineSockets are the names of engine sockets a container must not get:
// whoever reaches one starts containers outside the jail.
var engineSockets = []string{"docker.sock", "podman.sock", "containerd.sock", "crio.sock", "buildkitd.sock", "dockershim.sock"}

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
	case "cgroup-parent":
		return &Refusal{Msg: "--docker-run: --cgroup-parent cannot be jailed (ebpfjail puts the container in the jail's cgroup)", Hint: "drop --cgroup-parent"}
	case "cgroupns":
		if v == "host" {
			return &Refusal{Msg: "--docker-run: --cgroupns host cannot be jailed (the container sees the host's cgroups)", Hint: "drop --cgroupns host; the default private cgroup namespace works"}
		}
	case "v", "volume", "mount":
		if s := mountSource(name, value); s != "" && isEngineSocket(s) {
			return &Refusal{Msg: fmt.Sprintf("--docker-run: mounting the engine socket %s cannot be jailed (the container could start containers outside the jail)", s), Hint: "drop that " + "-v"}
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

func isEngineSocket(p string) bool {
	base := filepath.Base(p)
	for _, s := range engineSockets {
		if base == s {
			return true
		}
	}
	return filepath.Clean(p) == "/run" || filepath.Clean(p) == "/var/run" || filepath.Clean(p) == "/"
}
