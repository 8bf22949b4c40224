// Package lvs holds vigil's end-to-end tests of virtual servers: real
// `vigil run` processes (built by netnstest.VigilBinary) direct a client's
// HTTP traffic to nginx web servers through nftables NAT, in the LVS-NAT
// layout of the seed tutorial (a client on a front LAN, one or two
// directors holding the VIP there and routing to a back LAN, web servers
// on the back LAN whose default route is the director, or a back VIP that
// VRRP moves with the front one).
//
// The package has no code outside its tests. The tests need root (tier 2);
// the throughput benchmark (BenchmarkThroughput) runs only with -bench:
//
//	go test -run '^$' -bench Throughput -benchtime 1x ./internal/e2e/lvs
package lvs
