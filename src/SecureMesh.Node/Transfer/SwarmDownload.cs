using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Quarantine;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// One swarm download: a verified manifest from any peer, every peer's chunk map, then up to
/// <see cref="TransferOptions.PipelineDepth"/> requests in flight per peer (one lane per slot), chunks picked rarest
/// first, duplicated to a second peer in the endgame. A chunk that fails verification is refetched elsewhere and its
/// sender dropped (and audited, and banned after repeated failures); a timeout or a closed session hands the chunk back
/// to the others. Only verified chunks are written to the quarantine part file; they are fsynced before being recorded
/// as verified in the database, so a resume never trusts bytes that were not on disk.
/// The check before release rebuilds the content ID from every chunk's leaf hash: for a chunk this download verified and
/// wrote itself, the hash of exactly the bytes it wrote (kept, 32 bytes a chunk); every other chunk (one resumed from an
/// earlier run) is read back from the part file and hashed again.
/// </summary>
internal sealed class SwarmDownload
{
    private readonly TransferService _service;
    private readonly DownloadHandle _handle;
    private readonly TransferOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Lock _writeGate = new();
    private readonly List<long> _unflushed = [];
    private readonly SemaphoreSlim _changed = new(0);
    private ChunkBitfield _done = null!;
    // Leaf hashes of the chunks this download verified and wrote itself, for the check before release.
    private KnownLeaves _written = null!;
    private int[] _order = [];
    private int _cursor;
    private readonly Queue<long> _retry = new();
    private readonly Dictionary<long, int> _inFlight = [];
    private readonly HashSet<PeerId> _liars = [];
    private Manifest _manifest = null!;
    private volatile bool _blocked;
    private SecureMeshException? _fatal;
    private CancellationTokenSource? _lanesStop;
    private SemaphoreSlim? _replyBudget;

    public SwarmDownload(TransferService service, DownloadHandle handle, TransferOptions options, ILogger logger)
    {
        _service = service;
        _handle = handle;
        _options = options;
        _logger = logger;
    }

    private ContentId Id => _handle.ContentId;

    private sealed class Source(ProtocolSession session, ChunkBitfield have)
    {
        public ProtocolSession Session { get; } = session;
        public ChunkBitfield Have { get; } = have;
        public HashSet<long> InFlight { get; } = [];
        public volatile bool Dropped;
        public int Timeouts;
    }

    /// <summary>
    /// Runs the download. One that fails (or is refuted) with no verified chunk leaves nothing behind: its part file,
    /// quarantine item and download record are deleted. One that fails with verified chunks keeps them for a `get` to
    /// resume, but is marked failed, so a restart never resumes it by itself.
    /// </summary>
    public async Task<DownloadResult> RunAsync()
    {
        var result = await RunCoreAsync().ConfigureAwait(false);
        if (result.State == DownloadState.Failed)
        {
            CleanUpFailed(result);
        }
        return result;
    }

    private void CleanUpFailed(DownloadResult result)
    {
        var reason = result.Reason ?? "failed";
        try
        {
            if (result.QuarantineId is not { } itemId)
            {
                // Failed before its part file was opened (no valid manifest, no disk space): an earlier run's record
                // keeps its chunks for a `get`, but is not resumed by itself again.
                if (_service.Database.Downloads.Get(Id.Text) is not null)
                {
                    _service.Database.Downloads.MarkFailed(Id.Text, reason);
                }
                return;
            }
            long verified;
            lock (_gate)
            {
                verified = _done?.SetCount ?? 0;
            }
            if (verified == 0)
            {
                var record = _service.Database.Downloads.Get(Id.Text);
                if (record is null || record.QuarantineId == itemId)
                {
                    _service.Database.Downloads.Remove(Id.Text);
                }
                if (_service.Quarantine.Get(itemId).State is Storage.QuarantineState.Downloading)
                {
                    _service.Quarantine.Delete(itemId, "download failed with nothing verified: " + reason);
                }
            }
            else
            {
                _service.Database.Downloads.MarkFailed(Id.Text, reason);
            }
        }
        catch (Exception e) when (e is SecureMeshException or IOException or UnauthorizedAccessException)
        {
            TransferLog.CleanUpFailed(_logger, Id.Text, e.Message);
        }
    }

