package dump

// Readers written the way the public keepalived exporters read keepalived's
// files, so the tests check vigil's dumps against what those tools accept:
//
//   - mehdy/keepalived-exporter internal/collector/parser.go: ParseVRRPData
//     (keepalived.data), ParseVRRPScript, ParseStats (keepalived.stats),
//     ParseJSON + collector.go's VRRP/VRRPData/VRRPStats structs
//     (keepalived.json), ParseVIP;
//   - gen2brain/keepalived_exporter collector/collector.go: the KA struct it
//     decodes keepalived.json into.
//
// They keep those tools' quirks (a line is a property when it contains '=',
// an array header when it contains ':'; counters must be integers) because
// the point is to fail where the tools would fail. ParseStats is stricter
// than the original: an unknown counter line is an error, to catch typos.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

type exVRRPData struct {
	IName        string   `json:"iname"`
	State        int      `json:"state"`
	WantState    int      `json:"wantstate"`
	Intf         string   `json:"ifp_ifname"`
	GArpDelay    int      `json:"garp_delay"`
	VRID         int      `json:"vrid"`
	VIPs         []string `json:"vips"`
	ExcludedVIPs []string `json:"evips"`
}

type exVRRPStats struct {
	AdvertRcvd        int `json:"advert_rcvd"`
	AdvertSent        int `json:"advert_sent"`
	BecomeMaster      int `json:"become_master"`
	ReleaseMaster     int `json:"release_master"`
	PacketLenErr      int `json:"packet_len_err"`
	AdvertIntervalErr int `json:"advert_interval_err"`
	IPTTLErr          int `json:"ip_ttl_err"`
	InvalidTypeRcvd   int `json:"invalid_type_rcvd"`
	AddrListErr       int `json:"addr_list_err"`
	InvalidAuthType   int `json:"invalid_authtype"`
	AuthTypeMismatch  int `json:"authtype_mismatch"`
	AuthFailure       int `json:"auth_failure"`
	PRIZeroRcvd       int `json:"pri_zero_rcvd"`
	PRIZeroSent       int `json:"pri_zero_sent"`
}

type exVRRP struct {
	Data  exVRRPData  `json:"data"`
	Stats exVRRPStats `json:"stats"`
}

// gen2brain's view of the same file.
type exKA struct {
	Data struct {
		Iname          string  `json:"iname"`
		IfpIfname      string  `json:"ifp_ifname"`
		LastTransition float64 `json:"last_transition"`
		Vrid           int     `json:"vrid"`
		State          int     `json:"state"`
		Wantstate      int     `json:"wantstate"`
	} `json:"data"`
	Stats exVRRPStats `json:"stats"`
}

type exScript struct{ Name, Status, State string }

var exStates = []string{"INIT", "BACKUP", "MASTER", "FAULT"}

func exState(s string) (int, error) {
	for i, v := range exStates {
		if v == s {
			return i, nil
		}
	}
	return -1, fmt.Errorf("unknown state found: %s", s)
}

func exParseJSON(r io.Reader) ([]exVRRP, error) {
	var out []exVRRP
	err := json.NewDecoder(r).Decode(&out)
	return out, err
}

func exParseVRRPData(r io.Reader) (map[string]*exVRRPData, error) {
	data := map[string]*exVRRPData{}
	var instance, key, val string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, " VRRP Instance") && strings.Contains(l, "="):
			instance = strings.TrimSpace(strings.Split(strings.TrimSpace(l), "=")[1])
			data[instance] = &exVRRPData{IName: instance}
		case strings.HasPrefix(l, "   ") && instance != "":
			if strings.HasPrefix(l, "     ") {
				val = strings.TrimSpace(l)
			} else {
				var args []string
				switch {
				case strings.Contains(l, "="):
					args = strings.Split(strings.TrimSpace(l), "=")
				case strings.Contains(l, ":"):
					args = strings.Split(strings.TrimSpace(l), ":")
				default:
					continue
				}
				key = strings.TrimSpace(args[0])
				if key == "Virtual IP" {
					continue
				}
				val = strings.TrimSpace(args[1])
			}
			if (strings.HasPrefix(key, "Virtual IP (") || key == "Virtual IP") && val != "" {
				data[instance].VIPs = append(data[instance].VIPs, val)
			}
			if strings.HasPrefix(key, "Virtual IP Excluded") && val != "" {
				data[instance].ExcludedVIPs = append(data[instance].ExcludedVIPs, val)
			}
			var err error
			switch key {
			case "State":
				data[instance].State, err = exState(val)
			case "Wantstate":
				data[instance].WantState, err = exState(val)
			case "Interface", "Listening device":
				data[instance].Intf = val
			case "Gratuitous ARP delay":
				data[instance].GArpDelay, err = strconv.Atoi(val)
			case "Virtual Router ID":
				data[instance].VRID, err = strconv.Atoi(val)
			}
			if err != nil {
				return data, err
			}
		case strings.HasPrefix(l, " VRRP Version") || strings.HasPrefix(l, " VRRP Script"):
			continue
		default:
			instance = ""
		}
	}
	return data, sc.Err()
}

