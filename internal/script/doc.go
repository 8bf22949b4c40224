// Package script runs external programs the way keepalived 2.2.7 does:
// notify scripts, vrrp_script track scripts, MISC_CHECK and the notify FIFO
// script. It splits command strings as keepalived's parser does, resolves the
// user a script runs as (script_user, keepalived_script), refuses insecure
// scripts under enable_script_security (lib/notify.c check_script_secure), and
// runs each program in its own process group with a scrubbed environment and
// a timeout after which the whole group is killed.
//
// The vrrp_script runner (TrackScript) lives here too.
package script
