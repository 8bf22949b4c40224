package probe_test

import (
	"context"
	"fmt"
	"github.com/vigil-ha/vigil/internal/cmdline"
	"net/netip"
	"time"

	"github.com/vigil-ha/vigil/internal/check"
	"github.com/vigil-ha/vigil/internal/check/probe"
	"github.com/vigil-ha/vigil/internal/script"
)

// The seed tutorial's virtual server, mapped to checkers:
//
//	virtual_server 192.168.118.110 80 {
//	    delay_loop 6
//	    real_server 192.168.118.131 80 {
//	        weight 1
//	        TCP_CHECK { connect_timeout 3  retry 3  delay_before_retry 3  connect_port 80 }
//	    }
//	    real_server 192.168.118.129 80 {
//	        weight 1
//	        MISC_CHECK { misc_path "/etc/keepalived/test.sh 192.168.118.129 80"  misc_timeout 3 }
//	    }
//	}
func Example() {
	tcp := check.Defaults(check.KindTCP, 6*time.Second) // delay_loop from the virtual server
	tcp.Retry, tcp.DelayBeforeRetry = 3, 3*time.Second

	argv, err := cmdline.Split("/etc/keepalived/test.sh 192.168.118.129 80")
	if err != nil {
		panic(err)
	}
	// The script is checked once (script.Prepare: it exists, it is
	// executable, enable_script_security) and run as every other script.
	misc, err := script.Prepare(script.Command{Args: argv, Cred: script.Self(), What: "misc_path"}, script.Policy{})
	if err != nil {
		panic(err)
	}
	r, err := probe.NewRunner(probe.Options{
		Servers: []probe.RealServer{
			{ID: "192.168.118.131:80", Weight: 1, Checkers: []probe.Checker{{
				Name:   "TCP_CHECK 192.168.118.131:80",
				Policy: tcp,
				Check: &probe.TCP{Conn: probe.Conn{
					Addr: netip.MustParseAddrPort("192.168.118.131:80"), ConnectPort: 80, Timeout: 3 * time.Second,
				}},
			}}},
			{ID: "192.168.118.129:80", Weight: 1, Checkers: []probe.Checker{{
				Name:   "MISC_CHECK " + argv[0],
				Policy: check.Defaults(check.KindMisc, 6*time.Second),
				Check: &probe.Misc{Argv: argv, Timeout: 3 * time.Second,
					Run: probe.ScriptRun(script.NewRunner(script.RunnerOptions{}), misc)},
			}}},
		},
		OnEvent: func(e probe.Event) {
			fmt.Printf("%s up=%v weight=%d: %s\n", e.Server, e.Up, e.Weight, e.Reason)
		},
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a daemon runs until SIGTERM
	_ = r.Run(ctx)
}