    private async Task<DownloadResult> RunCoreAsync()
    {
        var ct = _handle.Token;
        long? quarantineId = null;
        try
        {
            var db = _service.Database;
            if (_service.IsBlocked(Id.Text))
            {
                return new DownloadResult(DownloadState.Failed, $"content {Id} is blocked", null, null);
            }
            var peers = _service.OpenSessions();
            var offered = await FetchManifestsAsync(peers, ct).ConfigureAwait(false);
            offered = await SettleLayoutAsync(offered, ct).ConfigureAwait(false);
            var manifests = offered.Select(o => o.Manifest).ToList();
            _manifest = manifests[0];
            _handle.Name = _manifest.Name;
            EnsureDiskSpace();
            var item = _service.Quarantine.BeginDownload(Id.Text, _manifest.Name, _manifest.Size, _manifest.Publisher, peers.Select(p => p.PeerId));
            quarantineId = item.Id;
            db.Downloads.Begin(Id.Text, _manifest.Name, _manifest.Size, _manifest.ChunkSize, _manifest.Encode(), item.Id, _handle.OutDir);

            var count = _manifest.ChunkCount;
            _done = new ChunkBitfield(count);
            _written = new KnownLeaves(count);
            long resumedBytes = 0;
            foreach (var index in db.Downloads.VerifiedChunks(Id.Text))
            {
                if (index >= 0 && index < count && !_done.IsSet(index))
                {
                    _done.Set(index);
                    resumedBytes += ChunkLayout.ChunkLength(_manifest.Size, _manifest.ChunkSize, index);
                }
            }
            _handle.ResumedChunks = _done.SetCount;
            _handle.SetTotal(_manifest.Size, resumedBytes);

            using (var part = _service.Quarantine.OpenPart(item.Id))
            {
                if (part.Length != _manifest.Size)
                {
                    part.SetLength(_manifest.Size);
                }
                if (!_done.IsComplete)
                {
                    _handle.State = DownloadState.Downloading;
                    var sources = await GatherSourcesAsync(peers, count, ct).ConfigureAwait(false);
                    if (sources.Count == 0)
                    {
                        return new DownloadResult(DownloadState.Failed, $"no connected peer has {Id}", null, item.Id);
                    }
                    BuildOrder(sources, count);
                    using var replyBudget = new SemaphoreSlim((int)Math.Max(1, MaxInFlightBytes / _manifest.ChunkSize));
                    _replyBudget = replyBudget;
                    _handle.SetPeers(sources.Count);
                    using var lanesStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    _lanesStop = lanesStop;
                    using var flushStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    var flusher = FlushLoopAsync(part, lanesStop, flushStop.Token);
                    var lanes = new List<Task>();
                    foreach (var source in sources)
                    {
                        StartLanes(source, sources, part.SafeFileHandle, lanes, lanesStop.Token);
                    }
                    using (var joinStop = CancellationTokenSource.CreateLinkedTokenSource(lanesStop.Token))
                    {
                        var joiner = JoinLateSourcesAsync(sources, count, part.SafeFileHandle, lanes, joinStop.Token);
                        await AllLanesAsync(lanes).ConfigureAwait(false);
                        await joinStop.CancelAsync().ConfigureAwait(false);
                        await joiner.ConfigureAwait(false);
                        // A peer that joined while the last lanes were ending has lanes of its own to finish.
                        await AllLanesAsync(lanes).ConfigureAwait(false);
                    }
                    _handle.MarkTransferDone();
                    await flushStop.CancelAsync().ConfigureAwait(false);
                    await flusher.ConfigureAwait(false);
                    if (_fatal is not null)
                    {
                        Flush(part);
                        throw _fatal;
                    }
                    if (_blocked)
                    {
                        part.Dispose();
                        _service.Quarantine.AbortForBlockedContent(Id.Text);
                        db.Downloads.Remove(Id.Text);
                        return new DownloadResult(DownloadState.Failed, $"content {Id} was blocked during the download; its data was deleted", null, item.Id);
                    }
                    Flush(part);
                    ct.ThrowIfCancellationRequested();
                    if (!_done.IsComplete)
                    {
                        return new DownloadResult(DownloadState.Failed,
                            $"{count - _done.SetCount} of {count} chunks missing: no remaining peer could serve them " +
                            (_done.SetCount == 0 ? "(none verified, so nothing is kept)" : "(verified chunks are kept; run get again to resume)"),
                            null, item.Id);
                    }
                }
            }

            _handle.State = DownloadState.Verifying;
            KeepTrustedPublisher(item.Id, manifests);
            var outcome = await _service.Quarantine.CompleteAsync(item.Id, VerifyWholeFileAsync, _handle.OutDir, ct).ConfigureAwait(false);
            db.Downloads.Remove(Id.Text);
            var result = outcome.Released
                ? new DownloadResult(DownloadState.Released, null, outcome.Item.ReleasedPath, item.Id)
                : new DownloadResult(DownloadState.Held, outcome.Item.Reason, outcome.Item.Path, item.Id);
            TransferLog.DownloadFinished(_logger, Id.Text, result.State.ToString());
            return result;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return new DownloadResult(DownloadState.Cancelled, "cancelled; verified chunks are kept for a resume", null, quarantineId);
        }
        catch (Exception e) when (e is SecureMeshException or IOException or UnauthorizedAccessException or TimeoutException)
        {
            return new DownloadResult(DownloadState.Failed, e.Message, null, quarantineId);
        }
    }

