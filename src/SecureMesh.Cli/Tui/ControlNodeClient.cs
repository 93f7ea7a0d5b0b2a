using Microsoft.Extensions.Logging.Abstractions;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Node;
using SecureMesh.Node.Control;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Tui;

/// <summary>
/// The terminal UI's view of a node, through the control socket: the node already running on this data directory, or
/// one this client hosts for the UI's lifetime. When the node cannot start (its port is taken, say) the UI still opens
/// on the trust store and shows the reason.
/// </summary>
internal sealed class ControlNodeClient : INodeClient, IAsyncDisposable
{
    private readonly INodeControl _control;
    private readonly ITransferControl? _transfer;
    private readonly IGroupControl _groups;
    private readonly IDisposable? _offlineDb;
    private readonly NodeHostBundle? _hosted;
    private readonly HomeBackups? _backups;
    private string? _startupError;
    private Task? _sharing;
    private string? _shareError;

    /// <summary>Test seam: a client over any control implementation (the node's in-process implementation on a test node).</summary>
    internal static ControlNodeClient ForTest(INodeControl control, IGroupControl groups, string? home = null) =>
        new(control, null, null, null, null, home is null ? null : new HomeBackups(home), groups);

    private ControlNodeClient(INodeControl control, ITransferControl? transfer, IDisposable? offlineDb, NodeHostBundle? hosted, string? startupError, HomeBackups? backups,
        IGroupControl? groups = null)
    {
        _backups = backups;
        _control = control;
        _groups = groups ?? control as IGroupControl ?? throw new ArgumentException("no way to the groups", nameof(groups));
        _transfer = transfer;
        _offlineDb = offlineDb;
        _hosted = hosted;
        _startupError = startupError;
    }

    /// <summary>Attaches to the node running on <c>ctx.Home</c>, or starts one (logging nowhere: the screen is the UI's).</summary>
    public static ControlNodeClient Create(CliContext ctx) => CreateAsync(ctx, CancellationToken.None).GetAwaiter().GetResult();

    private static async Task<ControlNodeClient> CreateAsync(CliContext ctx, CancellationToken cancellationToken)
    {
        if (NodeLock.IsHeld(ctx.Home))
        {
            var client = new ControlClient(ctx.Home);
            return new ControlNodeClient(client, client, null, null, null, new HomeBackups(ctx.Home));
        }
        IdentityStore.EnsureDataDirectory(ctx.Home);
        if (!IdentityStore.Exists(ctx.Home))
        {
            using var fresh = NodeIdentity.Generate();
            IdentityStore.Save(ctx.Home, fresh, passphrase: null, force: false);
        }
        var nodeLock = NodeLock.Acquire(ctx.Home);
        NodeIdentity? identity = null;
        SecureMeshDatabase? db = null;
        try
        {
            identity = IdentityStore.Load(ctx.Home, ctx.PassphraseSource(fromStdin: false));
            db = SecureMeshDatabase.Open(ctx.Home);
            var listen = NodeSettings.ParseEndPoint(db.Config.Get(NodeSettings.Listen) ?? NodeSettings.DefaultListen);
            MeshHost host;
            try
            {
                host = await MeshHost.StartAsync(identity, db, new MeshHostOptions { Home = ctx.Home, Listen = listen, Serve = true }, cancellationToken);
            }
            catch (SecureMeshException e)
            {
                // No node, but the trust store, log and quarantine still work; the UI shows why.
                var offline = NodeControl.Offline(ctx.Home, db);
                return new ControlNodeClient(offline, null, new Bundle(nodeLock, identity, db), null, $"the node could not start: {e.Message}", new HomeBackups(ctx.Home), NodeControl.Groups(db));
            }
            var client = new ControlClient(ctx.Home);
            return new ControlNodeClient(client, client, null, new NodeHostBundle(host, new Bundle(nodeLock, identity, db)), null, new HomeBackups(ctx.Home));
        }
        catch
        {
            db?.Dispose();
            identity?.Dispose();
            nodeLock.Dispose();
            throw;
        }
    }

