using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SecureMesh.Core;
using SecureMesh.Core.Backup;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Network;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Backup;

/// <summary>How a <see cref="BackupService"/> runs.</summary>
public sealed class BackupOptions
{
    /// <summary>The clock.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Where it logs.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>Proof challenges made per blob while the owner still has it (one is used per proof round).</summary>
    public int ChallengesPerBlob { get; init; } = 8;
}

/// <summary>What one backup round did for one holder.</summary>
public sealed record HolderOutcome(PeerId Holder, int Uploaded, int Deleted, string? Error);

/// <summary>
/// Backup to trusted peers. As a holder: serves <c>/securemesh/backup/1.0.0</c> to owners it made an offer to
/// (<see cref="BackupHolder"/>). As an owner: scans the backed-up paths, seals new and changed files into padded,
/// encrypted chunks (kept in an owner-only outbox until every holder has them), records versions under each path's keep
/// policy, uploads what each holder lacks (resuming from the holder's own list), deletes what no version needs, and
/// writes the sealed catalog and trust-store export; challenges holders for proofs of storage and re-uploads what a
/// holder lost. One round at a time.
/// </summary>
public sealed class BackupService : IAsyncDisposable
{
    /// <summary>The outbox folder inside the data directory (sealed blobs not yet at every holder).</summary>
    public const string OutboxFolder = "backup-outbox";

    private const string SequenceKey = "catalog-seq";
    private const string TrustBlobKey = "trust-blob";
    private const string TrustHashKey = "trust-hash";

    private readonly NodeIdentity _identity;
    private readonly SecureMeshDatabase _db;
    private readonly BackupOptions _options;
    private readonly BackupKeys _keys;
    private readonly ILogger _logger;
    private readonly string _outbox;
    private readonly SemaphoreSlim _round = new(1, 1);
    private MeshNode? _node;

    /// <summary>A service for <paramref name="identity"/> with data directory <paramref name="home"/>.</summary>
    public BackupService(NodeIdentity identity, SecureMeshDatabase db, string home, BackupOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(db);
        _identity = identity;
        _db = db;
        _options = options ?? new BackupOptions();
        _keys = BackupKeys.Derive(identity);
        _logger = _options.LoggerFactory.CreateLogger("SecureMesh.Backup");
        _outbox = Path.Combine(home, OutboxFolder);
        Holder = new BackupHolder(db, new HeldBlobStore(home), _options.Time, _logger);
    }

    internal BackupHolder Holder { get; }

    /// <summary>The protocol this node serves as a holder.</summary>
    public IReadOnlyList<StreamProtocol> StreamProtocols => [new(BackupWire.ProtocolId, Holder.ServeAsync, 4)];

    /// <summary>The protocol policy: backup only for trusted peers with an offer, the rest per <paramref name="inner"/>.</summary>
    public IProtocolPolicy Policy(IProtocolPolicy? inner = null) => new BackupPolicy(Holder, inner);

    /// <summary>Gives the service the node to reach holders through (once it has started).</summary>
    public void Attach(MeshNode node) => _node = node;

    /// <summary>Withdraws the offer made to <paramref name="owner"/> and deletes what was held for it (audited).</summary>
    public bool Revoke(PeerId owner) => Holder.Revoke(owner);

    // ---- a round: scan, seal, upload ----

