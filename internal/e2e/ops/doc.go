// Package ops holds vigil's end-to-end operational tests: the real `vigil
// run` binary in lab network namespaces (internal/netnstest), driven the way
// an operator drives it (SIGHUP and `vigil reload`, `vigil status --json`,
// `vigil handover`, a Prometheus scraper, a browser on the status page, the
// keepalived dump signals) and observed from outside (tcpdump on the hosts'
// interfaces, an HTTP client through the virtual IP).
//
// The package has no code of its own: everything is in its _test.go files.
// The tests need root and the lab's tools; outside CI they skip without
// them, under CI=true they fail (netnstest.RequireRoot).
package ops
