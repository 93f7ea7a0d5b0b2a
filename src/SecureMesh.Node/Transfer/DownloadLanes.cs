using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// The request pipelines of a swarm download: per source peer, up to <see cref="TransferOptions.PipelineDepth"/> chunk
/// requests in flight, each made by a lane that asks the <see cref="ChunkPicker"/> what to fetch; twice as many lanes, so
/// that a lane verifying and writing its reply does not hold back the peer's next request. Every reply is verified
/// against the content ID before it is written at its offset in the part file. A chunk that fails verification is
/// audited (<see cref="TransferService.RecordBadChunk"/>), its sender dropped and never a source again in this download;
/// a timeout, an error reply or a closed session hands the chunk back, and repeated timeouts drop the peer. A trusted
/// peer that connects while the download runs and holds chunks joins as a source.
/// </summary>
internal sealed class DownloadLanes
{
    private readonly TransferService _service;
    private readonly DownloadHandle _handle;
    private readonly Manifest _manifest;
    private readonly ChunkPicker _picker;
    private readonly TransferOptions _options;
    private readonly ILogger _logger;
    private readonly Action<long, byte[], int> _written;
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _changed = new(0);
    private readonly HashSet<PeerId> _liars;
    private readonly List<Source> _sources = [];
    private readonly List<Task> _lanes = [];
    private CancellationTokenSource? _stop;
    private SemaphoreSlim? _replyBudget;
    private SecureMeshException? _fatal;

    /// <param name="service">The engine: open sessions, bans, bad-chunk records.</param>
    /// <param name="handle">Progress is reported on it.</param>
    /// <param name="manifest">The verified manifest (layout of the file).</param>
    /// <param name="picker">Decides what each lane fetches.</param>
    /// <param name="refuted">Peers already known to lie about this content: never sources.</param>
    /// <param name="options">Timeouts, depth, join interval.</param>
    /// <param name="logger">Logger.</param>
    /// <param name="written">Called once per chunk newly verified and written: index, leaf hash of the bytes written, length.</param>
    public DownloadLanes(TransferService service, DownloadHandle handle, Manifest manifest, ChunkPicker picker, IEnumerable<PeerId> refuted,
        TransferOptions options, ILogger logger, Action<long, byte[], int> written)
    {
        _service = service;
        _handle = handle;
        _manifest = manifest;
        _picker = picker;
        _liars = [.. refuted];
        _options = options;
        _logger = logger;
        _written = written;
    }

    private ContentId Id => _handle.ContentId;

    /// <summary>Chunk bytes one peer may have in flight (requested, not yet received): with large chunks, fewer requests per peer.</summary>
    internal const long MaxInFlightBytesPerPeer = 8L * 1024 * 1024;

    /// <summary>Chunk bytes the whole download may have in flight (each reply is held until verified and written).</summary>
    internal const long MaxInFlightBytes = 48L * 1024 * 1024;

    /// <summary>A local disk failure that stopped every lane (verified chunks are kept); null otherwise.</summary>
    public SecureMeshException? Fatal => _fatal;

    /// <summary>A peer holding chunks of the content, as the lanes fetch from it.</summary>
    public sealed class Source(ProtocolSession session, ChunkBitfield have)
    {
        /// <summary>The peer's session.</summary>
        public ProtocolSession Session { get; } = session;

        /// <summary>The chunks it holds.</summary>
        public ChunkBitfield Have { get; } = have;

        internal ChunkPicker.Peer Picker { get; set; } = null!;

        /// <summary>Its requests in flight, at most the pipeline depth; a lane holds one from before it picks a chunk until the reply is in.</summary>
        internal SemaphoreSlim Requests { get; set; } = null!;

        internal int Timeouts;
    }

