// Package e2e runs vigil and keepalived as real processes inside lab
// namespaces (internal/lab) and observes them from outside: their logs and
// API, the addresses the kernel holds, the packets on the LAN, and a client
// that talks to the virtual address.
//
// The helpers here return errors and take no testing.TB, so that both the
// namespace tests of this package and cmd/vigil-bench can use them. The
// tests (e2e_test.go and friends) build the network of the keepalived
// MASTER/BACKUP tutorial (seed 000): nodes 192.168.1.105 and .106 on eth0,
// VIP 192.168.1.100/24 label eth0:1, a client 192.168.1.10.
//
// Concurrency: a Node is used by one goroutine at a time, except Log, Pid
// and Running, which may be called concurrently. Sampler, Poller and
// Sniffer run their own goroutine between Start and Stop; their results are
// read after Stop.
package e2e
