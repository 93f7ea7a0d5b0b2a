using SecureMesh.Node.Control;

namespace SecureMesh.Node.Tests;

/// <summary>
/// One instance of every record the control API sends or receives, every field set (nulls where a field may be null,
/// characters the default encoder escapes, fractions, offsets), for the wire-format pins in <see cref="ControlWireFormatTests"/>.
/// </summary>
internal static class ControlWireSamples
{
    private static readonly DateTimeOffset T1 = new(2026, 12, 4, 1, 2, 3, 456, TimeSpan.Zero);
    private static readonly DateTimeOffset T2 = new DateTimeOffset(2026, 12, 4, 3, 4, 5, TimeSpan.FromHours(2)).AddTicks(1234567);
    private const string Peer = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo";
    private const string Odd = "Zoë's <dir> & \"quotes\" +1\t\u00e9";

    private static readonly ConnectionInfo Connection = new(Peer, Odd, "inbound", T1, 123456789012, 42, "alpha bravo charlie", "127.0.0.1:4001", "relayed", Peer);
    private static readonly TransferInfo Transfer = new("t1", "b3:abc", null, "download", "running", 10, 20, 3);
    private static readonly HandshakeInfo Handshake = new(Peer, null, "delta echo", T2, "outbound", "refused");
    private static readonly RefusalInfo Refusal = new(Peer, "bob", T1, 7, T2);
    private static readonly ReachabilityInfo Reachability = new("/ip4/127.0.0.1/tcp/4001", "reachable", "listen", true, null);
    private static readonly BlockedPeerInfo BlockedPeer = new(Peer, null, "spam", T1);
    private static readonly BlockedAddressInfo BlockedAddress = new("10.0.0.0/8", null, T2);
    private static readonly BlockedContentInfo BlockedContent = new("b3:def", Odd, T1);
    private static readonly GroupMemberInfo Member = new(Peer, "alice", "trusted", "AB:CD");

    /// <summary>Every sample, with a name unique per sample (the type's, plus a suffix when a type has several).</summary>
    public static IReadOnlyList<(string Name, object Value)> All { get; } =
    [
        ("ConnectionInfo", Connection),
        ("ConnectionInfo.defaults", new ConnectionInfo(Peer, null, "outbound", T2, 0, 0, "sas", null)),
        ("PingRequest", new PingRequest("/ip4/127.0.0.1/tcp/4001/p2p/" + Peer, 3)),
        ("PingResult", new PingResult(Peer, "/ip4/127.0.0.1/tcp/4001", [0.1, 1.5, 1e-7, 123456.789, 3])),
        ("TransferInfo", Transfer),
        ("NodeStatus", new NodeStatus(true, Peer, "AB:CD:EF", ["127.0.0.1:4001", "[::1]:4001"], "on", [Connection], [Transfer],
            [Handshake], [Refusal], [Reachability], "upnp")),
        ("NodeStatus.offline", new NodeStatus(false, null, null, [], "off", [], [])),
        ("ReachabilityInfo", Reachability),
        ("HandshakeInfo", Handshake),
        ("RefusalInfo", Refusal),
        ("PeerInfo", new PeerInfo(Peer, Odd, "blocked", ["/ip4/10.0.0.1/tcp/1", "host.example:4001"], "AB:CD", T1, T2, "why", true, true, T2)),
        ("PeerInfo.defaults", new PeerInfo(Peer, null, "pending", [], "AB:CD", null, null, null, false)),
        ("PeerActionResult", new PeerActionResult(Peer, "AB:CD", true)),
        ("AddPeerRequest", new AddPeerRequest(Peer, ["/ip4/10.0.0.1/tcp/1"], "bob", true)),
        ("AddPeerRequest.nulls", new AddPeerRequest(Peer, null, null, false)),
        ("BlockRequest", new BlockRequest("10.0.0.0/8", Odd)),
        ("BlockRequest.nulls", new BlockRequest(null, null)),
        ("RenameRequest", new RenameRequest(Odd)),
        ("BlockedPeerInfo", BlockedPeer),
        ("BlockedAddressInfo", BlockedAddress),
        ("BlockedContentInfo", BlockedContent),
        ("BlocklistInfo", new BlocklistInfo([BlockedPeer], [BlockedAddress], [BlockedContent])),
        ("SettingInfo", new SettingInfo("discovery", "on", false, "LAN beacons <on|off>")),
        ("ConfigValue", new ConfigValue("listen", "0.0.0.0:4001")),
        ("ConfigSetRequest", new ConfigSetRequest("off")),
        ("ConfigSetResult", new ConfigSetResult("listen", "127.0.0.1:5555", "restart", "takes effect after a restart")),
        ("ConfigSetResult.nulls", new ConfigSetResult("discovery", "on", "now", null)),
        ("LogEntryInfo", new LogEntryInfo(long.MaxValue, T2, "peer.trusted", Peer, Odd, "00ff")),
        ("LogVerification", new LogVerification(false, 12, 7, "hash mismatch", 12, "abcd")),
        ("LogVerification.defaults", new LogVerification(true, 0, null, null)),
        ("DiscoveredPeerInfo", new DiscoveredPeerInfo(Peer, "AB:CD", "192.168.1.2:4001", T1, "discovered")),
        ("ErrorInfo", new ErrorInfo(Odd, "invalidInput")),
        ("ShareInfo", new ShareInfo("/home/zoë/share", 3, 1024, true, 512, 2048, "friends,12D3KooW")),
        ("ShareInfo.defaults", new ShareInfo("/s", 0, 0, false, 0, 0)),
        ("ShareAddInfo", new ShareAddInfo("/s", 5, 3, 1, 1, 4096, ["bad<file>"], 2)),
        ("SearchHitInfo", new SearchHitInfo("b3:abc", Odd, 77, [Peer, Peer])),
        ("DownloadInfo", new DownloadInfo("b3:abc", Odd, "quarantined", 5, 10, 1234.5, 2, 9, 1, true, "done", "/q/a", 42)),
        ("DownloadInfo.nulls", new DownloadInfo("b3:abc", null, "running", 0, 0, 0, 0, 0, 0, false, null, null, null)),
        ("QuarantineInfo", new QuarantineInfo(42, "b3:abc", Odd, "held", "unsigned", 10, Peer, [Peer], true, "/q/a", "/out/a", T1, T2)),
        ("QuarantineInfo.nulls", new QuarantineInfo(1, "b3:abc", "a", "held", null, 0, null, [], false, null, null, T1, T1)),
        ("ShareRequest", new ShareRequest("/s", "friends", true)),
        ("ShareRequest.defaults", new ShareRequest("/s")),
        ("DownloadRequest", new DownloadRequest("b3:abc", "/out")),
        ("DownloadRequest.nulls", new DownloadRequest("b3:abc", null)),
        ("ReleaseRequest", new ReleaseRequest("/out")),
        ("ReleaseRequest.nulls", new ReleaseRequest(null)),
        ("GroupMemberInfo", Member),
        ("GroupInfo", new GroupInfo("friends", [Member, new GroupMemberInfo(Peer, null, "pending", "EF")], T2)),
        ("GroupCreateRequest", new GroupCreateRequest("friends")),
        ("GroupMembersRequest", new GroupMembersRequest([Peer, "12D3KooWx"])),
        ("GroupMembersResult", new GroupMembersResult("friends", 2)),
        ("ShareAudienceRequest", new ShareAudienceRequest("/s", "all")),
        ("ShareAudienceInfo", new ShareAudienceInfo("/s", "friends", true)),
    ];
}
