using SecureMesh.Node.Backup;

namespace SecureMesh.Cli.Tui;

/// <summary>
/// What the terminal UI needs from a node: a thin client over the node's control API.
/// Every method may be slow or fail; failures arrive as <see cref="SecureMesh.Core.SecureMeshException"/> with a message fit to show.
/// The UI polls the list methods about twice a second from a background thread, one call at a time, so implementations
/// need not be thread-safe against themselves but must honour the cancellation token (the UI cancels calls that take too long).
/// </summary>
internal interface INodeClient
{
    /// <summary>This node's identity, listen addresses and connection count.</summary>
    Task<NodeStatusView> GetStatusAsync(CancellationToken cancellationToken);

    /// <summary>Every peer the node knows: trusted, pending, blocked and discovered.</summary>
    Task<IReadOnlyList<PeerView>> ListPeersAsync(CancellationToken cancellationToken);

    /// <summary>Records a peer by its Peer ID text; with <paramref name="trust"/> it is trusted at once (the UI has confirmed the fingerprint).</summary>
    Task AddPeerAsync(string peerId, string? address, string? name, bool trust, CancellationToken cancellationToken);

    /// <summary>Trusts a known peer (the UI has shown its fingerprint and short authentication string first).</summary>
    Task TrustAsync(string peerId, CancellationToken cancellationToken);

    /// <summary>Blocks a peer, recording the reason.</summary>
    Task BlockAsync(string peerId, string? reason, CancellationToken cancellationToken);

    /// <summary>Lifts a block; the peer goes back to pending.</summary>
    Task UnblockAsync(string peerId, CancellationToken cancellationToken);

    /// <summary>Sets the peer's local name.</summary>
    Task RenameAsync(string peerId, string name, CancellationToken cancellationToken);

    /// <summary>Forgets a peer.</summary>
    Task RemoveAsync(string peerId, CancellationToken cancellationToken);

    /// <summary>The shared folders and files with their indexing progress.</summary>
    Task<IReadOnlyList<ShareView>> ListSharesAsync(CancellationToken cancellationToken);

    /// <summary>Shares a file or folder (a path on this machine) with <paramref name="audience"/> (<c>all</c>, groups and Peer IDs, comma-separated).</summary>
    Task AddShareAsync(string path, string audience, CancellationToken cancellationToken);

    /// <summary>Changes who may see a shared path.</summary>
    Task SetShareAudienceAsync(string path, string audience, CancellationToken cancellationToken);

    /// <summary>Peer groups with their members.</summary>
    Task<IReadOnlyList<GroupView>> ListGroupsAsync(CancellationToken cancellationToken);

    /// <summary>Creates an empty group.</summary>
    Task CreateGroupAsync(string name, CancellationToken cancellationToken);

    /// <summary>Deletes a group (refused while a share is given to it).</summary>
    Task DeleteGroupAsync(string name, CancellationToken cancellationToken);

    /// <summary>Adds known peers (by Peer ID) to a group.</summary>
    Task AddGroupMembersAsync(string name, IReadOnlyList<string> peerIds, CancellationToken cancellationToken);

    /// <summary>Removes peers (by Peer ID) from a group.</summary>
    Task RemoveGroupMembersAsync(string name, IReadOnlyList<string> peerIds, CancellationToken cancellationToken);

    /// <summary>Stops sharing a path.</summary>
    Task RemoveShareAsync(string path, CancellationToken cancellationToken);

    /// <summary>Asks trusted peers' catalogs for the terms.</summary>
    Task<IReadOnlyList<SearchResultView>> SearchAsync(string terms, CancellationToken cancellationToken);

    /// <summary>Downloads and transfers under way or finished this session.</summary>
    Task<IReadOnlyList<TransferView>> ListTransfersAsync(CancellationToken cancellationToken);

    /// <summary>Starts a swarm download of the content into quarantine.</summary>
    Task FetchAsync(string contentId, CancellationToken cancellationToken);