    /// <summary>Room kept free beyond the file itself (the database, logs, the scanner's own files).</summary>
    internal const long DiskReserve = 64L * 1024 * 1024;

    /// <summary>
    /// Refuses, before a quarantine item or part file exists, a download whose file cannot fit in the quarantine
    /// folder's file system (less what a resumed part already holds), so no sparse part file of a size the disk cannot
    /// hold is ever created.
    /// </summary>
    private void EnsureDiskSpace()
    {
        var folder = _service.Quarantine.Folder;
        var have = 0L;
        if (_service.Database.Downloads.Get(Id.Text) is { } earlier && earlier.Size == _manifest.Size && earlier.ChunkSize == _manifest.ChunkSize)
        {
            have = Math.Min(_manifest.Size, _service.Database.Downloads.VerifiedChunks(Id.Text).Count * (long)_manifest.ChunkSize);
        }
        var need = _manifest.Size - have;
        var free = _service.FreeSpace(folder);
        if (need + DiskReserve > free)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage,
                $"not enough disk space for {_manifest.Name} ({Bytes(_manifest.Size)}): {Bytes(need)} more is needed (and {Bytes(DiskReserve)} kept free), " +
                $"{Bytes(Math.Max(0, free))} is free where quarantine is ({folder})");
        }
    }

    private static string Bytes(long n) => n switch
    {
        >= 1L << 40 => $"{n / (double)(1L << 40):0.#} TiB",
        >= 1L << 30 => $"{n / (double)(1L << 30):0.#} GiB",
        >= 1L << 20 => $"{n / (double)(1L << 20):0.#} MiB",
        >= 1L << 10 => $"{n / (double)(1L << 10):0.#} KiB",
        _ => $"{n} bytes",
    };

    private async Task<bool> VerifyWholeFileAsync(string path, CancellationToken ct)
    {
        // Every lane has ended: _written no longer changes.
        var tree = await FileIndexer.IndexAsync(path, _manifest.ChunkSize, _written, null, ct).ConfigureAwait(false);
        return tree.ContentId == Id;
    }

    /// <summary>Every valid manifest the peers give (asked in parallel) with its sender, in the order of <paramref name="peers"/>.</summary>
    private async Task<List<(Manifest Manifest, ProtocolSession Peer)>> FetchManifestsAsync(IReadOnlyList<ProtocolSession> peers, CancellationToken ct)
    {
        if (peers.Count == 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Network, "no trusted peer is connected");
        }
        var answers = await Task.WhenAll(peers.Select(async peer =>
        {
            try
            {
                var bytes = await peer.GetManifestAsync(Id, ct).ConfigureAwait(false);
                Manifest manifest;
                try
                {
                    manifest = Manifest.Decode(bytes);
                }
                catch (SecureMeshException e)
                {
                    return Reject(peer.PeerId, e.Message);
                }
                if (!manifest.Verify())
                {
                    return Reject(peer.PeerId, "manifest signature does not verify");
                }
                if (manifest.ContentId != Id)
                {
                    return Reject(peer.PeerId, $"manifest is for {manifest.ContentId}");
                }
                // Its chunk count is within ChunkLayout.MaxChunkCount: Manifest.Decode refuses more, before anything is sized by it.
                return (Manifest: manifest, Error: (string?)null);
            }
            catch (Exception e) when (e is SecureMeshException or TimeoutException)
            {
                return (Manifest: (Manifest?)null, Error: $"{peer.PeerId}: {e.Message}");
            }
        })).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        var valid = answers.Zip(peers).Where(a => a.First.Manifest is not null).Select(a => (a.First.Manifest!, a.Second)).ToList();
        if (valid.Count == 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound,
                $"no peer gave a valid manifest for {Id} ({string.Join("; ", answers.Select(a => a.Error))})");
        }
        return valid;

        (Manifest? Manifest, string? Error) Reject(PeerId peer, string why)
        {
            _service.AuditSafe("manifest.rejected", peer, $"content={Id} reason={why}");
            return (null, $"{peer}: {why}");
        }
    }

    /// <summary>
    /// When the peers' manifests disagree on the file size or chunk size, only one layout can be true (the content ID
    /// binds both), and taking a lying one would make every honest peer's chunks fail and the honest peers be blamed.
    /// Peers are asked for chunk 0 one at a time until a reply verifies under one of the layouts: that layout is the
    /// true one. Manifests with another layout are rejected and audited, and their senders left out of this download.
    /// </summary>
    private async Task<List<(Manifest Manifest, ProtocolSession Peer)>> SettleLayoutAsync(List<(Manifest Manifest, ProtocolSession Peer)> offered, CancellationToken ct)
    {
        var layouts = offered.Select(o => (o.Manifest.Size, o.Manifest.ChunkSize)).Distinct().ToList();
        if (layouts.Count == 1)
        {
            return offered;
        }
        (long Size, int ChunkSize)? proven = null;
        foreach (var peer in offered.Select(o => o.Peer).Distinct())
        {
            try
            {
                using var reply = await peer.GetChunkAsync(Id, 0, ct).ConfigureAwait(false);
                proven = layouts.Cast<(long Size, int ChunkSize)?>().FirstOrDefault(l => reply.Index == 0
                    && ContentVerifier.VerifyChunk(Id, l!.Value.Size, l.Value.ChunkSize, 0, reply.Data.Span, reply.Proof));
            }
            catch (Exception e) when (e is SecureMeshException or TimeoutException or IOException or ObjectDisposedException)
            {
                // This peer cannot settle it; ask the next.
            }
            if (proven is not null)
            {
                break;
            }
        }
        if (proven is not { } truth)
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound,
                $"peers disagree on the size of {Id} ({string.Join(", ", layouts.Select(l => $"{l.Size} bytes in {l.ChunkSize}-byte chunks"))}) and none proved its first chunk");
        }
        foreach (var (manifest, peer) in offered.Where(o => (o.Manifest.Size, o.Manifest.ChunkSize) != truth))
        {
            _service.AuditSafe("manifest.rejected", peer.PeerId,
                $"content={Id} reason=claims {manifest.Size} bytes in {manifest.ChunkSize}-byte chunks; chunk 0 proves {truth.Size} bytes in {truth.ChunkSize}-byte chunks");
            lock (_gate)
            {
                _liars.Add(peer.PeerId);
            }
        }
        return [.. offered.Where(o => (o.Manifest.Size, o.Manifest.ChunkSize) == truth)];
    }

    /// <summary>When the recorded publisher lost trust meanwhile (banned, say), another trusted peer that signed this content vouches instead.</summary>
    private void KeepTrustedPublisher(long itemId, List<Manifest> manifests)
    {
        var trust = _service.Database.Trust;
        var current = _service.Quarantine.Get(itemId).Publisher;
        if (current is not null && trust.GetPeer(current)?.State == Storage.PeerState.Trusted)
        {
            return;
        }
        var other = manifests.FirstOrDefault(m => trust.GetPeer(m.Publisher)?.State == Storage.PeerState.Trusted);
        if (other is not null)
        {
            _service.Database.Quarantine.SetPublisher(itemId, other.Publisher);
        }
    }

    private async Task<List<Source>> GatherSourcesAsync(IReadOnlyList<ProtocolSession> peers, long count, CancellationToken ct)
    {
        var tasks = peers.Select(async p =>
        {
            try
            {
                var have = await p.GetHaveAsync(Id, count, ct).ConfigureAwait(false);
                return have.SetCount > 0 ? new Source(p, have) : null;
            }
            catch (Exception e) when (e is SecureMeshException or TimeoutException)
            {
                return null;
            }
        }).ToList();
        var results = await Task.WhenAll(tasks).ConfigureAwait(false);
        return [.. results.Where(s => s is not null && !Excluded(s.Session.PeerId)).Select(s => s!)];
    }

    /// <summary>A banned peer, or one that lied in this download (a bad chunk, a manifest refuted): never a source again, even after reconnecting.</summary>
    private bool Excluded(PeerId peer)
    {
        lock (_gate)
        {
            if (_liars.Contains(peer))
            {
                return true;
            }
        }
        return _service.IsBanned(peer);
    }

    /// <summary>Chunk bytes one peer may have in flight: with large chunks, fewer requests per peer.</summary>
    internal const long MaxInFlightBytesPerPeer = 8L * 1024 * 1024;

    /// <summary>Chunk bytes the whole download may have in flight (each reply is held until verified and written).</summary>
    internal const long MaxInFlightBytes = 48L * 1024 * 1024;

    private void StartLanes(Source source, List<Source> all, SafeFileHandle file, List<Task> lanes, CancellationToken ct)
    {
        // Each lane holds at most one chunk reply, so memory for replies is lanes × chunk size: at 16 MiB chunks one lane
        // a peer, and the download-wide budget (_replyBudget) bounds it over all peers.
        var depth = (int)Math.Clamp(MaxInFlightBytesPerPeer / _manifest.ChunkSize, 1, Math.Max(1, _options.PipelineDepth));
        lock (lanes)
        {
            for (var i = 0; i < depth; i++)
            {
                lanes.Add(LaneAsync(source, all, file, ct));
            }
        }
    }

    private static async Task AllLanesAsync(List<Task> lanes)
    {
        while (true)
        {
            Task[] running;
            lock (lanes)
            {
                running = [.. lanes];
            }
            await Task.WhenAll(running).ConfigureAwait(false);
            lock (lanes)
            {
                if (lanes.Count == running.Length)
                {
                    return;
                }
            }
        }
    }

    /// <summary>
    /// While the download runs, a trusted peer that connects (or reconnects) and holds chunks becomes a source too: a
    /// seeder that was slow to connect, or that came back after a drop, is not left out until the next download.
    /// </summary>
    private async Task JoinLateSourcesAsync(List<Source> sources, long count, SafeFileHandle file, List<Task> lanes, CancellationToken ct)
    {
        // Each session is asked once: one that does not hold the content is not asked again every interval.
        HashSet<ProtocolSession> asked = [.. sources.Select(s => s.Session)];
        try
        {
            while (true)
            {
                await Task.Delay(_options.JoinInterval, _options.Time, ct).ConfigureAwait(false);
                lock (_gate)
                {
                    if (_done.IsComplete)
                    {
                        return;
                    }
                }
                var fresh = _service.OpenSessions().Where(p => !asked.Contains(p) && !Excluded(p.PeerId)).ToList();
                asked.UnionWith(fresh);
                if (fresh.Count == 0)
                {
                    continue;
                }
                foreach (var source in await GatherSourcesAsync(fresh, count, ct).ConfigureAwait(false))
                {
                    lock (_gate)
                    {
                        sources.Add(source);
                        _handle.SetPeers(sources.Count(s => !s.Dropped));
                    }
                    TransferLog.PeerJoined(_logger, source.Session.PeerId.Text, Id.Text);
                    StartLanes(source, sources, file, lanes, _lanesStop!.Token);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void BuildOrder(List<Source> sources, long count)
    {
        // Rarest first: chunks held by the fewest peers go first, ties in file order (sequential writes). A counting
        // sort on how many peers hold each chunk: 4 bytes a missing chunk and one counter per possible holder count,
        // nothing else that grows with the file (count is at most ChunkLayout.MaxChunkCount, so an int indexes it).
        var holders = new int[sources.Count + 2];
        for (long i = 0; i < count; i++)
        {
            if (!_done.IsSet(i))
            {
                holders[Holders(sources, i) + 1]++;
            }
        }
        for (var n = 1; n < holders.Length; n++)
        {
            holders[n] += holders[n - 1];
        }
        var order = new int[holders[^1]];
        for (long i = 0; i < count; i++)
        {
            if (!_done.IsSet(i))
            {
                order[holders[Holders(sources, i)]++] = (int)i;
            }
        }
        _order = order;
    }

    private static int Holders(List<Source> sources, long index)
    {
        var n = 0;
        foreach (var s in sources)
        {
            n += s.Have.IsSet(index) ? 1 : 0;
        }
        return n;
    }

    /// <summary>The next chunk <paramref name="source"/> should fetch; -1 to wait for a change, -2 when it has nothing left to do.</summary>
    private long Next(Source source, List<Source> all)
    {
        lock (_gate)
        {
            if (_done.IsComplete || source.Dropped)
            {
                return -2;
            }
            var retries = _retry.Count;
            for (var i = 0; i < retries; i++)
            {
                var index = _retry.Dequeue();
                if (_done.IsSet(index) || _inFlight.ContainsKey(index))
                {
                    continue;
                }
                if (source.Have.IsSet(index))
                {
                    return Take(source, index);
                }
                _retry.Enqueue(index);
            }
            while (_cursor < _order.Length)
            {
                var index = _order[_cursor];
                if (_done.IsSet(index) || _inFlight.ContainsKey(index))
                {
                    _cursor++;
                    continue;
                }
                if (source.Have.IsSet(index))
                {
                    _cursor++;
                    return Take(source, index);
                }
                // Held only by others: leave it for them and look further for this peer.
                var scan = _cursor + 1;
                while (scan < _order.Length)
                {
                    var other = _order[scan];
                    if (!_done.IsSet(other) && !_inFlight.ContainsKey(other) && source.Have.IsSet(other))
                    {
                        return Take(source, other);
                    }
                    scan++;
                }
                break;
            }
            // Endgame: nothing unrequested is left for this peer; race another peer for a chunk still in flight.
            foreach (var (index, requesters) in _inFlight)
            {
                if (requesters < 2 && !source.InFlight.Contains(index) && source.Have.IsSet(index))
                {
                    return Take(source, index);
                }
            }
            if (_inFlight.Count > 0 || _retry.Count > 0)
            {
                return -1;
            }
            // Nothing in flight anywhere and nothing this peer can fetch: wait only if some live peer could.
            foreach (var other in all)
            {
                if (other != source && !other.Dropped)
                {
                    return -1;
                }
            }
            return -2;
        }
    }

    private long Take(Source source, long index)
    {
        _inFlight[index] = _inFlight.GetValueOrDefault(index) + 1;
        source.InFlight.Add(index);
        return index;
    }

    private void Release(Source source, long index, bool succeeded)
    {
        lock (_gate)
        {
            source.InFlight.Remove(index);
            var left = _inFlight.GetValueOrDefault(index) - 1;
            if (left <= 0)
            {
                _inFlight.Remove(index);
                if (!succeeded && !_done.IsSet(index))
                {
                    _retry.Enqueue(index);
                }
            }
            else
            {
                _inFlight[index] = left;
            }
        }
        _changed.Release();
    }

    private async Task LaneAsync(Source source, List<Source> all, SafeFileHandle file, CancellationToken ct)
    {
        try
        {
            await LaneCoreAsync(source, all, file, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private async Task LaneCoreAsync(Source source, List<Source> all, SafeFileHandle file, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            // A permit of the download-wide reply budget is held only while a request is out, not while waiting.
            await _replyBudget!.WaitAsync(ct).ConfigureAwait(false);
            LaneStep step;
            try
            {
                step = await FetchOneAsync(source, all, file, ct).ConfigureAwait(false);
            }
            finally
            {
                _replyBudget.Release();
            }
            if (step == LaneStep.Done)
            {
                return;
            }
            if (step == LaneStep.Wait)
            {
                await _changed.WaitAsync(TimeSpan.FromMilliseconds(200), ct).ConfigureAwait(false);
            }
        }
    }

    private enum LaneStep
    {
        Fetched,
        Wait,
        Done,
    }

    /// <summary>Fetches, verifies and writes one chunk for <paramref name="source"/>.</summary>
    private async Task<LaneStep> FetchOneAsync(Source source, List<Source> all, SafeFileHandle file, CancellationToken ct)
    {
        {
            var index = Next(source, all);
            if (index == -2)
            {
                _changed.Release();
                return LaneStep.Done;
            }
            if (index == -1)
            {
                return LaneStep.Wait;
            }
            var succeeded = false;
            try
            {
                _handle.CountRequest();
                using var reply = await source.Session.GetChunkAsync(Id, index, ct).ConfigureAwait(false);
                var leaf = new byte[Core.Content.MerkleTree.HashLength];
                if (reply.Index != index || !ContentVerifier.VerifyChunk(Id, _manifest.Size, _manifest.ChunkSize, index, reply.Data.Span, reply.Proof.Hashes.Span, leaf))
                {
                    BadChunk(source, index, reply);
                    return LaneStep.Fetched;
                }
                bool fresh;
                lock (_gate)
                {
                    fresh = !_done.IsSet(index);
                }
                if (fresh)
                {
                    try
                    {
                        lock (_writeGate)
                        {
                            RandomAccess.Write(file, reply.Data.Span, ChunkLayout.ChunkOffset(_manifest.ChunkSize, index));
                        }
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // A local disk problem is no peer's fault: stop the whole download (verified chunks are kept).
                        Interlocked.CompareExchange(ref _fatal, new SecureMeshException(SecureMeshErrorKind.Storage,
                            $"writing the quarantine part file failed: {e.Message}", e), null);
                        await _lanesStop!.CancelAsync().ConfigureAwait(false);
                        return LaneStep.Done;
                    }
                    lock (_gate)
                    {
                        if (!_done.IsSet(index))
                        {
                            _done.Set(index);
                            _written.Add(index, leaf);
                            _unflushed.Add(index);
                            _handle.AddBytes(reply.Data.Length);
                        }
                    }
                }
                succeeded = true;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return LaneStep.Done;
            }
            catch (TimeoutException)
            {
                if (Interlocked.Increment(ref source.Timeouts) >= _options.MaxTimeoutsPerPeer)
                {
                    Drop(source, all, "too slow (repeated timeouts)");
                }
            }
            catch (PeerRequestException e) when (e.Code == Core.Wire.WireErrorCode.Busy)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), _options.Time, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException)
            {
                // Not found, changed on disk, blocked there, or the session closed: this peer cannot serve it now.
                Drop(source, all, e.Message);
            }
            finally
            {
                Release(source, index, succeeded);
            }
        }
        return LaneStep.Fetched;
    }

    private void Drop(Source source, List<Source> all, string reason)
    {
        if (source.Dropped)
        {
            return;
        }
        source.Dropped = true;
        lock (_gate)
        {
            _handle.SetPeers(all.Count(s => !s.Dropped));
        }
        TransferLog.PeerDropped(_logger, source.Session.PeerId.Text, Id.Text, reason);
    }

    private void BadChunk(Source source, long index, ChunkReply reply)
    {
        Span<byte> root = stackalloc byte[32];
        Span<byte> leaf = stackalloc byte[32];
        var got = ContentVerifier.TryComputeRoot(_manifest.Size, _manifest.ChunkSize, index, reply.Data.Span, reply.Proof.Hashes.Span, root, leaf, out _)
            ? $"got root {Convert.ToHexStringLower(root)} from leaf {Convert.ToHexStringLower(leaf)}"
            : $"got a malformed reply (index {reply.Index}, {reply.Data.Length} bytes, {reply.Proof.Count} proof hashes)";
        var evidence = $"content={Id} chunk={index} expected root {Convert.ToHexStringLower(Id.Hash)}, {got}";
        TransferLog.BadChunk(_logger, index, Id.Text, source.Session.PeerId.Text);
        _service.RecordBadChunk(source.Session, evidence);
        lock (_gate)
        {
            _liars.Add(source.Session.PeerId);
        }
        source.Dropped = true;
    }

    private async Task FlushLoopAsync(FileStream part, CancellationTokenSource lanes, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await Task.Delay(_options.FlushInterval, _options.Time, ct).ConfigureAwait(false);
                if (_service.IsBlocked(Id.Text))
                {
                    // Blocked content is never requested again, and what arrived of it is deleted.
                    _blocked = true;
                    await lanes.CancelAsync().ConfigureAwait(false);
                    return;
                }
                Flush(part);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Makes written chunks durable, then records them as verified (in that order: see README, Durability).</summary>
    private void Flush(FileStream part)
    {
        long[] batch;
        lock (_gate)
        {
            if (_unflushed.Count == 0)
            {
                return;
            }
            batch = [.. _unflushed];
            _unflushed.Clear();
        }
        part.Flush(flushToDisk: true);
        _service.Database.Downloads.MarkVerified(Id.Text, batch);
    }

}
