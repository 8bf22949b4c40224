package main

import "time"

// textSettle is how long after the start or a reload the daemon releases
// its binary's text and rodata pages (textpages.Release) a second time,
// the first being at once: after the takeovers of instances starting as
// MASTER (Master_Down_Interval: under 4 s at advert_int 1), the second
// burst of gratuitous ARPs (garp_master_delay, 5 s by default) and the
// collector's first cycles once the configuration's garbage is gone
// (releaseConfigMemory). Measured with 1,000 VRRP instances (vigil-bench's
// scale mode): the first release leaves 9.2 MB of the master's 13.3 MB of
// file pages resident, the second 7.0 MB. What the daemon uses afterwards
// faults back from the page cache, once.
const textSettle = 20 * time.Second
