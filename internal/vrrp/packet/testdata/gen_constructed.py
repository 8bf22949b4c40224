# Builds the constructed golden frames of packet_test.go with scapy and
# writes them to constructed.pcap; tshark then checks every checksum:
#   /usr/bin/python3 gen_constructed.py   (also writes constructed.hex, one frame a line)
#   tshark -V -r constructed.pcap > constructed.tshark.txt
#   tshark -V -o vrrp.v3_checksum_as_in_v2:TRUE -r constructed.pcap > constructed-as-v2.tshark.txt
# Frames:
#   1  v3 over IPv6, link-local source, VIPs fe80::100 and 2001:db8::100
#   2  the same with priority 0
#   3  v3 over IPv4 unicast 10.0.0.1 -> 10.0.0.2, default checksum
#   4  frame 3 with the checksum computed without pseudo-header
#      (correct only under vrrp.v3_checksum_as_in_v2)
#   5  frame 3 with the checksum computed with 224.0.0.18 in the pseudo-header
#   6  frame 5's VRRP bytes sent to 224.0.0.18, where that checksum is the
#      default one: tshark's [correct] on frame 6 proves frame 5's value
from scapy.all import Ether, IP, IPv6, wrpcap, raw
from scapy.layers.vrrp import VRRPv3
from scapy.utils import checksum
import socket, struct

def v3(prio, addrs):
    return VRRPv3(vrid=55, priority=prio, adv=100, ipcount=len(addrs), addrlist=addrs)

e6 = Ether(src="02:00:00:00:01:01", dst="33:33:00:00:00:12")
e4 = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")
f1 = e6 / IPv6(src="fe80::1", dst="ff02::12", hlim=255) / v3(100, ["fe80::100", "2001:db8::100"])
f2 = e6 / IPv6(src="fe80::1", dst="ff02::12", hlim=255) / v3(0, ["fe80::100", "2001:db8::100"])
f3 = e4 / IP(src="10.0.0.1", dst="10.0.0.2", ttl=255) / v3(100, ["10.0.0.100"])

body = bytearray(raw(f3.getlayer(VRRPv3)))
body[6:8] = b"\0\0"
nopseudo = bytes(body[:6]) + struct.pack("!H", checksum(bytes(body))) + bytes(body[8:])
ph = socket.inet_aton("10.0.0.1") + socket.inet_aton("224.0.0.18") + struct.pack("!BBH", 0, 112, len(body))
mcast = bytes(body[:6]) + struct.pack("!H", checksum(ph + bytes(body))) + bytes(body[8:])

f4 = e4 / IP(src="10.0.0.1", dst="10.0.0.2", ttl=255, proto=112) / VRRPv3(nopseudo)
f5 = e4 / IP(src="10.0.0.1", dst="10.0.0.2", ttl=255, proto=112) / VRRPv3(mcast)
f6 = Ether(src="02:00:00:00:01:01", dst="01:00:5e:00:00:12") / IP(src="10.0.0.1", dst="224.0.0.18", ttl=255, proto=112) / VRRPv3(mcast)
frames = [f1, f2, f3, f4, f5, f6]
wrpcap("constructed.pcap", frames)
with open("constructed.hex", "w") as out:
    for f in frames:
        out.write(raw(f).hex() + "\n")
