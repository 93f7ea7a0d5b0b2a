namespace SecureMesh.Node.Control;

// The control API's JSON shapes (camelCase on the wire). The CLI prints these same records whether it asked the running
// node or read the database itself, so the two paths cannot drift apart.

/// <summary>
/// An open session, as <c>GET /v1/status</c> lists it. <paramref name="Path"/> is <c>direct</c>, <c>relayed</c> or
/// <c>holepunched</c>; <paramref name="Relay"/> is the relay's Peer ID when relayed, else null.
/// </summary>
public sealed record ConnectionInfo(string PeerId, string? Name, string Direction, DateTimeOffset Since, long BytesSent, long BytesReceived, string Sas, string? Remote,
    string Path = "direct", string? Relay = null);

/// <summary>A libp2p ping of a peer: <c>POST /v1/ping</c>.</summary>
public sealed record PingRequest(string Address, int Count);

/// <summary>The round-trip times of a ping, in milliseconds, in the order they were measured.</summary>
public sealed record PingResult(string PeerId, string Address, IReadOnlyList<double> RttMs);

/// <summary>A transfer in progress; filled by an <see cref="ITransferStatusSource"/>.</summary>
public sealed record TransferInfo(string Id, string ContentId, string? Name, string Direction, string State, long BytesDone, long BytesTotal, int Peers);

/// <summary><c>GET /v1/status</c>.</summary>
public sealed record NodeStatus(
    bool Running,
    string? PeerId,
    string? Fingerprint,
    IReadOnlyList<string> Listen,
    string Discovery,
    IReadOnlyList<ConnectionInfo> Connections,
    IReadOnlyList<TransferInfo> Transfers,
    IReadOnlyList<HandshakeInfo>? Handshakes = null,
    IReadOnlyList<RefusalInfo>? RefusingUs = null,
    IReadOnlyList<ReachabilityInfo>? Reachability = null,
    string? PortMapping = null);

/// <summary>
/// One of this node's addresses and whether trusted peers could dial it (AutoNAT): <c>state</c> is <c>reachable</c>,
/// <c>unreachable</c> or <c>unknown</c>; <c>source</c> is <c>listen</c>, <c>mapped</c> or <c>observed</c>;
/// <c>advertised</c> says whether identify and <c>id</c> give it out.
/// </summary>
public sealed record ReachabilityInfo(string Address, string State, string Source, bool Advertised, DateTimeOffset? Checked);

/// <summary>
/// The last handshake with a known peer that has no live session (it hung up, perhaps because it does not trust this
/// node yet): its short authentication string stays readable, so both people can compare it aloud.
/// </summary>
public sealed record HandshakeInfo(string PeerId, string? Name, string Sas, DateTimeOffset Time, string Direction, string? Ended);

/// <summary>A peer whose node refuses this one (it has blocked us): since when, how many times in a row, and when the node will try again.</summary>
public sealed record RefusalInfo(string PeerId, string? Name, DateTimeOffset LastRefusal, int Refusals, DateTimeOffset NextAttempt);

/// <summary>A peer in <c>peers list</c>: state is <c>trusted</c>, <c>pending</c>, <c>blocked</c> or <c>discovered</c> (seen by beacon, not in the trust store).</summary>
public sealed record PeerInfo(
    string PeerId,
    string? Name,
    string State,
    IReadOnlyList<string> Addresses,
    string Fingerprint,
    DateTimeOffset? FirstSeen,
    DateTimeOffset? LastSeen,
    string? BlockReason,
    bool Connected,
    bool RefusingUs = false,
    DateTimeOffset? RefusedAt = null);

/// <summary>The outcome of trust/block/unblock/rename/remove; <see cref="Changed"/> is false when nothing had to change.</summary>
public sealed record PeerActionResult(string PeerId, string Fingerprint, bool Changed);

/// <summary><c>POST /v1/peers</c>.</summary>
public sealed record AddPeerRequest(string PeerId, IReadOnlyList<string>? Addresses, string? Name, bool Trust);

/// <summary>Body of block requests: <c>value</c> is the content ID or CIDR (unused for peers).</summary>
public sealed record BlockRequest(string? Value, string? Reason);

/// <summary><c>POST /v1/peers/{id}/rename</c>.</summary>
public sealed record RenameRequest(string Name);

/// <summary>A blocked peer in the blocklist.</summary>
public sealed record BlockedPeerInfo(string PeerId, string? Name, string? Reason, DateTimeOffset Time);

/// <summary>A blocked address range.</summary>
public sealed record BlockedAddressInfo(string Cidr, string? Reason, DateTimeOffset Time);

/// <summary>A blocked content ID.</summary>
public sealed record BlockedContentInfo(string ContentId, string? Reason, DateTimeOffset Time);

/// <summary><c>GET /v1/blocklist</c>.</summary>
public sealed record BlocklistInfo(IReadOnlyList<BlockedPeerInfo> Peers, IReadOnlyList<BlockedAddressInfo> Addresses, IReadOnlyList<BlockedContentInfo> Content);

/// <summary>One setting in <c>config list</c>.</summary>
public sealed record SettingInfo(string Key, string Value, bool IsDefault, string Description);

/// <summary><c>GET /v1/config/{key}</c>.</summary>
public sealed record ConfigValue(string Key, string Value);

/// <summary><c>PUT /v1/config/{key}</c>.</summary>
public sealed record ConfigSetRequest(string Value);

/// <summary>
/// What a config change did: <c>applied</c> is <c>now</c> (the running node changed at once), <c>restart</c> (takes effect on
/// restart) or <c>stored</c> (no node running; read at the next start).
/// </summary>
public sealed record ConfigSetResult(string Key, string Value, string Applied, string? Note);

/// <summary>One audit log entry.</summary>
public sealed record LogEntryInfo(long Seq, DateTimeOffset Time, string Event, string? PeerId, string Detail, string Hash);

/// <summary><c>GET /v1/log/verify</c>.</summary>
public sealed record LogVerification(bool Ok, long Entries, long? BrokenSeq, string? Reason, long HeadSeq = 0, string HeadHash = "");

/// <summary>A peer found by a LAN beacon.</summary>
public sealed record DiscoveredPeerInfo(string PeerId, string Fingerprint, string Address, DateTimeOffset LastSeen, string State);

/// <summary>Every error response: a message safe to show and the <see cref="Core.SecureMeshErrorKind"/> in camelCase.</summary>
public sealed record ErrorInfo(string Error, string Kind);

/// <summary>Lets the transfer engine put its transfers in <c>GET /v1/status</c>.</summary>
internal interface ITransferStatusSource
{
    /// <summary>A snapshot of the transfers in progress.</summary>
    IReadOnlyList<TransferInfo> GetTransfers();
}
