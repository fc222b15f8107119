package container

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseRefusesWhatCannotBeJailed(t *testing.T) {
	for _, args := range [][]string{
		{"--privileged", "img"},
		{"--cap-add", "NET_ADMIN", "img"},
		{"--cap-add=sys_admin", "img"},
		{"--cap-add", "CAP_BPF", "img"},
		{"--cap-add", "CHOWN,ALL", "img"},
		{"--pid", "host", "img"},
		{"--pid=host", "img"},
		{"--cgroupns", "host", "img"},
		{"-v", "/var/run/docker.sock:/var/run/docker.sock", "img"},
		{"--volume=/run/podman/podman.sock:/s", "img"},
		{"--mount", "type=bind,source=/run/docker.sock,target=/d", "img"},
		{"-v", "/var/run:/host-run", "img"},
		{"-v", "/run/containerd:/c", "img"},
		{"-v", "/:/host:ro", "img"},
		{"-v", "/run/systemd/resolve:/r", "img"},
		{"-v", "/run/user/1000:/u", "img"},
		{"--network", "container:abc", "img"},
		{"--net=ns:/proc/1/ns/net", "img"},
		{"--network", "bridge", "img"},
		{"--cgroup-parent", "/", "img"},
		{"--volumes-from", "other", "img"},
		{"--cap-add", "NET_RAW", "img"},
		{"--rm"},
	} {
		_, err := Parse(args)
		var r *Refusal
		if !errors.As(err, &r) || r.Hint == "" || strings.Contains(r.Msg, "\n") {
			t.Errorf("Parse(%q): got %v, want a one-line refusal with a hint", args, err)
		}
	}
}

func TestParseKeepsOptionsAndTakesTheNetwork(t *testing.T) {
	a, err := Parse([]string{"--rm", "-it", "-e", "A=1", "--network=none", "-v", "/x:/y", "img", "sh", "-c", "--network host"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--rm", "-it", "-e", "A=1", "-v", "/x:/y"}
	if !reflect.DeepEqual(a.Options, want) || a.Network != "none" || !a.TTY {
		t.Errorf("got options %q network %q tty %v, want %q none true", a.Options, a.Network, a.TTY, want)
	}
	if !reflect.DeepEqual(a.Rest, []string{"img", "sh", "-c", "--network host"}) {
		t.Errorf("got rest %q", a.Rest)
	}
	if a, _ := Parse([]string{"-de", "T=1", "img"}); a == nil || a.TTY || a.Options[1] != "T=1" {
		t.Errorf("-de T=1: got %+v, want no TTY and the value kept", a)
	}
}

func TestParseKeepsOrdinaryMounts(t *testing.T) {
	for _, v := range []string{"/tmp:/tmp", "/home/me/src:/src:ro", "data:/data", "/run/user/1000/app/x:/x"} {
		if _, err := Parse([]string{"-v", v, "img"}); err != nil {
			t.Errorf("-v %s: got %v, want it kept", v, err)
		}
	}
}
