using SecureMesh.Core.Identity;

namespace SecureMesh.Storage;

/// <summary>How far a peer is trusted.</summary>
public enum PeerState
{
    /// <summary>Completed a handshake but the user has not decided; gets nothing.</summary>
    Pending,
    /// <summary>May list, search and fetch.</summary>
    Trusted,
    /// <summary>Disconnected at once.</summary>
    Blocked,
}

/// <summary>Where a peer address came from.</summary>
public enum AddressSource
{
    /// <summary>Typed in by the user.</summary>
    User,
    /// <summary>The address an inbound or outbound connection used.</summary>
    Seen,
    /// <summary>Found by discovery.</summary>
    Discovered,
}

/// <summary>The outcome of <see cref="TrustStore.Authorize"/>.</summary>
public enum AuthorizationDecision
{
    /// <summary>A peer never seen before: record it as pending and disconnect.</summary>
    Unknown,
    /// <summary>A known peer the user has not trusted yet: disconnect.</summary>
    Pending,
    /// <summary>A trusted peer from an address that is not blocked.</summary>
    Trusted,
    /// <summary>The peer itself is blocked.</summary>
    BlockedPeer,
    /// <summary>The remote address falls in a blocked range (checked before trust: a block beats a trust).</summary>
    BlockedAddress,
}

/// <summary>One address of a peer, as <c>host:port</c> (<c>[v6]:port</c> for IPv6).</summary>
public sealed record PeerAddress(string Address, AddressSource Source, DateTimeOffset? LastSeen);

/// <summary>
/// A session with <paramref name="Peer"/> seen at <paramref name="At"/>, and where an outbound session reached it
/// (<paramref name="Address"/>, at <paramref name="AddressAt"/>), for <see cref="TrustStore.TouchSeen(IReadOnlyCollection{SeenPeer})"/>.
/// </summary>
public sealed record SeenPeer(PeerId Peer, DateTimeOffset At, string? Address = null, DateTimeOffset? AddressAt = null);

/// <summary>A peer in the trust store.</summary>
public sealed record PeerRecord(
    PeerId PeerId,
    string? Name,
    PeerState State,
    string Fingerprint,
    DateTimeOffset? FirstSeen,
    DateTimeOffset? LastSeen,
    string? BlockReason,
    IReadOnlyList<PeerAddress> Addresses,
    DateTimeOffset Created,
    DateTimeOffset Updated,
    DateTimeOffset? RefusedAt = null,
    int Refusals = 0)
{
    /// <summary>True when the peer's node refused this one (it has blocked us) and no session has worked since.</summary>
    public bool RefusingUs => Refusals > 0;
}

/// <summary>A blocked address range.</summary>
public sealed record BlockedAddress(CidrRange Range, string? Reason, DateTimeOffset Created)
{
    /// <summary>The canonical CIDR text, e.g. <c>10.0.0.0/8</c>.</summary>
    public string Cidr => Range.ToString();
}

/// <summary>A blocked content ID.</summary>
public sealed record BlockedContent(string ContentId, string? Reason, DateTimeOffset Created);

/// <summary>Both blocklists.</summary>
public sealed record Blocklist(IReadOnlyList<BlockedAddress> Addresses, IReadOnlyList<BlockedContent> Content);

/// <summary>One audit log entry; <see cref="Hash"/> chains it to the entry before (hex, lowercase).</summary>
public sealed record AuditEntry(long Seq, DateTimeOffset Time, string Event, string? PeerId, string Detail, string PrevHash, string Hash);

/// <summary>The result of <see cref="AuditLog.Verify"/>.</summary>
/// <param name="Ok">True when every entry's hash and link check out.</param>
/// <param name="Entries">How many entries were checked.</param>
/// <param name="BrokenSeq">The seq of the first entry that fails (the entry after a gap for a deletion).</param>
/// <param name="Reason">Why it fails.</param>
public sealed record AuditVerification(bool Ok, long Entries, long? BrokenSeq, string? Reason)
{
    /// <summary>The newest entry's sequence number (0 for an empty log); with <see cref="HeadHash"/>, an anchor to keep.</summary>
    public long HeadSeq { get; init; }

    /// <summary>The newest entry's hash in lowercase hex (empty for an empty log).</summary>
    public string HeadHash { get; init; } = string.Empty;
}

internal static class StateNames
{
    internal static string ToDb(PeerState state) => state switch
    {
        PeerState.Trusted => "trusted",
        PeerState.Blocked => "blocked",
        _ => "pending",
    };

    internal static PeerState PeerStateFromDb(string text) => text switch
    {
        "trusted" => PeerState.Trusted,
        "blocked" => PeerState.Blocked,
        _ => PeerState.Pending,
    };

    internal static string ToDb(AddressSource source) => source switch
    {
        AddressSource.User => "user",
        AddressSource.Discovered => "discovered",
        _ => "seen",
    };

    internal static AddressSource SourceFromDb(string text) => text switch
    {
        "user" => AddressSource.User,
        "discovered" => AddressSource.Discovered,
        _ => AddressSource.Seen,
    };

    internal static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
