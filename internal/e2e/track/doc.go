// Package track holds end-to-end tests of vigil's trackers: real `vigil run`
// processes (netnstest.VigilBinary) in lab hosts made of network namespaces,
// with real services (Debian's nginx-light and haproxy), as the tutorials in
// /work/shared/seeds configure them:
//
//   - seed 001: nginx on two nodes, a vrrp_script that asks whether nginx
//     runs, weight +20 / -20 / 0, mcast_src_ip, preempt and nopreempt;
//   - seed 003: haproxy on two nodes, two VIPs with crossed priorities,
//     vrrp_track_process on haproxy;
//   - a vrrp_sync_group over an inside and an outside LAN, with group notify
//     scripts and mail;
//   - notify ordering under flapping (scripts and vrrp_notify_fifo), a hung
//     notify script, smtp_alert mail;
//
// and benchmarks (go test -bench, never in default runs): 100 vrrp_scripts
// in one daemon, and the latency from a tracked process's exit to the
// lowered priority on the wire.
//
// The package has no code of its own outside its tests.
package track
