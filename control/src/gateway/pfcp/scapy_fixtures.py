#!/usr/bin/python3
"""The interop fixtures of `tests.rs`: PFCP requests built by scapy's
independent implementation (scapy.contrib.pfcp, TS 29.244 V15.6.0).
Run with the system python that has scapy: /usr/bin/python3 scapy_fixtures.py
Node-related messages need S=0 (scapy's default is S=1).
`scapy_fixtures.py --check HEX...` parses our messages (the OUR_* fixtures):
every IE must be a class scapy knows, and scapy must rebuild the same bytes."""
import sys
from scapy.contrib.pfcp import *
from scapy.packet import Raw


def check(hexes):
    def walk(ies, depth):
        for ie in ies:
            assert not isinstance(ie, (IE_NotImplemented, Raw)), ie
            print("  " * depth, ie.name, {k: v for k, v in ie.fields.items() if k != "IE_list"})
            walk(getattr(ie, "IE_list", None) or [], depth + 1)
    for h in hexes:
        p = PFCP(bytes.fromhex(h))
        assert bytes(p) == bytes.fromhex(h) and not isinstance(p.payload, Raw)
        print(p.payload.name, "seq", p.seq)
        walk(p.payload.IE_list, 1)


if sys.argv[1:2] == ["--check"]:
    check(sys.argv[2:])
    sys.exit(0)

CP = "10.0.0.1"
ts = 3_900_000_000


def node_id():
    return IE_NodeId(id_type=0, ipv4=CP)


# The uplink F-TEID the UP chooses, and the outer header it removes:
# GTP-U/UDP/IPv4 (0) by default.
FTEID_CH_V4 = IE_FTEID(V4=1, CH=1)


def uplink_pdr(fteid=FTEID_CH_V4, ohr=0):
    return IE_CreatePDR(IE_list=[
        IE_PDR_Id(id=1), IE_Precedence(precedence=100),
        IE_PDI(IE_list=[IE_SourceInterface(interface=0), fteid,
                        IE_NetworkInstance(instance=b"internet"), IE_QFI(QFI=9)]),
        IE_OuterHeaderRemoval(header=ohr), IE_FAR_Id(id=1), IE_URR_Id(id=1), IE_QER_Id(id=1)])


def downlink_pdr(ue):
    return IE_CreatePDR(IE_list=[
        IE_PDR_Id(id=2), IE_Precedence(precedence=100),
        IE_PDI(IE_list=[IE_SourceInterface(interface=1), ue]),
        IE_FAR_Id(id=2), IE_URR_Id(id=1), IE_QER_Id(id=1)])


UE_V4 = IE_UE_IP_Address(V4=1, SD=1, ipv4="10.45.0.2")
# An IPv4v6 PDU session (the UE's /64 prefix), and an IPv6-only one.
UE_DUAL = IE_UE_IP_Address(V4=1, V6=1, SD=1, ipv4="10.45.0.2", ipv6="2001:db8:cafe:1::")
UE_V6 = IE_UE_IP_Address(V6=1, SD=1, ipv6="2001:db8:cafe:1::")


def ohc(teid, addr):
    return IE_OuterHeaderCreation(GTPUUDPIPV4=1, TEID=teid, ipv4=addr)


# GTP-U over IPv6 N3: the access node's IPv6 address; and an OHC with both
# GTP-U bits at once (TEID, IPv4 then IPv6 address, in the spec's order).
OHC_V6 = IE_OuterHeaderCreation(GTPUUDPIPV6=1, TEID=0x1234, ipv6="2001:db8:a::10")
OHC_BOTH = IE_OuterHeaderCreation(GTPUUDPIPV4=1, GTPUUDPIPV6=1, TEID=0x1234,
                                  ipv4="192.168.1.10", ipv6="2001:db8:a::10")


def establishment(with_ohc, ue=UE_V4, dl_ohc=None, ul=None):
    dl_far = [IE_FAR_Id(id=2)]
    if with_ohc:
        dl_far += [IE_ApplyAction(FORW=1), IE_ForwardingParameters(IE_list=[
            IE_DestinationInterface(interface=0), dl_ohc or ohc(0x1234, "192.168.1.10")])]
    else:
        dl_far += [IE_ApplyAction(BUFF=1)]
    return PFCP(S=1, seid=0, seq=3) / PFCPSessionEstablishmentRequest(IE_list=[
        node_id(), IE_FSEID(v4=1, seid=0x1111, ipv4=CP),
        ul or uplink_pdr(), downlink_pdr(ue),
        IE_CreateFAR(IE_list=[IE_FAR_Id(id=1), IE_ApplyAction(FORW=1),
                              IE_ForwardingParameters(IE_list=[IE_DestinationInterface(interface=1)])]),
        IE_CreateFAR(IE_list=dl_far),
        IE_CreateURR(IE_list=[IE_URR_Id(id=1), IE_MeasurementMethod(VOLUM=1),
                              IE_ReportingTriggers(volume_threshold=1),
                              IE_VolumeThreshold(TOVOL=1, total=1_000_000)]),
        IE_CreateQER(IE_list=[IE_QER_Id(id=1), IE_GateStatus(), IE_QFI(QFI=9)]),
    ])


fixtures = {
    "HEARTBEAT_REQ": PFCP(S=0, seq=1) / PFCPHeartbeatRequest(IE_list=[IE_RecoveryTimeStamp(timestamp=ts)]),
    "ASSOC_SETUP_REQ": PFCP(S=0, seq=2) / PFCPAssociationSetupRequest(IE_list=[node_id(), IE_RecoveryTimeStamp(timestamp=ts)]),
    "ESTABLISH_REQ": establishment(True),
    "ESTABLISH_REQ_NO_OHC": establishment(False),
    "ESTABLISH_REQ_DUAL": establishment(True, UE_DUAL),
    "ESTABLISH_REQ_V6": establishment(True, UE_V6),
    # GTP-U over IPv6: CH asking for IPv6 only, GTP-U/UDP/IPv6 removal (1)
    # and creation.
    "ESTABLISH_REQ_N3V6": establishment(True, dl_ohc=OHC_V6,
                                        ul=uplink_pdr(IE_FTEID(V6=1, CH=1), ohr=1)),
    "ESTABLISH_REQ_OHC_BOTH": establishment(True, dl_ohc=OHC_BOTH),
    # our first UP SEID is 1; our first report has sequence number 1
    "MODIFY_REQ": PFCP(S=1, seid=1, seq=4) / PFCPSessionModificationRequest(IE_list=[
        IE_UpdateFAR(IE_list=[IE_FAR_Id(id=2), IE_ApplyAction(FORW=1),
                              IE_UpdateForwardingParameters(IE_list=[IE_DestinationInterface(interface=0),
                                                                     ohc(0x5678, "192.168.1.20")])])]),
    "DELETE_REQ": PFCP(S=1, seid=1, seq=5) / PFCPSessionDeletionRequest(),
    "REPORT_RSP": PFCP(S=1, seid=1, seq=1) / PFCPSessionReportResponse(IE_list=[IE_Cause(cause=1)]),
    "ASSOC_RELEASE_REQ": PFCP(S=0, seq=6) / PFCPAssociationReleaseRequest(IE_list=[node_id()]),
}
for name, pkt in fixtures.items():
    print(f'const {name}: &str = "{bytes(pkt).hex()}";')