    /// <summary>Stops a download (verified chunks are kept for a later resume).</summary>
    Task CancelTransferAsync(string contentId, CancellationToken cancellationToken);

    /// <summary>Items held in quarantine.</summary>
    Task<IReadOnlyList<QuarantineItemView>> ListQuarantineAsync(CancellationToken cancellationToken);

    /// <summary>Releases a held item to <paramref name="toDirectory"/>, or to the configured download folder when null.</summary>
    Task ReleaseAsync(string id, string? toDirectory, CancellationToken cancellationToken);

    /// <summary>Deletes a held item.</summary>
    Task DeleteAsync(string id, CancellationToken cancellationToken);

    /// <summary>The newest <paramref name="limit"/> audit entries, newest first.</summary>
    Task<IReadOnlyList<LogEntryView>> ListLogAsync(int limit, CancellationToken cancellationToken);

    /// <summary>Checks the audit log's hash chain.</summary>
    Task<LogVerificationView> VerifyLogAsync(CancellationToken cancellationToken);

    /// <summary>The backed-up paths with their holders (what <c>backup status</c> shows) and the space this node offers to others.</summary>
    Task<BackupsView> GetBackupsAsync(CancellationToken cancellationToken);

    /// <summary>Backs up a path to trusted holders (Peer IDs); <paramref name="copies"/> null means all of them, <paramref name="keep"/> null the default policy. The node uploads it in the background.</summary>
    Task AddBackupAsync(string path, IReadOnlyList<string> holders, int? copies, string? keep, CancellationToken cancellationToken);

    /// <summary>Stops backing up a path; its blobs are deleted from the holders at the next round.</summary>
    Task RemoveBackupAsync(string path, CancellationToken cancellationToken);

    /// <summary>Asks the node for a proof-of-storage round against every holder now; the outcome shows in <see cref="GetBackupsAsync"/>.</summary>
    Task CheckBackupsAsync(CancellationToken cancellationToken);
}

/// <summary>What the Backups view shows.</summary>
internal sealed record BackupsView(IReadOnlyList<BackupShareStatus> Paths, IReadOnlyList<BackupOfferView> Offers, IReadOnlyDictionary<string, string> PeerNames);

/// <summary>Space this node offers to a peer for its backups.</summary>
internal sealed record BackupOfferView(string PeerId, string? Name, long Quota, long Used);

/// <summary>This node as the top bar shows it.</summary>
/// <param name="PeerId">This node's Peer ID text.</param>
/// <param name="Fingerprint">The human fingerprint of this node's key.</param>
/// <param name="ListenAddresses">HOST:PORT the node listens on; empty when not listening.</param>
/// <param name="Connections">Authenticated connections open now.</param>
/// <param name="Running">False when the client is attached to nothing that runs (the node stopped).</param>
/// <param name="Reach">AutoNAT's verdict and the port mapping in a few words; null when the node says nothing of it.</param>
internal sealed record NodeStatusView(string PeerId, string Fingerprint, IReadOnlyList<string> ListenAddresses, int Connections, bool Running, string? Reach = null);

/// <summary>A peer's standing with this node.</summary>
internal enum PeerViewState
{
    /// <summary>May list, search and fetch.</summary>
    Trusted,
    /// <summary>Completed a handshake, awaits the user's decision.</summary>
    Pending,
    /// <summary>Disconnected at once.</summary>
    Blocked,
    /// <summary>Seen on the LAN or through peer exchange, never connected.</summary>
    Discovered,
}