    /// <summary>
    /// One backup round: scans every backed-up path (or just <paramref name="onlyPath"/>), seals what changed, prunes
    /// versions, brings every holder up to date and gives it the new catalog. Returns what happened per holder.
    /// </summary>
    public async Task<IReadOnlyList<HolderOutcome>> RunAsync(string? onlyPath, CancellationToken cancellationToken)
    {
        await _round.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var sets = _db.Backup.ListSets();
            foreach (var set in sets.Where(s => onlyPath is null || string.Equals(s.Path, onlyPath, StringComparison.Ordinal)))
            {
                Scan(set, cancellationToken);
                Prune(set);
            }
            UpdateTrustExport();
            var obsolete = CollectGarbage();
            var outcomes = new List<HolderOutcome>();
            foreach (var holder in sets.SelectMany(s => s.Holders).Distinct())
            {
                var outcome = await SyncHolderAsync(holder, obsolete, cancellationToken).ConfigureAwait(false);
                _db.Backup.SetUploadError(holder, outcome.Error);
                outcomes.Add(outcome);
            }
            CleanOutbox();
            return outcomes;
        }
        finally
        {
            _round.Release();
        }
    }

    private void Scan(BackupSetRecord set, CancellationToken cancellationToken)
    {
        var latest = _db.Backup.ListVersions(set.Path).GroupBy(v => v.RelPath, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.MaxBy(v => v.Time)!, StringComparer.Ordinal);
        var scan = ShareTree.Scan(set.Path, includeHidden: true, cancellationToken);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int changed = 0, sealedBlobs = 0;
        foreach (var (path, identity) in scan.Files)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var rel = string.Equals(path, set.Path, StringComparison.Ordinal) ? "" : Path.GetRelativePath(set.Path, path).Replace('\\', '/');
            seen.Add(rel);
            if (latest.TryGetValue(rel, out var last) && !last.Deleted && last.Size == identity.Size && last.MtimeNs == identity.MtimeNs)
            {
                continue;
            }
            try
            {
                var (version, blobs) = SealFile(set.Path, path, rel, VersionTime(last), cancellationToken);
                _db.Backup.AddVersion(version, blobs);
                changed++;
                sealedBlobs += blobs.Count;
            }
            catch (Exception e) when (e is SecureMeshException or IOException or UnauthorizedAccessException)
            {
                BackupLog.FileSkipped(_logger, path, e.Message);
            }
        }
        foreach (var (rel, last) in latest)
        {
            if (!last.Deleted && !seen.Contains(rel) && !scan.Skipped.Any(s => string.Equals(s.Path, Path.Combine(set.Path, rel), StringComparison.Ordinal)))
            {
                _db.Backup.AddVersion(last with { Time = VersionTime(last), Deleted = true, Blobs = [] }, []);
                changed++;
            }
        }
        BackupLog.Scanned(_logger, set.Path, changed, sealedBlobs);
    }

    /// <summary>Now, to the millisecond, and always after the file's last version.</summary>
    private DateTimeOffset VersionTime(BackupVersionRecord? last)
    {
        var now = DateTimeOffset.FromUnixTimeMilliseconds(_options.Time.GetUtcNow().ToUnixTimeMilliseconds());
        return last is not null && now <= last.Time ? last.Time.AddMilliseconds(1) : now;
    }

    private (BackupVersionRecord Version, List<(string, long, byte[])> Blobs) SealFile(string root, string path, string rel, DateTimeOffset time,
        CancellationToken cancellationToken)
    {
        using var handle = ShareFileSystem.OpenShared(root, path, out var identity);
        var tree = FileIndexer.Index(handle, ChunkLayout.DefaultChunkSize, null, 1, cancellationToken);
        if (tree.FileSize != identity.Size)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, "changed while it was read; it is tried again next round");
        }
        EnsureOutbox();
        var blobs = new List<(string, long, byte[])>();
        var buffer = new byte[ChunkPadding.ChunkSize];
        var count = ChunkPadding.ChunkCount(identity.Size);
        for (long i = 0; i < count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var length = ChunkPadding.ChunkLength(identity.Size, i);
            var chunk = buffer.AsSpan(0, length);
            if (RandomAccess.Read(handle, chunk, i * ChunkPadding.ChunkSize) != length)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Storage, "shrank while it was read; it is tried again next round");
            }
            var blob = ChunkPadding.SealChunk(_keys, chunk);
            var id = BlobId.Of(blob).ToString();
            WriteOutbox(id, blob);
            blobs.Add((id, blob.Length, MakeChallenges(blob)));
        }
        CryptographicOperations.ZeroMemory(buffer);
        var version = new BackupVersionRecord(root, rel, time, identity.Size, identity.MtimeNs, tree.ContentId.Text, false, [.. blobs.Select(b => b.Item1)]);
        return (version, blobs);
    }

    private byte[] MakeChallenges(ReadOnlySpan<byte> blob)
    {
        var list = new List<ProofChallenge>(_options.ChallengesPerBlob);
        for (var i = 0; i < _options.ChallengesPerBlob; i++)
        {
            list.Add(ProofChallenge.Create(blob));
        }
        return ProofChallenge.Pack(list);
    }

    private void Prune(BackupSetRecord set)
    {
        var now = _options.Time.GetUtcNow();
        foreach (var file in _db.Backup.ListVersions(set.Path).GroupBy(v => v.RelPath, StringComparer.Ordinal))
        {
            foreach (var time in BackupKeepPolicy.ToDrop(set.Keep, [.. file.Select(v => v.Time)], now))
            {
                _db.Backup.DropVersion(set.Path, file.Key, time);
            }
        }
    }

    /// <summary>Drops the oldest version that is not a file's newest, in the sets stored at <paramref name="holder"/>; false when none is left.</summary>
    private bool DropOldestVersion(PeerId holder)
    {
        var candidates = _db.Backup.ListSets().Where(s => s.Holders.Contains(holder))
            .SelectMany(s => _db.Backup.ListVersions(s.Path).GroupBy(v => v.RelPath, StringComparer.Ordinal)
                .SelectMany(g => g.OrderByDescending(v => v.Time).Skip(1)))
            .OrderBy(v => v.Time).FirstOrDefault();
        if (candidates is null)
        {
            return false;
        }
        _db.Backup.DropVersion(candidates.SetPath, candidates.RelPath, candidates.Time);
        _db.Audit.Append("backup.version-dropped", holder, $"path={candidates.SetPath}/{candidates.RelPath} time={candidates.Time:O} (quota full)");
        return true;
    }

    private void UpdateTrustExport()
    {
        var export = BuildTrustExport(_db);
        var hash = export.PlaintextHash();
        var current = _db.Backup.GetState(TrustBlobKey);
        if (current is not null && string.Equals(_db.Backup.GetState(TrustHashKey), hash, StringComparison.Ordinal) && _db.Backup.ListBlobs().ContainsKey(current))
        {
            return;
        }
        var blob = export.Seal(_keys);
        var id = BlobId.Of(blob).ToString();
        EnsureOutbox();
        WriteOutbox(id, blob);
        _db.Backup.AddBlob(id, blob.Length, MakeChallenges(blob));
        _db.Backup.SetState(TrustBlobKey, id);
        _db.Backup.SetState(TrustHashKey, hash);
    }

    /// <summary>Peers (trusted and blocked, with the addresses the user gave), groups and settings; never the audit log.</summary>
    internal static TrustExport BuildTrustExport(SecureMeshDatabase db)
    {
        var export = new TrustExport();
        foreach (var peer in db.Trust.ListPeers())
        {
            if (peer.State is PeerState.Trusted or PeerState.Blocked)
            {
                export.Peers.Add(new TrustExportPeer
                {
                    PeerId = peer.PeerId.Text,
                    Name = peer.Name,
                    State = peer.State == PeerState.Trusted ? "trusted" : "blocked",
                    Reason = peer.BlockReason,
                    Addresses = [.. peer.Addresses.Where(a => a.Source == AddressSource.User).Select(a => a.Address)],
                });
            }
        }
        foreach (var group in db.Groups.List())
        {
            export.Groups.Add(new TrustExportGroup { Name = group.Name, Members = [.. group.Members.Select(m => m.Text)] });
        }
        foreach (var (key, value) in db.Config.List())
        {
            export.Settings[key] = value;
        }
        return export;
    }

    /// <summary>Blobs no version (and not the trust export) needs any more: forgotten here, to be deleted at the holders.</summary>
    private HashSet<string> CollectGarbage()
    {
        var needed = NeededBlobs(null);
        var obsolete = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in _db.Backup.ListBlobs().Keys.Where(id => !needed.Contains(id)))
        {
            obsolete.Add(id);
            _db.Backup.DeleteBlob(id);
            File.Delete(Path.Combine(_outbox, id));
        }
        return obsolete;
    }

    /// <summary>The blobs <paramref name="holder"/> must have (every blob when null): its sets' versions' chunks and the trust export.</summary>
    private HashSet<string> NeededBlobs(PeerId? holder)
    {
        var needed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var set in _db.Backup.ListSets().Where(s => holder is null || s.Holders.Contains(holder)))
        {
            foreach (var version in _db.Backup.ListVersions(set.Path))
            {
                needed.UnionWith(version.Blobs);
            }
        }
        if (_db.Backup.GetState(TrustBlobKey) is { } trust)
        {
            needed.Add(trust);
        }
        return needed;
    }

    private async Task<HolderOutcome> SyncHolderAsync(PeerId holder, HashSet<string> obsolete, CancellationToken cancellationToken)
    {
        int uploaded = 0, deleted = 0;
        try
        {
            await using var connection = await ConnectAsync(holder, cancellationToken).ConfigureAwait(false);
            // The holder's own list is the truth: what it lost is uploaded again, what it has is not sent twice.
            var held = await connection.ListAsync(cancellationToken).ConfigureAwait(false);
            var placed = _db.Backup.ListPlaced(holder);
            var blobs = _db.Backup.ListBlobs();
            foreach (var id in placed.Where(id => !held.ContainsKey(id)))
            {
                _db.Backup.SetPlaced(id, holder, false);
            }
            foreach (var (id, size) in held)
            {
                if (blobs.ContainsKey(id) && !placed.Contains(id))
                {
                    _db.Backup.SetPlaced(id, holder, true);
                }
            }
            foreach (var id in obsolete.Where(held.ContainsKey))
            {
                await connection.DeleteAsync(BlobId.Parse(id), cancellationToken).ConfigureAwait(false);
                deleted++;
            }
            while (true)
            {
                var missing = NeededBlobs(holder).Where(id => !held.ContainsKey(id)).Order(StringComparer.Ordinal).ToList();
                var (sent, quotaFull) = await UploadAsync(connection, holder, missing, held, cancellationToken).ConfigureAwait(false);
                uploaded += sent;
                if (!quotaFull)
                {
                    break;
                }
                // Over the quota: the oldest versions go first, never a file's newest.
                if (!DropOldestVersion(holder))
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"{holder}'s quota is full even with only the newest versions");
                }
                foreach (var id in CollectGarbage().Where(held.ContainsKey))
                {
                    await connection.DeleteAsync(BlobId.Parse(id), cancellationToken).ConfigureAwait(false);
                    held.Remove(id);
                    deleted++;
                }
            }
            var unavailable = NeededBlobs(holder).Count(id => !held.ContainsKey(id));
            if (unavailable > 0)
            {
                throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{unavailable} blob(s) for {holder} are in no outbox and at no other holder");
            }
            var sequence = NextSequence();
            var catalog = BuildCatalog(sequence);
            await connection.PutRootAsync(catalog.Seal(_keys), cancellationToken).ConfigureAwait(false);
            _db.Backup.SetHolderRoot(holder, sequence);
            if (uploaded > 0)
            {
                _db.Audit.Append("backup.upload", holder, $"blobs={uploaded.ToString(CultureInfo.InvariantCulture)} deleted={deleted.ToString(CultureInfo.InvariantCulture)} catalog={sequence.ToString(CultureInfo.InvariantCulture)}");
            }
            return new HolderOutcome(holder, uploaded, deleted, null);
        }
        catch (Exception e) when (e is SecureMeshException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            BackupLog.HolderFailed(_logger, holder.Text, e.Message);
            return new HolderOutcome(holder, uploaded, deleted, e.Message);
        }
    }

    /// <summary>Streams used at once to upload to one holder: the holder's disk flushes overlap.</summary>
    private const int UploadStreams = 3;

    /// <summary>
    /// Uploads <paramref name="missing"/> over <see cref="UploadStreams"/> streams; records what arrived (in
    /// <paramref name="held"/> and, in one transaction, in the database). Stops early when the holder's quota is full.
    /// </summary>
    private async Task<(int Sent, bool QuotaFull)> UploadAsync(BackupConnection first, PeerId holder, List<string> missing, Dictionary<string, long> held,
        CancellationToken cancellationToken)
    {
        var queue = new System.Collections.Concurrent.ConcurrentQueue<string>(missing);
        var arrived = new System.Collections.Concurrent.ConcurrentQueue<(string Id, long Size)>();
        var quotaFull = 0;
        var extra = new List<BackupConnection>();
        try
        {
            for (var i = 1; i < UploadStreams && missing.Count > i; i++)
            {
                extra.Add(await ConnectAsync(holder, cancellationToken).ConfigureAwait(false));
            }
            async Task WorkAsync(BackupConnection connection)
            {
                while (Volatile.Read(ref quotaFull) == 0 && queue.TryDequeue(out var id))
                {
                    var blob = await SourceAsync(id, holder, cancellationToken).ConfigureAwait(false);
                    if (blob is null)
                    {
                        continue;
                    }
                    try
                    {
                        await connection.PutAsync(BlobId.Parse(id), blob, cancellationToken).ConfigureAwait(false);
                    }
                    catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.Conflict)
                    {
                        Volatile.Write(ref quotaFull, 1);
                        return;
                    }
                    arrived.Enqueue((id, blob.Length));
                }
            }
            await Task.WhenAll([WorkAsync(first), .. extra.Select(WorkAsync)]).ConfigureAwait(false);
        }
        finally
        {
            foreach (var connection in extra)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
            foreach (var (id, size) in arrived)
            {
                held[id] = size;
            }
            _db.Backup.SetPlaced(arrived.Select(a => a.Id), holder);
        }
        return (arrived.Count, quotaFull != 0);
    }

    /// <summary>A sealed blob to upload: from the outbox, else from another holder that has it (checked against its ID).</summary>
    private async Task<byte[]?> SourceAsync(string id, PeerId target, CancellationToken cancellationToken)
    {
        var path = Path.Combine(_outbox, id);
        if (File.Exists(path))
        {
            var data = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
            if (BlobId.Parse(id).Matches(data))
            {
                return data;
            }
        }
        foreach (var other in _db.Backup.ListSets().SelectMany(s => s.Holders).Distinct().Where(h => !h.Equals(target)))
        {
            if (!_db.Backup.ListPlaced(other).Contains(id))
            {
                continue;
            }
            try
            {
                await using var connection = await ConnectAsync(other, cancellationToken).ConfigureAwait(false);
                return await connection.GetAsync(BlobId.Parse(id), cancellationToken).ConfigureAwait(false);
            }
            catch (SecureMeshException e)
            {
                BackupLog.HolderFailed(_logger, other.Text, e.Message);
            }
        }
        return null;
    }

    private long NextSequence()
    {
        var sequence = long.TryParse(_db.Backup.GetState(SequenceKey), NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s + 1 : 1;
        _db.Backup.SetState(SequenceKey, sequence.ToString(CultureInfo.InvariantCulture));
        return sequence;
    }

    internal BackupCatalog BuildCatalog(long sequence)
    {
        var catalog = new BackupCatalog { Sequence = sequence, Written = _options.Time.GetUtcNow(), TrustBlob = _db.Backup.GetState(TrustBlobKey) };
        foreach (var set in _db.Backup.ListSets())
        {
            catalog.Sets.Add(new CatalogSet { Path = set.Path, Keep = set.Keep, Copies = set.Copies, Holders = [.. set.Holders.Select(h => h.Text)] });
            foreach (var file in _db.Backup.ListVersions(set.Path).GroupBy(v => v.RelPath, StringComparer.Ordinal))
            {
                catalog.Files.Add(new CatalogFile
                {
                    Set = set.Path,
                    Path = file.Key,
                    Versions = [.. file.OrderBy(v => v.Time).Select(v => new CatalogVersion
                    {
                        Time = v.Time, Size = v.Size, MtimeNs = v.MtimeNs, ContentId = v.ContentId, Deleted = v.Deleted, Blobs = [.. v.Blobs],
                    })],
                });
            }
        }
        return catalog;
    }

    /// <summary>Deletes outbox files every holder that needs them has.</summary>
    private void CleanOutbox()
    {
        if (!Directory.Exists(_outbox))
        {
            return;
        }
        var holders = _db.Backup.ListSets().SelectMany(s => s.Holders).Distinct().ToList();
        var needs = holders.ToDictionary(h => h, NeededBlobs);
        var placed = holders.ToDictionary(h => h, h => _db.Backup.ListPlaced(h));
        foreach (var path in Directory.EnumerateFiles(_outbox))
        {
            var id = Path.GetFileName(path);
            if (holders.All(h => !needs[h].Contains(id) || placed[h].Contains(id)))
            {
                File.Delete(path);
            }
        }
    }

    private void EnsureOutbox() => BackupFiles.EnsureFolder(_outbox);

    private void WriteOutbox(string id, byte[] blob) => BackupFiles.WriteAtomic(Path.Combine(_outbox, id), blob);

    internal async Task<BackupConnection> ConnectAsync(PeerId holder, CancellationToken cancellationToken)
    {
        var node = _node ?? throw new InvalidOperationException("the backup service has no node");
        var session = node.GetSession(holder);
        if (session is null)
        {
            var peer = _db.Trust.GetPeer(holder);
            if (peer?.State != PeerState.Trusted)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"holder {holder} is not a trusted peer");
            }
            var failures = new List<string>();
            foreach (var address in peer.Addresses.Select(a => a.Address))
            {
                try
                {
                    session = await node.ConnectAsync(holder, address, cancellationToken).ConfigureAwait(false);
                    break;
                }
                catch (SecureMeshException e)
                {
                    failures.Add(e.Message);
                }
            }
            if (session is null)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Network,
                    failures.Count == 0 ? $"no address known for holder {holder}" : $"cannot reach holder {holder}: {string.Join("; ", failures)}");
            }
        }
        return await BackupConnection.OpenAsync(session, cancellationToken).ConfigureAwait(false);
    }

    // ---- proofs ----

    /// <summary>
    /// One proof round: every holder is challenged for every blob it is recorded to have, each with a challenge not used
    /// before (when a blob's challenges are used up, the blob is fetched, checked against its ID, and new ones are made).
    /// A wrong or missing answer is audited and shown as failing, and the lost blobs are uploaded again at once.
    /// </summary>
    public async Task<IReadOnlyList<HolderOutcome>> ProveAsync(CancellationToken cancellationToken)
    {
        var outcomes = new List<HolderOutcome>();
        var anyLost = false;
        await _round.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var holder in _db.Backup.ListSets().SelectMany(s => s.Holders).Distinct())
            {
                var (failure, lost) = await ProveHolderAsync(holder, cancellationToken).ConfigureAwait(false);
                _db.Backup.RecordProof(holder, failure);
                if (failure is not null)
                {
                    BackupLog.ProofFailed(_logger, holder.Text, failure);
                }
                anyLost |= lost > 0;
                outcomes.Add(new HolderOutcome(holder, 0, 0, failure));
            }
            _db.Backup.SetState(LastCheckKey, _options.Time.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        }
        finally
        {
            _round.Release();
        }
        if (anyLost)
        {
            await RunAsync(null, cancellationToken).ConfigureAwait(false);
        }
        return outcomes;
    }

    private async Task<(string? Failure, int Lost)> ProveHolderAsync(PeerId holder, CancellationToken cancellationToken)
    {
        BackupConnection connection;
        try
        {
            connection = await ConnectAsync(holder, cancellationToken).ConfigureAwait(false);
        }
        catch (SecureMeshException e)
        {
            return ($"no answer: {e.Message}", 0);
        }
        await using (connection.ConfigureAwait(false))
        {
            var placed = _db.Backup.ListPlaced(holder).Order(StringComparer.Ordinal).ToList();
            var lost = new List<string>();
            try
            {
                foreach (var id in placed)
                {
                    var blobId = BlobId.Parse(id);
                    var challenges = ProofChallenge.Unpack(_db.Backup.GetChallenges(id));
                    bool ok;
                    if (challenges.Count == 0)
                    {
                        try
                        {
                            var blob = await connection.GetAsync(blobId, cancellationToken).ConfigureAwait(false);
                            _db.Backup.SetChallenges(id, MakeChallenges(blob));
                            ok = true;
                        }
                        catch (SecureMeshException e) when (e.Kind is SecureMeshErrorKind.NotFound or SecureMeshErrorKind.Protocol)
                        {
                            ok = false;
                        }
                    }
                    else
                    {
                        var challenge = challenges[0];
                        _db.Backup.SetChallenges(id, ProofChallenge.Pack(challenges.Skip(1).ToList()));
                        try
                        {
                            ok = challenge.Check(await connection.ProveAsync(blobId, challenge, cancellationToken).ConfigureAwait(false));
                        }
                        catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.NotFound)
                        {
                            ok = false;
                        }
                    }
                    if (!ok)
                    {
                        lost.Add(id);
                        _db.Backup.SetPlaced(id, holder, false);
                        // The holder's copy is bad: it is deleted there so the next upload replaces it (a holder that
                        // ignores the delete fails the next proof again).
                        await connection.DeleteAsync(blobId, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            catch (SecureMeshException e)
            {
                return ($"no answer after {placed.Count - lost.Count} proof(s): {e.Message}", lost.Count);
            }
            return lost.Count == 0
                ? (null, 0)
                : ($"{lost.Count} of {placed.Count} blob(s) failed their proof (first {lost[0]}); uploading them again", lost.Count);
        }
    }

    /// <summary>Runs rounds in the background (a serving node): a backup round when the paths change and every <paramref name="scanInterval"/>, a proof round every <c>backup-check-interval</c>.</summary>
    public async Task RunBackgroundAsync(TimeSpan scanInterval, CancellationToken cancellationToken)
    {
        var lastSets = "";
        var lastRun = DateTimeOffset.MinValue;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var sets = string.Join(';', _db.Backup.ListSets().Select(s => $"{s.Path}|{string.Join(',', s.Holders)}|{s.Copies}|{s.Keep}"));
                var now = _options.Time.GetUtcNow();
                if (sets.Length > 0 && (!string.Equals(sets, lastSets, StringComparison.Ordinal) || now - lastRun >= scanInterval
                    || (now - lastRun >= TimeSpan.FromMinutes(1) && AnyMissing())))
                {
                    lastSets = sets;
                    lastRun = now;
                    await RunAsync(null, cancellationToken).ConfigureAwait(false);
                }
                var last = long.TryParse(_db.Backup.GetState(LastCheckKey), NumberStyles.None, CultureInfo.InvariantCulture, out var ms) ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : (DateTimeOffset?)null;
                var requested = long.TryParse(_db.Backup.GetState(CheckRequestedKey), NumberStyles.None, CultureInfo.InvariantCulture, out var r) ? r : 0;
                if (sets.Length > 0 && requested > (last?.ToUnixTimeMilliseconds() ?? 0))
                {
                    // `backup check` asked the running node for a round now.
                    await ProveAsync(cancellationToken).ConfigureAwait(false);
                }
                else if (sets.Length > 0 && (last is null || now - last >= CheckInterval(_db)))
                {
                    if (last is null)
                    {
                        // The first round waits one interval: fresh uploads need no proof.
                        _db.Backup.SetState(LastCheckKey, now.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        await ProveAsync(cancellationToken).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception e) when (e is SecureMeshException or IOException or UnauthorizedAccessException)
            {
                BackupLog.RoundFailed(_logger, e.Message);
            }
            await Task.Delay(TimeSpan.FromSeconds(5), _options.Time, cancellationToken).ConfigureAwait(false);
        }
    }

    private bool AnyMissing() => _db.Backup.ListSets().SelectMany(s => s.Holders).Distinct()
        .Any(h => NeededBlobs(h).Except(_db.Backup.ListPlaced(h)).Any());

    /// <summary>The backup-state key a <c>backup check</c> sets (ms since the epoch) to ask a running node for a proof round now.</summary>
    public const string CheckRequestedKey = "check-requested";

    /// <summary>The backup-state key holding when the last proof round ended (ms since the epoch).</summary>
    public const string LastCheckKey = "last-check";

    /// <summary>The config key of the proof interval.</summary>
    public const string CheckIntervalKey = "backup-check-interval";

    /// <summary>The proof interval: <c>backup-check-interval</c> in seconds, default a day.</summary>
    public static TimeSpan CheckInterval(SecureMeshDatabase db)
    {
        ArgumentNullException.ThrowIfNull(db);
        return db.Config.Get(CheckIntervalKey) is { } text && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds > 0
            ? TimeSpan.FromSeconds(seconds)
            : TimeSpan.FromDays(1);
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        _keys.Dispose();
        _round.Dispose();
        return ValueTask.CompletedTask;
    }

    internal string Outbox => _outbox;

    /// <summary>
    /// After a restore in place: the restored catalog becomes this node's backup state (paths, versions, blobs, the
    /// trust export, the sequence), so the next round carries on where the lost node stopped instead of starting over.
    /// Blobs get their challenges when next proved (fetched and checked against their IDs).
    /// </summary>
    internal void AdoptCatalog(BackupCatalog catalog, IReadOnlyDictionary<string, long> knownSizes)
    {
        long SizeOf(string id) => knownSizes.TryGetValue(id, out var size) ? size : ChunkPadding.MaxSealedChunk;
        foreach (var set in catalog.Sets)
        {
            var holders = set.Holders.Select(h => PeerId.TryParse(h, out var p, out _) ? p : null).OfType<PeerId>().ToList();
            if (holders.Count == 0 || !Path.IsPathFullyQualified(set.Path))
            {
                continue;
            }
            _db.Backup.AddSet(set.Path, holders, Math.Clamp(set.Copies, 1, holders.Count), BackupKeepPolicy.Parse(set.Keep));
        }
        foreach (var file in catalog.Files)
        {
            foreach (var v in file.Versions)
            {
                var blobs = v.Blobs.Where(b => BlobId.TryParse(b, out _)).ToList();
                _db.Backup.AddVersion(new BackupVersionRecord(file.Set, file.Path, v.Time, v.Size, v.MtimeNs, v.ContentId, v.Deleted, blobs),
                    [.. blobs.Select(b => (b, SizeOf(b), Array.Empty<byte>()))]);
            }
        }
        if (catalog.TrustBlob is { } trust && BlobId.TryParse(trust, out _))
        {
            _db.Backup.AddBlob(trust, SizeOf(trust), []);
            _db.Backup.SetState(TrustBlobKey, trust);
        }
        _db.Backup.SetState(SequenceKey, catalog.Sequence.ToString(CultureInfo.InvariantCulture));
    }

    internal BackupKeys Keys => _keys;

}
