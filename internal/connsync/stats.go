package connsync

import (
	"bufio"
	"strconv"
	"strings"
)

// Stats is what `conntrackd -s` prints that vigil reports.
type Stats struct {
	Internal, External      int64 // current active connections in each cache
	BytesSent, BytesRecv    uint64
	SendErrors, RecvErrors  uint64
	LostMsgs, MalformedMsgs uint64
}

// ParseStats reads `conntrackd -s` output. Sections it does not know are
// skipped; a missing figure stays zero. ok is false when neither cache
// was found (not conntrackd's statistics).
func ParseStats(out string) (st Stats, ok bool) {
	section := ""
	foundInt, foundExt := false, false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			continue
		case strings.HasPrefix(line, "UDP traffic") || strings.HasPrefix(line, "multicast traffic"):
			section = "channel"
			continue
		case strings.HasSuffix(line, ":") && !strings.Contains(line, "\t"):
			section = strings.TrimSuffix(line, ":")
			continue
		}
		f := strings.Fields(line)
		switch section {
		case "cache internal", "cache external":
			if strings.HasPrefix(line, "current active connections:") && len(f) >= 4 {
				n, err := strconv.ParseInt(f[3], 10, 64)
				if err != nil {
					continue
				}
				if section == "cache internal" {
					st.Internal, foundInt = n, true
				} else {
					st.External, foundExt = n, true
				}
			}
		case "channel":
			// "8 Bytes sent  0 Bytes recv", "0 Error send  0 Error recv".
			if len(f) == 6 {
				a, err1 := strconv.ParseUint(f[0], 10, 64)
				b, err2 := strconv.ParseUint(f[3], 10, 64)
				if err1 != nil || err2 != nil {
					continue
				}
				switch f[1] + " " + f[2] {
				case "Bytes sent":
					st.BytesSent, st.BytesRecv = a, b
				case "Error send":
					st.SendErrors, st.RecvErrors = a, b
				}
			}
		case "message tracking":
			if len(f) == 6 && f[1] == "Malformed" {
				st.MalformedMsgs, _ = strconv.ParseUint(f[0], 10, 64)
				st.LostMsgs, _ = strconv.ParseUint(f[3], 10, 64)
			}
		}
	}
	return st, foundInt && foundExt
}
