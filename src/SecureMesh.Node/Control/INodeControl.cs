namespace SecureMesh.Node.Control;

/// <summary>
/// Everything the CLI (and the TUI) can ask of a node. <see cref="NodeControlService"/> does it in-process (against the
/// running node, or against the database alone when no node runs); the CLI's <c>ControlClient</c> does it over the
/// control socket. Failures are <see cref="Core.SecureMeshException"/>s in both.
/// </summary>
public interface INodeControl
{
    Task<NodeStatus> GetStatusAsync(CancellationToken cancellationToken);

    /// <summary>Peers; <paramref name="state"/> null lists all (with discovered ones), else one of trusted/pending/blocked/discovered.</summary>
    Task<IReadOnlyList<PeerInfo>> ListPeersAsync(string? state, CancellationToken cancellationToken);

    Task<PeerInfo> AddPeerAsync(AddPeerRequest request, CancellationToken cancellationToken);

    Task<PeerActionResult> TrustPeerAsync(string peerId, CancellationToken cancellationToken);

    Task<PeerActionResult> BlockPeerAsync(string peerId, string? reason, CancellationToken cancellationToken);

    Task<PeerActionResult> UnblockPeerAsync(string peerId, CancellationToken cancellationToken);

    Task<PeerActionResult> RenamePeerAsync(string peerId, string name, CancellationToken cancellationToken);

    Task<PeerActionResult> RemovePeerAsync(string peerId, CancellationToken cancellationToken);

    /// <summary>Pings the peer at <paramref name="address"/> (a multiaddr ending in <c>/p2p/PEERID</c>) <paramref name="count"/> times over libp2p ping (needs a running node).</summary>
    Task<PingResult> PingAsync(string address, int count, CancellationToken cancellationToken);

    /// <summary>Dials a trusted peer at its stored addresses (needs a running node).</summary>
    Task<ConnectionInfo> ConnectPeerAsync(string peerId, CancellationToken cancellationToken);

    Task<IReadOnlyList<DiscoveredPeerInfo>> ListDiscoveredAsync(CancellationToken cancellationToken);

    Task<BlocklistInfo> GetBlocklistAsync(CancellationToken cancellationToken);

    Task<BlockedContentInfo> BlockContentAsync(string contentId, string? reason, CancellationToken cancellationToken);

    Task UnblockContentAsync(string contentId, CancellationToken cancellationToken);

    Task<BlockedAddressInfo> BlockAddressAsync(string cidr, string? reason, CancellationToken cancellationToken);

    Task UnblockAddressAsync(string cidr, CancellationToken cancellationToken);

    Task<IReadOnlyList<SettingInfo>> ListConfigAsync(CancellationToken cancellationToken);

    Task<ConfigValue> GetConfigAsync(string key, CancellationToken cancellationToken);

    Task<ConfigSetResult> SetConfigAsync(string key, string value, CancellationToken cancellationToken);

    Task<IReadOnlyList<LogEntryInfo>> GetLogAsync(DateTimeOffset? since, int? limit, CancellationToken cancellationToken);

    Task<LogVerification> VerifyLogAsync(CancellationToken cancellationToken);
}