    private HomeBackups Backups => _backups ?? throw new SecureMeshException(SecureMeshErrorKind.NotFound, "backups are not available through this client");

    public Task<BackupsView> GetBackupsAsync(CancellationToken cancellationToken) => Backups.GetAsync(cancellationToken);

    public Task AddBackupAsync(string path, IReadOnlyList<string> holders, int? copies, string? keep, CancellationToken cancellationToken) =>
        Backups.AddAsync(path, holders, copies, keep, cancellationToken);

    public Task RemoveBackupAsync(string path, CancellationToken cancellationToken) => Backups.RemoveAsync(path, cancellationToken);

    public Task CheckBackupsAsync(CancellationToken cancellationToken) => Backups.CheckAsync(cancellationToken);

    private ITransferControl Transfer => _transfer
        ?? throw new SecureMeshException(SecureMeshErrorKind.Network, _startupError ?? "the node is not running");

    public async Task<NodeStatusView> GetStatusAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _startupError, null) is { } error)
        {
            // Shown once as a message; the status line then says the node is not running.
            throw new SecureMeshException(SecureMeshErrorKind.Network, error);
        }
        var status = await _control.GetStatusAsync(cancellationToken);
        return new NodeStatusView(status.PeerId ?? "(no identity)", status.Fingerprint ?? "-", status.Listen, status.Connections.Count, status.Running,
            status.Running ? DescribeReach(status) : null);
    }

    /// <summary>"reachable at ADDR", "unreachable" or "unknown" (AutoNAT), with the port mapping when one is held or refused.</summary>
    internal static string DescribeReach(NodeStatus status)
    {
        var addresses = status.Reachability ?? [];
        var reachable = addresses.FirstOrDefault(r => r.State == "reachable");
        var verdict = reachable is not null ? $"reachable at {reachable.Address}"
            : addresses.Any(r => r.State == "unreachable") ? "unreachable" : "unknown";
        return status.PortMapping is null or "off" ? verdict : $"{verdict}; mapping {status.PortMapping}";
    }

    public async Task<IReadOnlyList<PeerView>> ListPeersAsync(CancellationToken cancellationToken)
    {
        var peers = await _control.ListPeersAsync(null, cancellationToken);
        var status = await _control.GetStatusAsync(cancellationToken);
        var online = status.Connections.ToDictionary(c => c.PeerId, StringComparer.Ordinal);
        // A peer that hung up right after the handshake (it may not trust us yet) still shows the words to compare.
        var lastSas = (status.Handshakes ?? []).GroupBy(h => h.PeerId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Sas, StringComparer.Ordinal);
        return [.. peers.Select(p => new PeerView(
            p.PeerId,
            p.Name,
            p.State switch
            {
                "trusted" => PeerViewState.Trusted,
                "blocked" => PeerViewState.Blocked,
                "discovered" => PeerViewState.Discovered,
                _ => PeerViewState.Pending,
            },
            online.ContainsKey(p.PeerId),
            p.Fingerprint,
            online.GetValueOrDefault(p.PeerId)?.Sas ?? lastSas.GetValueOrDefault(p.PeerId),
            p.Addresses,
            p.BlockReason,
            p.RefusingUs,
            online.GetValueOrDefault(p.PeerId) is { } c ? ConnectionPaths.Describe(c.Path, c.Relay is null ? null : Fmt.ShortId(c.Relay)) : null))];
    }

    public async Task AddPeerAsync(string peerId, string? address, string? name, bool trust, CancellationToken cancellationToken)
    {
        var id = PeerId.Parse(peerId);
        string[]? addresses = null;
        if (!string.IsNullOrWhiteSpace(address))
        {
            addresses = [NodeControl.NormalizeAddress(address, id)];
        }
        await _control.AddPeerAsync(new AddPeerRequest(id.Text, addresses, string.IsNullOrWhiteSpace(name) ? null : name.Trim(), trust), cancellationToken);
    }

    public Task TrustAsync(string peerId, CancellationToken cancellationToken) => _control.TrustPeerAsync(peerId, cancellationToken);

    public Task BlockAsync(string peerId, string? reason, CancellationToken cancellationToken) => _control.BlockPeerAsync(peerId, reason, cancellationToken);

    public Task UnblockAsync(string peerId, CancellationToken cancellationToken) => _control.UnblockPeerAsync(peerId, cancellationToken);

    public Task RenameAsync(string peerId, string name, CancellationToken cancellationToken) => _control.RenamePeerAsync(peerId, name, cancellationToken);

    public Task RemoveAsync(string peerId, CancellationToken cancellationToken) => _control.RemovePeerAsync(peerId, cancellationToken);

    public async Task<IReadOnlyList<ShareView>> ListSharesAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _shareError, null) is { } error)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, error);
        }
        var shares = await Transfer.ListSharesAsync(cancellationToken);
        var adding = _sharing is { IsCompleted: false };
        return [.. shares.Select(s => s.Indexing
            ? new ShareView(s.Path, s.Files, s.IndexedBytes, s.TotalBytes, true, s.Audience)
            : new ShareView(s.Path, s.Files, s.Bytes, s.Bytes, adding && s.Files == 0, s.Audience))];
    }

    public Task AddShareAsync(string path, string audience, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(path.Trim());
        // Checked here, before anything is shared: a typo is a message, not a share open to everyone.
        var with = ShareAudience.Parse(audience).ToString();
        if (!File.Exists(full) && !Directory.Exists(full))
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{full} does not exist");
        }
        var transfer = Transfer;
        // Indexing takes as long as hashing: it runs on the node while the Shares view shows its progress.
        _sharing = Task.Run(async () =>
        {
            try
            {
                var result = await transfer.AddShareAsync(full, with, includeHidden: false, CancellationToken.None);
                if (result.Failed.Count > 0)
                {
                    _shareError = $"{result.Failed.Count} file(s) under {full} could not be indexed: {result.Failed[0]}";
                }
            }
            catch (SecureMeshException e)
            {
                _shareError = e.Message;
            }
        }, CancellationToken.None);
        return Task.CompletedTask;
    }

    public Task RemoveShareAsync(string path, CancellationToken cancellationToken) => Transfer.RemoveShareAsync(path, cancellationToken);

    public Task SetShareAudienceAsync(string path, string audience, CancellationToken cancellationToken) =>
        _groups.SetShareAudienceAsync(path, audience, cancellationToken);

    public async Task<IReadOnlyList<GroupView>> ListGroupsAsync(CancellationToken cancellationToken)
    {
        var groups = await _groups.ListGroupsAsync(cancellationToken);
        return [.. groups.Select(g => new GroupView(g.Name, [.. g.Members.Select(m => new GroupMemberView(m.PeerId, m.Name, m.State))]))];
    }

    public Task CreateGroupAsync(string name, CancellationToken cancellationToken) => _groups.CreateGroupAsync(name, cancellationToken);

    public Task DeleteGroupAsync(string name, CancellationToken cancellationToken) => _groups.DeleteGroupAsync(name, cancellationToken);

    public Task AddGroupMembersAsync(string name, IReadOnlyList<string> peerIds, CancellationToken cancellationToken) =>
        _groups.AddGroupMembersAsync(name, peerIds, cancellationToken);

    public Task RemoveGroupMembersAsync(string name, IReadOnlyList<string> peerIds, CancellationToken cancellationToken) =>
        _groups.RemoveGroupMembersAsync(name, peerIds, cancellationToken);

    public async Task<IReadOnlyList<SearchResultView>> SearchAsync(string terms, CancellationToken cancellationToken)
    {
        var hits = await Transfer.SearchAsync(terms, cancellationToken);
        return [.. hits.Select(h => new SearchResultView(h.ContentId, h.Name, h.Size, h.Peers))];
    }

    public async Task<IReadOnlyList<TransferView>> ListTransfersAsync(CancellationToken cancellationToken)
    {
        var downloads = await Transfer.ListDownloadsAsync(cancellationToken);
        return [.. downloads.Select(d =>
        {
            TimeSpan? remaining = d.BytesPerSecond > 0 && d.BytesTotal > d.BytesDone ? TimeSpan.FromSeconds((d.BytesTotal - d.BytesDone) / d.BytesPerSecond) : null;
            var state = d.State switch
            {
                "released" => TransferViewState.Completed,
                "held" => TransferViewState.Completed,
                "cancelled" => TransferViewState.Cancelled,
                "failed" => TransferViewState.Failed,
                "verifying" => TransferViewState.Verifying,
                "downloading" => TransferViewState.Downloading,
                _ => d.Finished ? TransferViewState.Completed : TransferViewState.Queued,
            };
            var reason = d.State == "held" ? $"held in quarantine: {d.Reason}" : d.State == "released" ? $"released to {d.Path}" : d.Reason;
            return new TransferView(d.ContentId, d.Name ?? d.ContentId, d.BytesDone, d.BytesTotal, d.BytesPerSecond, d.Peers, remaining, state, reason);
        })];
    }

    public Task FetchAsync(string contentId, CancellationToken cancellationToken) => Transfer.StartDownloadAsync(contentId, null, cancellationToken);

    public Task CancelTransferAsync(string contentId, CancellationToken cancellationToken) => Transfer.CancelDownloadAsync(contentId, cancellationToken);

    public async Task<IReadOnlyList<QuarantineItemView>> ListQuarantineAsync(CancellationToken cancellationToken)
    {
        var items = await Transfer.ListQuarantineAsync(cancellationToken);
        return [.. items.Select(q => new QuarantineItemView(q.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), q.ContentId, q.Name, q.State, q.Reason, q.Size, q.Publisher, q.Created))];
    }

    public Task ReleaseAsync(string id, string? toDirectory, CancellationToken cancellationToken) =>
        Transfer.ReleaseQuarantineAsync(ParseId(id), string.IsNullOrWhiteSpace(toDirectory) ? null : toDirectory.Trim(), cancellationToken);

    public Task DeleteAsync(string id, CancellationToken cancellationToken) => Transfer.DeleteQuarantineAsync(ParseId(id), cancellationToken);

    public async Task<IReadOnlyList<LogEntryView>> ListLogAsync(int limit, CancellationToken cancellationToken)
    {
        var entries = await _control.GetLogAsync(null, limit, cancellationToken);
        return [.. entries.OrderByDescending(e => e.Seq).Select(e => new LogEntryView(e.Seq, e.Time, e.Event, e.PeerId, e.Detail))];
    }

    public async Task<LogVerificationView> VerifyLogAsync(CancellationToken cancellationToken)
    {
        var v = await _control.VerifyLogAsync(cancellationToken);
        return new LogVerificationView(v.Ok, v.Entries, v.BrokenSeq, v.Reason, v.HeadSeq, v.HeadHash);
    }

    private static long ParseId(string id) =>
        long.TryParse(id, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
            ? n
            : throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"'{id}' is not a quarantine item number");

    public async ValueTask DisposeAsync()
    {
        if (_sharing is { } sharing)
        {
            await Task.WhenAny(sharing, Task.Delay(TimeSpan.FromSeconds(2)));
        }
        (_control as IDisposable)?.Dispose();
        if (_hosted is { } hosted)
        {
            await hosted.Host.DisposeAsync();
            hosted.Resources.Dispose();
        }
        _offlineDb?.Dispose();
    }

    private sealed record NodeHostBundle(MeshHost Host, Bundle Resources);

    private sealed record Bundle(NodeLock Lock, NodeIdentity Identity, SecureMeshDatabase Db) : IDisposable
    {
        public void Dispose()
        {
            Db.Dispose();
            Identity.Dispose();
            Lock.Dispose();
        }
    }
}
