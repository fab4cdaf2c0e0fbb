#!/usr/bin/python3
"""A PFCP control plane (SMF) and a GTP-U access node (gNB) built on scapy,
an implementation no one here wrote, driven line by line by the tests.

    gtp_peer.py smf --local ADDR        PFCP commands on stdin, JSON answers
    gtp_peer.py an --local ADDR         GTP-U commands on stdin, JSON answers

Each stdin line is a JSON object {"cmd": ..., ...}; each answer is one JSON
line on stdout. Every receive is bounded by a timeout.
"""

import json
import socket
import sys
import threading
import time

from scapy.all import IP, IPv6, UDP, TCP, Raw, raw
from scapy.contrib import pfcp as P
from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer, GTPEchoRequest, GTPHeader

PFCP_PORT = 8805
GTPU_PORT = 2152


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def ies_of(pkt):
    return list(getattr(pkt, "IE_list", []) or [])


def find(ies, cls):
    for ie in ies:
        if isinstance(ie, cls):
            return ie
    return None


def cause_of(pkt):
    c = find(ies_of(pkt), P.IE_Cause)
    return None if c is None else int(c.cause)


class Smf:
    """PFCP requests with scapy's encoding; Session Report Requests from the
    user plane are answered (cause 1) by a background thread and kept."""

    def __init__(self, local):
        self.local = local
        # A kernel UDP socket: over IPv6 it drops a datagram whose
        # checksum is wrong or zero, so what arrives had a valid one.
        family = socket.AF_INET6 if ":" in local else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((local, PFCP_PORT))
        self.seq = 1
        self.lock = threading.Lock()
        self.replies = {}
        self.reports = []
        self.cond = threading.Condition(self.lock)
        threading.Thread(target=self.reader, daemon=True).start()

    def reader(self):
        while True:
            data, peer = self.sock.recvfrom(65535)
            try:
                pkt = P.PFCP(data)
            except Exception as e:  # keep reading; count it
                with self.cond:
                    self.reports.append({"undecodable": str(e), "hex": data.hex()})
                continue
            if pkt.message_type == 56:  # Session Report Request
                rep = {"seid": int(pkt.seid), "usage": self.usage(pkt, P.IE_UsageReport_SRR), "hex": data.hex()}
                ans = P.PFCP(version=1, S=1, seid=self.cp_seid_for(pkt.seid), seq=pkt.seq) / P.PFCPSessionReportResponse(
                    IE_list=[P.IE_Cause(cause=1)])
                self.sock.sendto(raw(ans), peer)
                with self.cond:
                    self.reports.append(rep)
                    self.cond.notify_all()
                continue
            with self.cond:
                self.replies[int(pkt.seq)] = (pkt, data)
                self.cond.notify_all()

    def cp_seid_for(self, seid):
        return int(seid)

    def usage(self, pkt, cls):
        out_ = []
        for ie in ies_of(pkt):
            if isinstance(ie, cls):
                sub = ies_of(ie)
                vm = find(sub, P.IE_VolumeMeasurement)
                urr = find(sub, P.IE_URR_Id)
                trig = find(sub, P.IE_UsageReportTrigger)
                out_.append({
                    "urr": None if urr is None else int(urr.id),
                    "total": None if vm is None else int(vm.total),
                    "uplink": None if vm is None else int(vm.uplink),
                    "downlink": None if vm is None else int(vm.downlink),
                    "volth": bool(trig is not None and trig.VOLTH),
                    "termr": bool(trig is not None and trig.TERMR),
                })
        return out_

    def request(self, gw, msg, seid=None, timeout=3.0, raw_bytes=None):
        with self.lock:
            seq = self.seq
            self.seq += 1
        if raw_bytes is None:
            hdr = P.PFCP(version=1, S=0 if seid is None else 1, seq=seq)
            if seid is not None:
                hdr.seid = seid
            data = raw(hdr / msg)
        else:
            data = bytearray(raw_bytes)
            # The sequence number sits after the SEID when S is set.
            off = 12 if data and data[0] & 1 else 4
            if len(data) >= off + 3:
                data[off:off + 3] = seq.to_bytes(3, "big")
            data = bytes(data)
        self.sock.sendto(data, (gw, PFCP_PORT))
        deadline = time.time() + timeout
        with self.cond:
            while seq not in self.replies:
                left = deadline - time.time()
                if left <= 0:
                    return None, None, data
                self.cond.wait(left)
            pkt, rdata = self.replies.pop(seq)
        return pkt, rdata, data

    def node_id(self):
        return P.IE_NodeId(id_type=0, ipv4=self.local)

    def run(self, c):
        cmd = c["cmd"]
        gw = c.get("gw")
        if cmd == "heartbeat":
            r, _, _ = self.request(gw, P.PFCPHeartbeatRequest(IE_list=[P.IE_RecoveryTimeStamp(timestamp=3900000000)]))
            return {"type": None if r is None else int(r.message_type)}
        if cmd == "associate":
            r, _, _ = self.request(gw, P.PFCPAssociationSetupRequest(IE_list=[self.node_id(), P.IE_RecoveryTimeStamp(timestamp=3900000000)]))
            return {"type": None if r is None else int(r.message_type), "cause": None if r is None else cause_of(r)}
        if cmd == "release":
            r, _, _ = self.request(gw, P.PFCPAssociationReleaseRequest(IE_list=[self.node_id()]))
            return {"type": None if r is None else int(r.message_type), "cause": None if r is None else cause_of(r)}
        if cmd == "establish":
            return self.establish(c)
        if cmd == "modify":
            return self.modify(c)
        if cmd == "delete":
            r, rdata, _ = self.request(gw, P.PFCPSessionDeletionRequest(IE_list=[]), seid=c["up_seid"])
            if r is None:
                return {"type": None}
            return {"type": int(r.message_type), "cause": cause_of(r), "seid": int(r.seid),
                    "usage": self.usage(r, P.IE_UsageReport_SDR)}
        if cmd == "raw":
            r, rdata, sent = self.request(gw, None, raw_bytes=bytes.fromhex(c["hex"]), timeout=c.get("timeout", 1.5))
            if r is None:
                return {"type": None}
            off = find(ies_of(r), P.IE_OffendingIE)
            return {"type": int(r.message_type), "cause": cause_of(r), "seid": int(r.seid) if r.S else None,
                    "offending": None if off is None else int(off.type)}
        if cmd == "reports":
            deadline = time.time() + c.get("timeout", 3.0)
            want = c.get("count", 1)
            with self.cond:
                while len(self.reports) < want and time.time() < deadline:
                    self.cond.wait(max(0.0, deadline - time.time()))
                return {"reports": list(self.reports)}
        if cmd == "encode":
            # Bytes of an establishment as scapy encodes it (for the tests'
            # malformed variants).
            return {"hex": raw(P.PFCP(version=1, S=1, seid=0, seq=1) / self.establishment(c)).hex()}
        return {"error": "unknown command " + cmd}

    def ue_ip(self, c, sd):
        """The UE's IPv4 address, IPv6 prefix (`ue6`), or both."""
        kw = {}
        if c.get("ue"):
            kw.update(V4=1, ipv4=c["ue"])
        if c.get("ue6"):
            kw.update(V6=1, ipv6=c["ue6"])
        return P.IE_UE_IP_Address(SD=sd, **kw)

    def establishment(self, c):
        ies = [self.node_id(), P.IE_FSEID(v4=1, seid=c["cp_seid"], ipv4=self.local)]
        # "n3v6": the uplink over IPv6 transport (an IPv6 F-TEID, outer
        # header removal GTP-U/UDP/IPv6).
        v6 = bool(c.get("n3v6"))
        if c.get("teid") is None:
            ul_fteid = P.IE_FTEID(V6=1, CH=1) if v6 else P.IE_FTEID(V4=1, CH=1)
        elif v6:
            ul_fteid = P.IE_FTEID(V6=1, TEID=c["teid"], ipv6=c["n3"])
        else:
            ul_fteid = P.IE_FTEID(V4=1, TEID=c["teid"], ipv4=c["n3"])
        ul_pdr = [P.IE_PDR_Id(id=1), P.IE_Precedence(precedence=100),
                  P.IE_PDI(IE_list=[P.IE_SourceInterface(interface=0), ul_fteid, self.ue_ip(c, 0)]),
                  P.IE_OuterHeaderRemoval(header=1 if v6 else 0), P.IE_FAR_Id(id=1)]
        dl_pdr = [P.IE_PDR_Id(id=2), P.IE_Precedence(precedence=100),
                  P.IE_PDI(IE_list=[P.IE_SourceInterface(interface=1), self.ue_ip(c, 1)]),
                  P.IE_FAR_Id(id=2)]
        if c.get("threshold") is not None:
            ul_pdr.append(P.IE_URR_Id(id=1))
            dl_pdr.append(P.IE_URR_Id(id=1))
        if c.get("qfi") is not None:
            dl_pdr.append(P.IE_QER_Id(id=1))
        ies.append(P.IE_CreatePDR(IE_list=ul_pdr))
        ies.append(P.IE_CreatePDR(IE_list=dl_pdr))
        ies.append(P.IE_CreateFAR(IE_list=[P.IE_FAR_Id(id=1), P.IE_ApplyAction(FORW=1),
                                           P.IE_ForwardingParameters(IE_list=[P.IE_DestinationInterface(interface=1)])]))
        dl_far = [P.IE_FAR_Id(id=2)]
        if c.get("dl_teid") is not None:
            dl_far += [P.IE_ApplyAction(FORW=1), P.IE_ForwardingParameters(IE_list=[
                P.IE_DestinationInterface(interface=0), ohc(c)])]
        else:
            dl_far += [P.IE_ApplyAction(BUFF=1)]
        ies.append(P.IE_CreateFAR(IE_list=dl_far))
        if c.get("threshold") is not None:
            ies.append(P.IE_CreateURR(IE_list=[P.IE_URR_Id(id=1), P.IE_MeasurementMethod(VOLUM=1),
                                               P.IE_ReportingTriggers(volume_threshold=1),
                                               P.IE_VolumeThreshold(TOVOL=1, total=c["threshold"])]))
        if c.get("qfi") is not None:
            ies.append(P.IE_CreateQER(IE_list=[P.IE_QER_Id(id=1), P.IE_GateStatus(ul=0, dl=0), P.IE_QFI(QFI=c["qfi"])]))
        return P.PFCPSessionEstablishmentRequest(IE_list=ies)

    def establish(self, c):
        r, rdata, sent = self.request(c["gw"], self.establishment(c), seid=0)
        if r is None:
            return {"type": None}
        res = {"type": int(r.message_type), "cause": cause_of(r), "seid": int(r.seid), "sent": sent.hex()}
        ies = ies_of(r)
        fseid = find(ies, P.IE_FSEID)
        if fseid is not None:
            res["up_seid"] = int(fseid.seid)
        created = find(ies, P.IE_CreatedPDR)
        if created is not None:
            ft = find(ies_of(created), P.IE_FTEID)
            if ft is not None:
                res["teid"] = int(ft.TEID)
                res["n3"] = ft.ipv4 if ft.V4 else None
                res["n3v6"] = ft.ipv6 if ft.V6 else None
        off = find(ies, P.IE_OffendingIE)
        if off is not None:
            res["offending"] = int(off.type)
        return res

    def modify(self, c):
        ies = [P.IE_UpdateFAR(IE_list=[P.IE_FAR_Id(id=2), P.IE_ApplyAction(FORW=1), P.IE_UpdateForwardingParameters(IE_list=[
            P.IE_DestinationInterface(interface=0), ohc(c)])])]
        r, _, _ = self.request(c["gw"], P.PFCPSessionModificationRequest(IE_list=ies), seid=c["up_seid"])
        if r is None:
            return {"type": None}
        return {"type": int(r.message_type), "cause": cause_of(r), "seid": int(r.seid)}