/// <summary>A peer as the Peers view shows it.</summary>
/// <param name="Sas">Short authentication string of the live session, or of the last handshake when the peer hung up (it may not trust us yet), to compare aloud; null when there was none.</param>
/// <param name="RefusingUs">The peer's node refuses this one (it has blocked us).</param>
/// <param name="Path">How the live connection reaches the peer (<c>direct</c>, <c>holepunched</c>, <c>relayed via PEER</c>); null when offline.</param>
internal sealed record PeerView(
    string PeerId,
    string? Name,
    PeerViewState State,
    bool Online,
    string Fingerprint,
    string? Sas,
    IReadOnlyList<string> Addresses,
    string? BlockReason = null,
    bool RefusingUs = false,
    string? Path = null);

/// <summary>A shared path and how far its indexing has got.</summary>
/// <param name="IndexedBytes">Bytes hashed so far.</param>
/// <param name="TotalBytes">Bytes to hash; 0 when not yet known.</param>
/// <param name="Audience">Who may see it: <c>all</c>, or groups and Peer IDs.</param>
internal sealed record ShareView(string Path, int Files, long IndexedBytes, long TotalBytes, bool Indexing, string Audience = "all")
{
    /// <summary>0..1.</summary>
    public double Progress => TotalBytes <= 0 ? (Indexing ? 0 : 1) : Math.Clamp((double)IndexedBytes / TotalBytes, 0, 1);
}

/// <summary>A member of a group.</summary>
/// <param name="State">trusted, pending or blocked (only trusted members see anything).</param>
internal sealed record GroupMemberView(string PeerId, string? Name, string State);

/// <summary>A peer group as the Groups view shows it.</summary>
internal sealed record GroupView(string Name, IReadOnlyList<GroupMemberView> Members);

/// <summary>One search hit.</summary>
/// <param name="Peers">Peer IDs of the trusted peers holding it.</param>
internal sealed record SearchResultView(string ContentId, string Name, long Size, IReadOnlyList<string> Peers);

/// <summary>Where a transfer is.</summary>
internal enum TransferViewState
{
    /// <summary>Waiting for peers.</summary>
    Queued,
    /// <summary>Chunks arriving.</summary>
    Downloading,
    /// <summary>Whole, being checked and scanned in quarantine.</summary>
    Verifying,
    /// <summary>Done (released or held in quarantine).</summary>
    Completed,
    /// <summary>Stopped by the user.</summary>
    Cancelled,
    /// <summary>Stopped by an error; see the reason.</summary>
    Failed,
}

/// <summary>One download.</summary>
/// <param name="BytesPerSecond">Current rate.</param>
/// <param name="Peers">Peers chunks are being fetched from now.</param>
/// <param name="Remaining">Estimated time left; null when unknown.</param>
internal sealed record TransferView(
    string ContentId,
    string Name,
    long BytesDone,
    long BytesTotal,
    double BytesPerSecond,
    int Peers,
    TimeSpan? Remaining,
    TransferViewState State,
    string? Reason = null)
{
    /// <summary>0..1.</summary>
    public double Progress => BytesTotal <= 0 ? 0 : Math.Clamp((double)BytesDone / BytesTotal, 0, 1);
}

/// <summary>One item held in quarantine.</summary>
/// <param name="State">For example <c>held</c>, <c>scanning</c>, <c>infected</c>, <c>released</c>.</param>
/// <param name="Reason">Why it is held; null when it merely waits for release.</param>
/// <param name="PublisherPeerId">The peer that published it, when known.</param>
internal sealed record QuarantineItemView(
    string Id,
    string ContentId,
    string Name,
    string State,
    string? Reason,
    long Size,
    string? PublisherPeerId = null,
    DateTimeOffset? Received = null);

/// <summary>One audit log entry.</summary>
internal sealed record LogEntryView(long Seq, DateTimeOffset Time, string Event, string? PeerId, string Detail);

/// <summary>The outcome of checking the audit log's hash chain.</summary>
/// <param name="BrokenSeq">The first entry whose link fails; null when intact.</param>
internal sealed record LogVerificationView(bool Ok, long Entries, long? BrokenSeq, string? Reason, long HeadSeq = 0, string HeadHash = "");
