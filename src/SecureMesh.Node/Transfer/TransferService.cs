using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Network;
using SecureMesh.Node.Quarantine;
using SecureMesh.Storage;

namespace SecureMesh.Node.Transfer;

/// <summary>One content found by a search: merged over every peer that holds it.</summary>
/// <param name="ContentId">The content ID.</param>
/// <param name="Name">The name the first peer holding it gave (peers in session order).</param>
/// <param name="Size">Size in bytes.</param>
/// <param name="Peers">Peers holding it.</param>
public sealed record SearchHit(string ContentId, string Name, long Size, IReadOnlyList<string> Peers);

/// <summary>
/// The transfer engine of a node: serves the catalog to trusted peers and runs swarm downloads. Install
/// <see cref="HandleSessionAsync"/> as <see cref="NodeOptions.SessionHandler"/>; the CLI, the TUI and the control API
/// use the public methods.
/// </summary>
public sealed class TransferService : IAsyncDisposable, IServingHost
{
    private readonly TransferOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<PeerId, ProtocolSession> _sessions = new();
    private readonly ConcurrentDictionary<string, DownloadHandle> _downloads = new(StringComparer.Ordinal);
    // This process's count of bad chunks per peer: only a fallback for when the stored count cannot be written.
    private readonly ConcurrentDictionary<PeerId, int> _failures = new();
    private readonly ConcurrentDictionary<PeerId, byte> _banned = new();
    private long _uploadLimit;
    private readonly CancellationTokenSource _accessStop = new();
    private readonly Task _accessLoop;
    private long _uploadLimitReadAt;

    /// <summary>A transfer engine over the node's database, identity and data directory.</summary>
    public TransferService(SecureMeshDatabase db, NodeIdentity identity, string home, TransferOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(identity);
        Database = db;
        _options = options ?? new TransferOptions();
        _logger = _options.LoggerFactory.CreateLogger("SecureMesh.Transfer");
        Shares = new ShareService(db, identity, _options.Time, _logger);
        Quarantine = new QuarantineManager(db, home, null, null);
        // A release a crash cut short (recorded, moved, not marked) is settled before anything else touches quarantine.
        Quarantine.ReconcileReleases();
        Access = new ShareAuthorizer(db);
        _accessLoop = Task.Run(AccessLoopAsync);
    }

    /// <summary>Who may see which shared content; asked on every request from a peer.</summary>
    public ShareAuthorizer Access { get; }

    /// <summary>
    /// Re-reads who may see what now (after a change through this node) and applies it to open sessions: requests in
    /// flight for content a peer may no longer see are answered "not found" and stop, each cut audited.
    /// </summary>
    public void RefreshAccess()
    {
        AccessSnapshot snapshot;
        try
        {
            Access.Refresh();
            snapshot = Access.Current;
        }
        catch (SecureMeshException e)
        {
            TransferLog.ServeFailed(_logger, "-", e.Message);
            return;
        }
        // Compared with the snapshot the transfers were last checked against, not with whether this call rebuilt it: a
        // refused request may have rebuilt it first (ShareAuthorizer.RefreshIfStale), and the cut must not be skipped.
        if (ReferenceEquals(Interlocked.Exchange(ref _reauthorizedFor, snapshot), snapshot))
        {
            return;
        }
        foreach (var session in _sessions.Values)
        {
            foreach (var contentId in session.Reauthorize())
            {
                AuditSafe("transfer.cut", session.PeerId, $"content={contentId} reason=no longer in a share this peer may see");
            }
        }
    }

    /// <summary>The access snapshot the running transfers were last checked against.</summary>
    private AccessSnapshot? _reauthorizedFor;