def ohc(c):
    """Outer Header Creation toward the access node, of its family."""
    if ":" in c["an"]:
        return P.IE_OuterHeaderCreation(GTPUUDPIPV6=1, TEID=c["dl_teid"], ipv6=c["an"])
    return P.IE_OuterHeaderCreation(GTPUUDPIPV4=1, TEID=c["dl_teid"], ipv4=c["an"])


class AccessNode:
    """G-PDUs up with scapy's GTP-U encoding; what comes back decoded."""

    def __init__(self, local):
        # A kernel UDP socket: over IPv6 it drops a datagram whose
        # checksum is wrong or zero, so what arrives had a valid one.
        family = socket.AF_INET6 if ":" in local else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((local, GTPU_PORT))
        self.sock.settimeout(0.2)

    def gpdu(self, c, i):
        payload = (c.get("payload", "x") * c.get("repeat", 1) + " %d" % i).encode()
        # An IPv6 T-PDU when the flow is from the UE's IPv6 address.
        net = (lambda **kw: IPv6(**kw)) if ":" in c["ue"] else (lambda **kw: IP(**kw))
        if c.get("proto", "udp") == "udp":
            inner = net(src=c["ue"], dst=c["dst"]) / UDP(sport=c["sport"], dport=c["dport"]) / Raw(payload)
        else:
            inner = net(src=c["ue"], dst=c["dst"]) / TCP(sport=c["sport"], dport=c["dport"], flags="S")
        inner = (IPv6 if ":" in c["ue"] else IP)(raw(inner))  # checksums and lengths filled in
        qfi = c.get("qfi")
        if qfi is None:
            gtp = GTP_U_Header(teid=c["teid"], S=1 if c.get("seq") else 0, seq=c.get("seq", 0))
        else:
            gtp = GTP_U_Header(teid=c["teid"], E=1, next_ex=0x85) / GTPPDUSessionContainer(type=1, QFI=qfi)
        return raw(gtp / inner), len(raw(inner))

    def run(self, c):
        cmd = c["cmd"]
        if cmd == "send":
            sent, inner_bytes = 0, 0
            gap = 1.0 / c["pps"] if c.get("pps") else 0
            for i in range(c.get("count", 1)):
                data, n = self.gpdu(c, i)
                self.sock.sendto(data, (c["n3"], GTPU_PORT))
                sent += 1
                inner_bytes += n
                if gap:
                    time.sleep(gap)
            return {"sent": sent, "inner_bytes": inner_bytes}
        if cmd == "echo":
            data = raw(GTPHeader(version=1, PT=1, S=1, gtp_type=1, teid=0, seq=c.get("seq", 7)) / GTPEchoRequest())
            self.sock.sendto(data, (c["n3"], GTPU_PORT))
            return self.collect(c.get("timeout", 2.0), 1)
        if cmd == "raw":
            self.sock.sendto(bytes.fromhex(c["hex"]), (c["n3"], GTPU_PORT))
            return {"sent": 1}
        if cmd == "recv":
            return self.collect(c.get("timeout", 2.0), c.get("count", 1))
        return {"error": "unknown command " + cmd}

    def collect(self, timeout, count):
        got = []
        deadline = time.time() + timeout
        while len(got) < count and time.time() < deadline:
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            g = GTPHeader(data)
            rec = {"from": peer[0], "type": int(g.gtp_type), "teid": int(g.teid), "seq": int(g.seq) if g.S else None,
                   "len": len(data)}
            if g.gtp_type == 255:
                pdu = g
                qfi = None
                if g.E and g.haslayer(GTPPDUSessionContainer):
                    pc = g[GTPPDUSessionContainer]
                    qfi = int(pc.QFI)
                    rec["pdu_type"] = int(pc.type)
                rec["qfi"] = qfi
                inner = g[IP] if g.haslayer(IP) else None
                if inner is None and g.haslayer(IPv6):
                    rec["inner"] = inner6(g[IPv6])
                if inner is not None:
                    rec["inner"] = {"src": inner.src, "dst": inner.dst, "len": int(inner.len),
                                    "sport": int(inner.sport) if inner.haslayer(UDP) or inner.haslayer(TCP) else None,
                                    "dport": int(inner.dport) if inner.haslayer(UDP) or inner.haslayer(TCP) else None,
                                    "payload": l4_payload(inner)}
                    # Recompute the checksums and compare with what came.
                    fresh = inner.copy()
                    del fresh.chksum
                    if fresh.haslayer(UDP):
                        del fresh[UDP].chksum
                    if fresh.haslayer(TCP):
                        del fresh[TCP].chksum
                    fresh = IP(raw(fresh))
                    rec["inner"]["ip_csum_ok"] = fresh.chksum == inner.chksum
                    if inner.haslayer(UDP):
                        rec["inner"]["l4_csum_ok"] = inner[UDP].chksum in (0, fresh[UDP].chksum)
                    elif inner.haslayer(TCP):
                        rec["inner"]["l4_csum_ok"] = inner[TCP].chksum == fresh[TCP].chksum
            elif g.gtp_type == 26:
                rec["raw"] = data.hex()
            got.append(rec)
        return {"received": got}