    /// <summary>Asks each of <paramref name="peers"/> which chunks it holds; those with any that are not excluded are sources.</summary>
    public async Task<List<Source>> GatherSourcesAsync(IReadOnlyList<ProtocolSession> peers, CancellationToken ct)
    {
        var tasks = peers.Select(async p =>
        {
            try
            {
                var have = await p.GetHaveAsync(Id, _manifest.ChunkCount, ct).ConfigureAwait(false);
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

    /// <summary>
    /// Plans the picker over <paramref name="sources"/>, runs their lanes (and those of peers that join) into
    /// <paramref name="file"/> until every lane has ended: all chunks verified, no live peer left that could serve the
    /// rest, a local write failure (<see cref="Fatal"/>), or <paramref name="stop"/>.
    /// </summary>
    public async Task RunAsync(List<Source> sources, PartFileWriter file, CancellationToken stop)
    {
        var planned = _picker.Plan([.. sources.Select(s => s.Have)]);
        for (var i = 0; i < sources.Count; i++)
        {
            sources[i].Picker = planned[i];
        }
        using var replyBudget = new SemaphoreSlim((int)Math.Max(1, MaxInFlightBytes / _manifest.ChunkSize));
        _replyBudget = replyBudget;
        using var lanesStop = CancellationTokenSource.CreateLinkedTokenSource(stop);
        _stop = lanesStop;
        lock (_gate)
        {
            _sources.AddRange(sources);
        }
        _handle.SetPeers(sources.Count);
        foreach (var source in sources)
        {
            StartLanes(source, file, lanesStop.Token);
        }
        using var joinStop = CancellationTokenSource.CreateLinkedTokenSource(lanesStop.Token);
        var joiner = JoinLateSourcesAsync(file, joinStop.Token);
        await AllLanesAsync().ConfigureAwait(false);
        await joinStop.CancelAsync().ConfigureAwait(false);
        await joiner.ConfigureAwait(false);
        // A peer that joined while the last lanes were ending has lanes of its own to finish.
        await AllLanesAsync().ConfigureAwait(false);
    }

    private void StartLanes(Source source, PartFileWriter file, CancellationToken ct)
    {
        // At most `depth` requests out at the peer (at 16 MiB chunks one). Each lane holds at most one chunk reply (its
        // request's, while it is out and then while it is verified and written), so memory for replies is lanes × chunk
        // size, LanesPerRequest (2) × MaxInFlightBytesPerPeer a peer, and the download-wide budget (_replyBudget) bounds it
        // over all peers. With one lane per request, a request's slot stayed taken while its reply was verified and
        // written, and the peer ran out of requests (Transfer README, session 9).
        var depth = (int)Math.Clamp(MaxInFlightBytesPerPeer / _manifest.ChunkSize, 1, Math.Max(1, _options.PipelineDepth));
        source.Requests = new SemaphoreSlim(depth, depth);
        lock (_lanes)
        {
            for (var i = 0; i < depth * Math.Max(1, _options.LanesPerRequest); i++)
            {
                _lanes.Add(LaneAsync(source, file, ct));
            }
        }
    }

    private async Task AllLanesAsync()
    {
        while (true)
        {
            Task[] running;
            lock (_lanes)
            {
                running = [.. _lanes];
            }
            await Task.WhenAll(running).ConfigureAwait(false);
            lock (_lanes)
            {
                if (_lanes.Count == running.Length)
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
    private async Task JoinLateSourcesAsync(PartFileWriter file, CancellationToken ct)
    {
        // When each session may be asked (again). A source is not asked again. One that held none of the chunks or did
        // not answer is asked again after ten intervals, not every interval and not never: a peer fetching the same
        // content itself gains chunks, and one answer lost to a timeout must not keep a seeder out of the whole download.
        var nextAsk = new Dictionary<ProtocolSession, long>();
        lock (_gate)
        {
            foreach (var s in _sources)
            {
                nextAsk[s.Session] = long.MaxValue;
            }
        }
        var reask = (long)((_options.JoinInterval * 10).TotalSeconds * _options.Time.TimestampFrequency);
        try
        {
            while (true)
            {
                await Task.Delay(_options.JoinInterval, _options.Time, ct).ConfigureAwait(false);
                if (_picker.IsComplete)
                {
                    return;
                }
                var now = _options.Time.GetTimestamp();
                var open = _service.OpenSessions();
                nextAsk.Keys.Where(p => !open.Contains(p)).ToList().ForEach(p => nextAsk.Remove(p));
                var fresh = open.Where(p => (!nextAsk.TryGetValue(p, out var due) || due <= now) && !Excluded(p.PeerId)).ToList();
                foreach (var p in fresh)
                {
                    nextAsk[p] = now + reask;
                }
                if (fresh.Count == 0)
                {
                    continue;
                }
                foreach (var source in await GatherSourcesAsync(fresh, ct).ConfigureAwait(false))
                {
                    nextAsk[source.Session] = long.MaxValue;
                    source.Picker = _picker.Join(source.Have);
                    lock (_gate)
                    {
                        _sources.Add(source);
                    }
                    _handle.SetPeers(_picker.LivePeers);
                    TransferLog.PeerJoined(_logger, source.Session.PeerId.Text, Id.Text);
                    StartLanes(source, file, _stop!.Token);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
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

    private async Task LaneAsync(Source source, PartFileWriter file, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                // A request slot of the peer first, then a permit of the download-wide reply budget: a permit is held only
                // while a request is out or its reply is being verified and written, never while waiting for the peer's slot.
                await source.Requests.WaitAsync(ct).ConfigureAwait(false);
                var slot = new RequestSlot(source.Requests);
                LaneStep step;
                try
                {
                    await _replyBudget!.WaitAsync(ct).ConfigureAwait(false);
                    try
                    {
                        step = await FetchOneAsync(source, file, slot, ct).ConfigureAwait(false);
                    }
                    finally
                    {
                        _replyBudget.Release();
                    }
                }
                finally
                {
                    slot.Release();
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
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private enum LaneStep
    {
        Fetched,
        Wait,
        Done,
    }

    /// <summary>A lane's hold on one of its peer's request slots, given back once (when the reply is in, or at the latest when the lane's step ends).</summary>
    private sealed class RequestSlot(SemaphoreSlim requests)
    {
        private int _released;

        public void Release()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                requests.Release();
            }
        }
    }

    /// <summary>Fetches, verifies and writes one chunk for <paramref name="source"/>; <paramref name="slot"/> is given back as soon as the reply is in.</summary>
    private async Task<LaneStep> FetchOneAsync(Source source, PartFileWriter file, RequestSlot slot, CancellationToken ct)
    {
        var index = _picker.Next(source.Picker);
        if (index == ChunkPicker.Finished)
        {
            _changed.Release();
            return LaneStep.Done;
        }
        if (index == ChunkPicker.Wait)
        {
            return LaneStep.Wait;
        }
        var succeeded = false;
        // The reply is received into an aligned block when the part file is written directly, and written from there.
        var into = file.RentBuffer() is { } block ? new ChunkDestination(block) : null;
        try
        {
            _handle.CountRequest();
            using var reply = await source.Session.GetChunkAsync(Id, index, into, ct).ConfigureAwait(false);
            // The peer may have the next request while this reply is verified and written.
            slot.Release();
            var leaf = new byte[MerkleTree.HashLength];
            if (reply.Index != index || !ContentVerifier.VerifyChunk(Id, _manifest.Size, _manifest.ChunkSize, index, reply.Data.Span, reply.Proof.Hashes.Span, leaf))
            {
                BadChunk(source, index, reply);
                return LaneStep.Fetched;
            }
            _options.ChunkVerified?.Invoke(index);
            if (!_picker.IsDone(index))
            {
                try
                {
                    file.Write(reply.Data.Span, ChunkLayout.ChunkOffset(_manifest.ChunkSize, index));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // A local disk problem is no peer's fault: stop the whole download (verified chunks are kept).
                    Interlocked.CompareExchange(ref _fatal, new SecureMeshException(SecureMeshErrorKind.Storage,
                        $"writing the quarantine part file failed: {e.Message}", e), null);
                    await _stop!.CancelAsync().ConfigureAwait(false);
                    return LaneStep.Done;
                }
                if (_picker.MarkDone(index))
                {
                    _written(index, leaf, reply.Data.Length);
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
                Drop(source, "too slow (repeated timeouts)");
            }
        }
        catch (PeerRequestException e) when (e.Code == Core.Wire.WireErrorCode.Busy)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), _options.Time, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException)
        {
            // Not found, changed on disk, blocked there, or the session closed: this peer cannot serve it now.
            Drop(source, e.Message);
        }
        finally
        {
            into?.Withdraw();
            _picker.Release(source.Picker, index, succeeded);
            _changed.Release();
        }
        return LaneStep.Fetched;
    }

    private void Drop(Source source, string reason)
    {
        if (!_picker.Drop(source.Picker))
        {
            return;
        }
        _handle.SetPeers(_picker.LivePeers);
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
        _picker.Drop(source.Picker);
    }
}
