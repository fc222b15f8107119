package jail

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
)

// User is who the jailed command runs as.
type User struct {
	UID, GID uint32
	Groups   []uint32 // supplementary groups
	Name     string
	Home     string
}

// ErrRootChild means the command would run as root without --user root.
var ErrRootChild = errors.New("jail: refusing to run the command as root")

// ResolveUser picks the user the command runs as: the one named by flag
// (name or numeric uid) if set, else the user who invoked sudo
// (SUDO_UID/SUDO_GID), else the current user. Root is returned only when
// flag names it: a root child can leave the jail (see the package doc).
func ResolveUser(flag string, getenv func(string) string, currentUID int) (*User, error) {
	var u *user.User
	var err error
	explicit := flag != ""
	switch {
	case explicit:
		u, err = user.Lookup(flag)
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			if _, perr := strconv.ParseUint(flag, 10, 32); perr == nil {
				u, err = user.LookupId(flag)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("look up user %q: %w", flag, err)
		}
	case getenv("SUDO_UID") != "":
		u, err = user.LookupId(getenv("SUDO_UID"))
		if err != nil {
			// A uid without a passwd entry still runs, as itself.
			u = &user.User{Uid: getenv("SUDO_UID"), Gid: getenv("SUDO_GID"), Username: getenv("SUDO_USER"), HomeDir: "/"}
		}
		if g := getenv("SUDO_GID"); g != "" {
			u.Gid = g
		}
	default:
		u, err = user.LookupId(strconv.Itoa(currentUID))
		if err != nil {
			return nil, fmt.Errorf("look up current user: %w", err)
		}
	}
	ju, err := fromOSUser(u)
	if err != nil {
		return nil, err
	}
	if ju.UID == 0 && !explicit {
		return nil, ErrRootChild
	}
	return ju, nil
}

func fromOSUser(u *user.User) (*User, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parse gid %q: %w", u.Gid, err)
	}
	ju := &User{UID: uint32(uid), GID: uint32(gid), Name: u.Username, Home: u.HomeDir}
	if ju.Name == "" {
		ju.Name = u.Uid
	}
	// Supplementary groups; a user unknown to the group database has none.
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if v, err := strconv.ParseUint(g, 10, 32); err == nil && uint32(v) != ju.GID {
			ju.Groups = append(ju.Groups, uint32(v))
		}
	}
	return ju, nil
}