    private async Task AccessLoopAsync()
    {
        using var timer = new PeriodicTimer(_options.AccessPollInterval, _options.Time);
        using var stop = timer.StopOn(_accessStop.Token);
        try
        {
            while (await timer.WaitForNextTickAsync().ConfigureAwait(false))
            {
                try
                {
                    RefreshAccess();
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>The database.</summary>
    public SecureMeshDatabase Database { get; }

    /// <summary>Shares and the catalog.</summary>
    public ShareService Shares { get; }

    /// <summary>The quarantine downloads land in.</summary>
    public QuarantineManager Quarantine { get; }

    /// <summary>Raised when a peer's protocol session is ready (hellos exchanged).</summary>
    public event Action<ProtocolSession>? PeerReady;

    /// <summary>Sessions whose hellos have been exchanged.</summary>
    public IReadOnlyList<ProtocolSession> OpenSessions() => [.. _sessions.Values.Where(s => s.IsOpen)];

    /// <summary>Chunks served to peers since start.</summary>
    public long ChunksServed => _sessions.Values.Sum(s => Interlocked.Read(ref s.ChunksServed));

    /// <summary>
    /// The session handler: runs the protocol with one trusted peer on the session's <see cref="TransferProtocol.Transfer"/>
    /// stream until the session ends.
    /// </summary>
    public async Task HandleSessionAsync(PeerSession session, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        var channel = session.Messages ?? throw new InvalidOperationException("the session has no transfer stream");
        var protocol = new ProtocolSession(session, channel, this, _options, _logger);
        _sessions[session.PeerId] = protocol;
        _ = protocol.Ready.ContinueWith(t => PeerReady?.Invoke(protocol), CancellationToken.None,
            TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
        try
        {
            await protocol.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sessions.TryRemove(new KeyValuePair<PeerId, ProtocolSession>(session.PeerId, protocol));
        }
    }

    /// <summary>The stream protocols this engine serves besides the session stream (the search protocol).</summary>
    public IReadOnlyList<StreamProtocol> StreamProtocols =>
    [
        new(TransferProtocol.Search, (session, stream, ct) =>
            ProtocolSession.ServeSearchStreamAsync(session, new MessageStream(stream), this, _options, _logger, ct), MaxInboundSearchStreams),
    ];

    /// <summary>Search streams one peer may have open towards us at once; more are reset.</summary>
    internal const int MaxInboundSearchStreams = 8;

    /// <summary>Waits until at least <paramref name="count"/> sessions are ready, or the timeout passes; returns how many are.</summary>
    public async Task<int> WaitForPeersAsync(int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        // Woken as each session becomes ready (a one-off command starts its download that much sooner), and checked
        // every 100 ms anyway.
        using var changed = new SemaphoreSlim(0);
        void OnReady(ProtocolSession _)
        {
            try
            {
                changed.Release();
            }
            catch (ObjectDisposedException)
            {
                // Raised just as the wait ended.
            }
        }
        PeerReady += OnReady;
        try
        {
            var start = _options.Time.GetTimestamp();
            while (OpenSessions().Count < count)
            {
                var left = timeout - _options.Time.GetElapsedTime(start);
                if (left <= TimeSpan.Zero)
                {
                    break;
                }
                var wait = left < TimeSpan.FromMilliseconds(100) ? left : TimeSpan.FromMilliseconds(100);
                await changed.WaitAsync(wait, cancellationToken).ConfigureAwait(false);
            }
            return OpenSessions().Count;
        }
        finally
        {
            PeerReady -= OnReady;
        }
    }

    /// <summary>Asks every connected trusted peer and merges the results by content ID.</summary>
    public async Task<IReadOnlyList<SearchHit>> SearchAsync(string terms, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(terms);
        var query = terms.Length > WireLimits.MaxQueryBytes / 4 ? terms[..(WireLimits.MaxQueryBytes / 4)] : terms;
        var sessions = OpenSessions();
        var answers = await Task.WhenAll(sessions.Select(async s =>
        {
            try
            {
                return (s.PeerId, Results: await s.SearchAsync(query, WireLimits.MaxSearchResults, cancellationToken).ConfigureAwait(false));
            }
            catch (Exception e) when (e is SecureMeshException or TimeoutException)
            {
                return (s.PeerId, Results: (IReadOnlyList<SearchResult>)[]);
            }
        })).ConfigureAwait(false);
        var merged = new Dictionary<string, (SearchResult First, List<string> Peers)>(StringComparer.Ordinal);
        foreach (var (peer, results) in answers)
        {
            foreach (var r in results)
            {
                if (IsBlocked(r.ContentId.Text))
                {
                    continue;
                }
                if (!merged.TryGetValue(r.ContentId.Text, out var entry))
                {
                    entry = (r, []);
                    merged[r.ContentId.Text] = entry;
                }
                if (!entry.Peers.Contains(peer.Text))
                {
                    entry.Peers.Add(peer.Text);
                }
            }
        }
        return [.. merged.Values.OrderBy(e => e.First.Name, StringComparer.Ordinal)
            .Select(e => new SearchHit(e.First.ContentId.Text, e.First.Name, e.First.Size, e.Peers))];
    }

    /// <summary>
    /// Starts (or joins) a swarm download of <paramref name="id"/> from every connected peer that holds it; the handle
    /// reports progress and completes with the quarantine outcome. <paramref name="outDir"/> overrides the release folder.
    /// </summary>
    public DownloadHandle StartDownload(ContentId id, string? outDir = null) => StartDownload(id, outDir, resolved: false);

    /// <summary>
    /// As <see cref="StartDownload(ContentId, string?)"/>; a folder given now is resolved now (a link named is taken to its
    /// target), one stored by an earlier run (<paramref name="resolved"/>) is used as stored, so a link swapped in since
    /// is refused at release rather than followed.
    /// </summary>
    internal DownloadHandle StartDownload(ContentId id, string? outDir, bool resolved)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (outDir is not null && !resolved)
        {
            outDir = ShareFileSystem.Resolve(QuarantineManager.ExpandHome(outDir));
        }
        while (true)
        {
            if (_downloads.TryGetValue(id.Text, out var running) && !running.Completion.IsCompleted)
            {
                return running;
            }
            var handle = new DownloadHandle(id, outDir, _options.Time);
            if (running is null ? !_downloads.TryAdd(id.Text, handle) : !_downloads.TryUpdate(id.Text, handle, running))
            {
                continue;
            }
            var download = new SwarmDownload(this, handle, _options, _logger);
            handle.Completion = Task.Run(async () =>
            {
                DownloadResult result;
                try
                {
                    result = await download.RunAsync().ConfigureAwait(false);
                }
                catch (Exception e) when (e is ObjectDisposedException or InvalidOperationException or OperationCanceledException)
                {
                    // Shutting down underneath the download: report it, never fault the handle.
                    result = new DownloadResult(DownloadState.Failed, e.Message, null, null);
                }
                catch (Exception e)
                {
                    // A bug, not bad input (that is reported above): logged with its stack, and the handle still ends
                    // as failed so that nobody following it (a `get` through the node, the TUI) waits forever.
                    TransferLog.DownloadCrashed(_logger, id.Text, e);
                    result = new DownloadResult(DownloadState.Failed, $"internal error: {e.GetType().Name}", null, null);
                }
                handle.State = result.State;
                return result;
            });
            return handle;
        }
    }

    /// <summary>
    /// Starts every unfinished download recorded in the database (after a restart); returns their handles. A download
    /// that failed is not among them: it resumes only when the user asks for it again.
    /// </summary>
    public IReadOnlyList<DownloadHandle> ResumeDownloads()
    {
        var handles = new List<DownloadHandle>();
        foreach (var record in Database.Downloads.ListResumable())
        {
            if (ContentId.TryParse(record.ContentId, out var id))
            {
                handles.Add(StartDownload(id, record.OutDir, resolved: true));
            }
        }
        return handles;
    }

    /// <summary>Downloads started in this process, running or finished.</summary>
    public IReadOnlyList<DownloadHandle> ListTransfers() => [.. _downloads.Values];

    /// <summary>Cancels a running download; false when none runs.</summary>
    public bool Cancel(ContentId id)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (_downloads.TryGetValue(id.Text, out var handle) && !handle.Completion.IsCompleted)
        {
            handle.Cancel();
            return true;
        }
        return false;
    }

    internal bool IsBlocked(string contentId) => Database.Trust.IsContentBlocked(contentId);

    bool IServingHost.IsBlocked(string contentId) => IsBlocked(contentId);

    bool IServingHost.CanSee(PeerId peer, string contentId) => Access.CanSee(peer, contentId);

    IReadOnlyList<CatalogEntry> IServingHost.Search(PeerId peer, string query, int limit) =>
        Shares.Search(query, limit, path => Access.CanSeePath(peer, path));

    SharedContent? IServingHost.Find(PeerId peer, ContentId id) => Shares.Find(id, path => Access.CanSeePath(peer, path));

    void IServingHost.ContentChanged(SharedContent content) => Shares.ScheduleReindex(content);

    long IServingHost.UploadLimit() => UploadLimit();

    /// <summary>
    /// Bytes free to this user in the file system holding <paramref name="folder"/> (or its nearest existing parent):
    /// statvfs's f_bavail × f_frsize through <see cref="DriveInfo"/>. long.MaxValue when it cannot be told.
    /// </summary>
    internal long FreeSpace(string folder)
    {
        if (_options.FreeSpace is { } seam)
        {
            return seam(folder);
        }
        var dir = Path.GetFullPath(folder);
        while (!Directory.Exists(dir) && Path.GetDirectoryName(dir) is { } parent)
        {
            dir = parent;
        }
        try
        {
            return new DriveInfo(dir).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return long.MaxValue;
        }
    }

    internal bool IsBanned(PeerId peer) => _banned.ContainsKey(peer);

    /// <summary>The per-peer upload limit in bytes per second (0: none), re-read from the settings every second.</summary>
    internal long UploadLimit()
    {
        if (_options.UploadLimit is { } fixedLimit)
        {
            return fixedLimit;
        }
        var now = _options.Time.GetTimestamp();
        var last = Interlocked.Read(ref _uploadLimitReadAt);
        if (last == 0 || _options.Time.GetElapsedTime(last, now) > TimeSpan.FromSeconds(1))
        {
            Interlocked.Exchange(ref _uploadLimitReadAt, now);
            var text = Database.Config.Get(NodeSettings.UploadLimit);
            Interlocked.Exchange(ref _uploadLimit, text is null ? 0 : Math.Max(0, long.Parse(text, CultureInfo.InvariantCulture)));
        }
        return Interlocked.Read(ref _uploadLimit);
    }

    /// <summary>
    /// Records a chunk that failed verification; bans the sender after repeated failures. The count is stored (it
    /// survives restarts); should the database fail, this process's own count still bans.
    /// </summary>
    internal void RecordBadChunk(ProtocolSession session, string evidence)
    {
        var peer = session.PeerId;
        var counted = _failures.AddOrUpdate(peer, 1, (_, n) => n + 1);
        int failures;
        try
        {
            failures = Database.Trust.AddStrike(peer);
        }
        catch (SecureMeshException e)
        {
            TransferLog.ServeFailed(_logger, peer.Text, e.Message);
            failures = counted;
        }
        AuditSafe("chunk.rejected", peer, $"{evidence} failures={failures}");
        if (failures >= _options.BanAfterFailures && _banned.TryAdd(peer, 0))
        {
            var reason = $"sent {failures} chunks that failed verification";
            try
            {
                Database.Trust.Block(peer, reason);
            }
            catch (SecureMeshException e)
            {
                TransferLog.ServeFailed(_logger, peer.Text, e.Message);
            }
            AuditSafe("peer.banned", peer, $"{reason}; last evidence: {evidence}");
            TransferLog.Banned(_logger, peer.Text, reason);
            session.Close("banned: " + reason);
        }
    }

    internal void AuditSafe(string eventName, PeerId peer, string detail)
    {
        try
        {
            Database.Audit.Append(eventName, peer, detail.Length > 4000 ? detail[..4000] : detail);
        }
        catch (SecureMeshException e)
        {
            TransferLog.ServeFailed(_logger, peer.Text, e.Message);
        }
    }

    /// <summary>Cancels running downloads and waits for them; stops background indexing.</summary>
    public async ValueTask DisposeAsync()
    {
        await _accessStop.CancelAsync().ConfigureAwait(false);
        await _accessLoop.ConfigureAwait(false);
        foreach (var handle in _downloads.Values)
        {
            handle.Cancel();
        }
        try
        {
            await Task.WhenAll(_downloads.Values.Select(d => d.Completion)).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        await Shares.DisposeAsync().ConfigureAwait(false);
    }
}
