package textpages

import (
	"context"
	"time"
)

// Releaser calls Release when told that a burst of one-off work ended
// (the daemon started, a reload applied), and once more Settle later, when
// what such a burst sets going (a takeover's gratuitous ARPs after
// garp_master_delay, the first collector cycles) has run too. Between
// those calls it costs nothing: no timer runs, no page is dropped, so
// code in steady use faults back once.
//
// Kick may be called from any goroutine, also before Run starts (the
// request waits) and on a nil Releaser (it does nothing); Run is called
// once.
type Releaser struct {
	// Settle is how long after a Kick the second release comes.
	Settle time.Duration
	// Release drops the pages (the package's Release, logged).
	Release func()
	kick    chan struct{}
}

// NewReleaser returns a Releaser calling release at each Kick and settle
// after the last one.
func NewReleaser(settle time.Duration, release func()) *Releaser {
	return &Releaser{Settle: settle, Release: release, kick: make(chan struct{}, 1)}
}

// Kick asks for a release now and another one Settle later; kicks that
// come while one waits make one.
func (r *Releaser) Kick() {
	if r == nil {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run serves the kicks until ctx ends.
func (r *Releaser) Run(ctx context.Context) error {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
			r.Release()
			t.Reset(r.Settle)
		case <-t.C:
			r.Release()
		}
	}
}
