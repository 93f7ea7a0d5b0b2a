using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Content;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// One swarm download, in three parts: a verified manifest from any peer (<see cref="ManifestResolver"/>), then the
/// request pipelines of every peer holding chunks (<see cref="DownloadLanes"/>) fetching what the
/// <see cref="ChunkPicker"/> hands them (rarest first, duplicated to a second peer in the endgame), then the check
/// before release. This class keeps the rest: quarantine and the download record (resume), disk space, durability.
/// Only verified chunks are written to the quarantine part file; they are fsynced before being recorded as verified in
/// the database, so a resume never trusts bytes that were not on disk.
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
    private readonly List<long> _unflushed = [];
    private ChunkPicker? _picker;
    // Leaf hashes of the chunks this download verified and wrote itself, for the check before release.
    private KnownLeaves _written = null!;
    private Manifest _manifest = null!;
    private volatile bool _blocked;

    public SwarmDownload(TransferService service, DownloadHandle handle, TransferOptions options, ILogger logger)
    {
        _service = service;
        _handle = handle;
        _options = options;
        _logger = logger;
    }

    private ContentId Id => _handle.ContentId;

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
            if ((_picker?.DoneCount ?? 0) == 0)
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
            if (peers.Count == 0)
            {
                // Failing now would also mark an interrupted download failed, so that it never resumes by itself.
                await _service.WaitForPeersAsync(1, _options.PeerWait, ct).ConfigureAwait(false);
                peers = _service.OpenSessions();
            }
            var resolved = await new ManifestResolver(Id, (peer, detail) => _service.AuditSafe("manifest.rejected", peer, detail))
                .ResolveAsync(peers, ct).ConfigureAwait(false);
            var manifests = resolved.Offered.Select(o => o.Manifest).ToList();
            _manifest = resolved.Manifest;
            _handle.Name = _manifest.Name;
            EnsureDiskSpace();
            var item = _service.Quarantine.BeginDownload(Id.Text, _manifest.Name, _manifest.Size, _manifest.Publisher, peers.Select(p => p.PeerId));
            quarantineId = item.Id;
            db.Downloads.Begin(Id.Text, _manifest.Name, _manifest.Size, _manifest.ChunkSize, _manifest.Encode(), item.Id, _handle.OutDir);

            var count = _manifest.ChunkCount;
            var picker = new ChunkPicker(count, db.Downloads.VerifiedChunks(Id.Text));
            _picker = picker;
            _written = new KnownLeaves(count);
            long resumedBytes = 0;
            for (long index = 0; index < count; index++)
            {
                resumedBytes += picker.IsDone(index) ? ChunkLayout.ChunkLength(_manifest.Size, _manifest.ChunkSize, index) : 0;
            }
            _handle.ResumedChunks = picker.DoneCount;
            _handle.SetTotal(_manifest.Size, resumedBytes);

            using (var part = _service.Quarantine.OpenPart(item.Id))
            {
                if (part.Length != _manifest.Size)
                {
                    part.SetLength(_manifest.Size);
                }
                if (!picker.IsComplete)
                {
                    _handle.State = DownloadState.Downloading;
                    var lanes = new DownloadLanes(_service, _handle, _manifest, picker, resolved.Refuted, _options, _logger, Written);
                    var sources = await lanes.GatherSourcesAsync(peers, ct).ConfigureAwait(false);
                    if (sources.Count == 0)
                    {
                        return new DownloadResult(DownloadState.Failed, $"no connected peer has {Id}", null, item.Id);
                    }
                    using var lanesStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    using var flushStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                    var flusher = FlushLoopAsync(part, lanesStop, flushStop.Token);
                    using (var writer = PartFileWriter.Open(part.SafeFileHandle, _manifest.ChunkSize, _options.DirectWrites))
                    {
                        _options.PartFileOpened?.Invoke(writer);
                        await lanes.RunAsync(sources, writer, lanesStop.Token).ConfigureAwait(false);
                    }
                    _handle.MarkTransferDone();
                    await flushStop.CancelAsync().ConfigureAwait(false);
                    await flusher.ConfigureAwait(false);
                    if (lanes.Fatal is { } fatal)
                    {
                        Flush(part);
                        throw fatal;
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
                    var done = picker.DoneCount;
                    if (done != count)
                    {
                        return new DownloadResult(DownloadState.Failed,
                            $"{count - done} of {count} chunks missing: no remaining peer could serve them " +
                            (done == 0 ? "(none verified, so nothing is kept)" : "(verified chunks are kept; run get again to resume)"),
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

    /// <summary>A chunk the lanes verified and wrote: kept for the check before release and queued to be recorded once durable.</summary>
    private void Written(long index, byte[] leaf, int length)
    {
        lock (_gate)
        {
            _written.Add(index, leaf);
            _unflushed.Add(index);
        }
        _handle.AddBytes(length);
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
