package script

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// Cred is the user and group a script runs as. keepalived runs scripts with
// exactly this uid, gid and supplementary group list {gid}
// (notify.c set_script_env).
type Cred struct {
	UID, GID uint32
	// Name is the user name, for messages ("" if unknown).
	Name string
}

func (c Cred) String() string {
	if c.Name != "" {
		return fmt.Sprintf("%s (%d:%d)", c.Name, c.UID, c.GID)
	}
	return fmt.Sprintf("%d:%d", c.UID, c.GID)
}

// Self is the effective uid and gid of this process.
func Self() Cred {
	c := Cred{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	if u, err := user.LookupId(strconv.Itoa(int(c.UID))); err == nil {
		c.Name = u.Username
	}
	return c
}

// DefaultUserName is the user keepalived runs scripts as when no script_user
// is configured and the user exists (notify.c get_default_script_user).
const DefaultUserName = "keepalived_script"

// LookupUser resolves `USER [GROUP]` as in `script_user`, `user` in a
// vrrp_script, and the optional user of a notify line: the user's uid and
// primary gid, or the named group's gid (notify.c set_uid_gid).
func LookupUser(name, group string) (Cred, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return Cred{}, fmt.Errorf("script: user %q: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return Cred{}, fmt.Errorf("script: user %q has uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return Cred{}, fmt.Errorf("script: user %q has gid %q: %w", name, u.Gid, err)
	}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return Cred{}, fmt.Errorf("script: group %q: %w", group, err)
		}
		gid, err = strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return Cred{}, fmt.Errorf("script: group %q has gid %q: %w", group, g.Gid, err)
		}
	}
	return Cred{UID: uint32(uid), GID: uint32(gid), Name: name}, nil
}

// DefaultCred is the user a script without its own user runs as
// (notify.c get_default_script_user):
//   - the global `script_user USER [GROUP]` when configured (scriptUser
//     non-empty); if that user does not exist, scripts without a user of
//     their own cannot run (keepalived drops them);
//   - else keepalived_script when that user exists;
//   - else this process's own user (root), except that with
//     enable_script_security a missing keepalived_script is an error ("Unable
//     to set default user keepalived_script for script") and such scripts
//     are dropped.
func DefaultCred(scriptUser, scriptGroup string, security bool) (Cred, error) {
	if scriptUser != "" {
		c, err := LookupUser(scriptUser, scriptGroup)
		if err != nil {
			return Cred{}, fmt.Errorf("script: script_user: %w", err)
		}
		return c, nil
	}
	c, err := LookupUser(DefaultUserName, "")
	if err == nil {
		return c, nil
	}
	var unknown user.UnknownUserError
	if !errors.As(err, &unknown) {
		return Cred{}, err
	}
	if security {
		return Cred{}, fmt.Errorf("script: unable to set default user %s for scripts (enable_script_security is set and neither script_user nor user %s exists)", DefaultUserName, DefaultUserName)
	}
	return Self(), nil
}