def inner6(inner):
    """An IPv6 T-PDU as it came, its transport checksum recomputed."""
    rec = {"src": inner.src, "dst": inner.dst, "len": 40 + int(inner.plen),
           "sport": int(inner.sport) if inner.haslayer(UDP) or inner.haslayer(TCP) else None,
           "dport": int(inner.dport) if inner.haslayer(UDP) or inner.haslayer(TCP) else None,
           "payload": l4_payload(inner), "ip_csum_ok": True}
    fresh = inner.copy()
    for layer in (UDP, TCP):
        if fresh.haslayer(layer):
            del fresh[layer].chksum
            fresh = IPv6(raw(fresh))
            rec["l4_csum_ok"] = fresh[layer].chksum == inner[layer].chksum
    return rec


def l4_payload(inner):
    """The transport payload as bytes sent (scapy would dissect UDP 53 as DNS)."""
    for layer in (UDP, TCP):
        if inner.haslayer(layer):
            return bytes(inner[layer].payload).decode(errors="replace")
    return ""


def main():
    role, local = sys.argv[1], sys.argv[sys.argv.index("--local") + 1]
    peer = Smf(local) if role == "smf" else AccessNode(local)
    out({"ready": True})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            out(peer.run(json.loads(line)))
        except Exception as e:  # an answer for every command
            out({"error": "%s: %s" % (type(e).__name__, e)})


if __name__ == "__main__":
    main()