func exParseVRRPScript(r io.Reader) []exScript {
	var out []exScript
	var s exScript
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, " VRRP Script") && strings.Contains(l, "="):
			if s.Name != "" {
				out = append(out, s)
				s = exScript{}
			}
			s.Name = strings.TrimSpace(strings.Split(strings.TrimSpace(l), "=")[1])
		case strings.HasPrefix(l, "   ") && s.Name != "":
			if !strings.Contains(l, "=") {
				continue
			}
			kv := strings.Split(strings.TrimSpace(l), "=")
			switch strings.TrimSpace(kv[0]) {
			case "Status":
				s.Status = strings.TrimSpace(kv[1])
			case "State":
				s.State = strings.TrimSpace(kv[1])
			}
		case !strings.HasPrefix(l, "    "):
			if s.Name != "" {
				out = append(out, s)
				s = exScript{}
			}
		}
	}
	if s.Name != "" {
		out = append(out, s)
	}
	return out
}

func exParseStats(r io.Reader) (map[string]*exVRRPStats, error) {
	stats := map[string]*exVRRPStats{}
	var instance, section string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "VRRP Instance") && strings.Contains(l, ":"):
			instance = strings.TrimSpace(strings.Split(strings.TrimSpace(l), ":")[1])
			stats[instance] = &exVRRPStats{}
		case strings.HasPrefix(l, "  ") && strings.HasSuffix(l, ":"):
			section = strings.TrimSpace(strings.Split(strings.TrimSpace(l), ":")[0])
		case strings.HasPrefix(l, "    ") && section != "":
			kv := strings.Split(strings.TrimSpace(l), ":")
			key := strings.TrimSpace(kv[0])
			v, err := strconv.Atoi(strings.TrimSpace(kv[1]))
			if err != nil {
				return stats, fmt.Errorf("stats %q: %w", l, err)
			}
			st := stats[instance]
			switch section + "/" + key {
			case "Advertisements/Received":
				st.AdvertRcvd = v
			case "Advertisements/Sent":
				st.AdvertSent = v
			case "Packet Errors/Length":
				st.PacketLenErr = v
			case "Packet Errors/TTL":
				st.IPTTLErr = v
			case "Packet Errors/Invalid Type":
				st.InvalidTypeRcvd = v
			case "Packet Errors/Advertisement Interval":
				st.AdvertIntervalErr = v
			case "Packet Errors/Address List":
				st.AddrListErr = v
			case "Authentication Errors/Invalid Type":
				st.InvalidAuthType = v
			case "Authentication Errors/Type Mismatch":
				st.AuthTypeMismatch = v
			case "Authentication Errors/Failure":
				st.AuthFailure = v
			case "Priority Zero/Received":
				st.PRIZeroRcvd = v
			case "Priority Zero/Sent":
				st.PRIZeroSent = v
			default:
				return stats, fmt.Errorf("stats: unknown %s/%s", section, key)
			}
		case strings.HasPrefix(l, "  ") && !strings.HasSuffix(l, ":") && !strings.HasPrefix(l, "    "):
			section = ""
			kv := strings.Split(strings.TrimSpace(l), ":")
			v, err := strconv.Atoi(strings.TrimSpace(kv[1]))
			if err != nil {
				return stats, fmt.Errorf("stats %q: %w", l, err)
			}
			switch strings.TrimSpace(kv[0]) {
			case "Became master":
				stats[instance].BecomeMaster = v
			case "Released master":
				stats[instance].ReleaseMaster = v
			}
		}
	}
	return stats, sc.Err()
}

// exParseVIP is mehdy's ParseVIP: address and device are fields 0 and 2.
func exParseVIP(vip string) (addr, dev string, ok bool) {
	f := strings.Split(vip, " ")
	if len(f) < 3 {
		return "", "", false
	}
	return f[0], f[2], true
}
