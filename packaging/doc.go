// Package packaging holds no code: its tests build the Debian package with
// `make deb`, inspect and install it into a throwaway root, check the
// systemd unit with systemd-analyze, render the man pages, and run the
// installed binary in a lab namespace the way the unit runs it.
package packaging
