// Package lvs holds vigil's end-to-end tests of virtual servers: real
// `vigil run` processes (built by netnstest.VigilBinary) direct a client's
// HTTP traffic to nginx web servers through nftables NAT, in the LVS-NAT
// layout of the seed tutorial: a client on a front LAN, one or two
// directors holding the VIP there and routing to a back LAN, web servers
// on the back LAN whose default route is the director, or a back VIP that
// VRRP moves with the front one.
//
// The tests need root (tier 2) and Debian's nginx(-light) (and nmap for the
// DR seed test):
//
//   - TestTCPCheckRemovesAndRestoresRealServer: rr spread, removal and
//     return times of TCP_CHECK (scaled, host unplugged, tutorial values),
//     client failures only while the dead server is still in the pool;
//   - TestHTTPGetDigestRemovesWrongPage: HTTP_GET digest from `vigil
//     genhash`; a changed page or a 404 removes the server;
//   - TestMiscCheckDynamicWeight: the tutorial's MISC_CHECK script, with
//     misc_dynamic weights in `vigil status --json`, nftables and traffic;
//   - TestQuorumSorryServerInhibit: quorum, hysteresis, sorry_server,
//     inhibit_on_failure;
//   - TestDirectorPairFailover: MASTER/BACKUP directors (sync group), the
//     MASTER killed with SIGKILL under traffic;
//   - TestDirectorPairGracefulStopRefusesNothing: the MASTER stopped with
//     SIGTERM keeps its virtual servers until it has handed the VIPs over,
//     so no client connection is refused;
//   - TestDriftRepairAndIncrementalReload: the table deleted by hand comes
//     back; reloads keep established keep-alive connections;
//   - TestSeedDRPairFailover: the seed's LVS-DR pair as written (ens160 and
//     ens224, real servers with the VIP on lo, TCP_CHECK, HTTP_GET with a
//     digest and the tutorial's nmap MISC_CHECK script): both servers answer
//     with the client's address and the VIP unchanged, 30 long-lived
//     connections survive a kill -9 of the master (nftables DR, no sync), a
//     dead real server leaves the pool.
//
// The throughput benchmark runs only with -bench:
//
//	go test -run '^$' -bench Throughput -benchtime 1x -v ./internal/e2e/lvs
//
// (BenchmarkDRThroughput compares DR, NAT and direct on the seed's LAN.)
//
// The package has no code outside its tests.
package lvs
