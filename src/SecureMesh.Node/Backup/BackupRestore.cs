using System.Globalization;
using SecureMesh.Core;
using SecureMesh.Core.Backup;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Backup;

/// <summary>A holder to restore from and where to reach it.</summary>
public sealed record RestoreSource(PeerId Holder, string Address);

/// <summary>What a restore did.</summary>
public sealed record RestoreResult(long CatalogSequence, int Files, long Bytes, int AlreadyThere, int PeersRestored, IReadOnlyList<string> Problems);

/// <summary>
/// Restore from the identity key alone: the given holders are trusted (they hold this identity's backup; the holder
/// recognises the owner by its Peer ID), the newest catalog among them is fetched and decrypted, the trust store
/// (peers, groups, settings) is restored, then every file of the chosen version: each chunk is fetched from the holders in
/// turn (one after another from each, falling back to the others), checked against its blob ID and decrypted, the
/// file assembled in a temporary file beside its target, checked against its original content ID, and only then renamed
/// into place. A file already there with the right content is kept (a restore resumes); any other existing file is never
/// overwritten. Nothing that did not verify is written under a target name.
/// </summary>
public static class BackupRestore
{
    /// <summary>Runs a restore through <paramref name="host"/>; progress lines go to <paramref name="progress"/>.</summary>
    public static async Task<RestoreResult> RestoreAsync(MeshHost host, IReadOnlyList<RestoreSource> sources, string? to, DateTimeOffset? version,
        Action<string> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(progress);
        if (sources.Count == 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "restore needs at least one holder (--from)");
        }
        var db = host.Db;
        var keys = host.Backup.Keys;
        var connections = new List<BackupConnection>();
        var problems = new List<string>();
        try
        {
            foreach (var source in sources)
            {
                TrustHolder(db, source);
                try
                {
                    var session = await host.Node.ConnectAsync(source.Holder, source.Address, cancellationToken).ConfigureAwait(false);
                    connections.Add(await BackupConnection.OpenAsync(session, cancellationToken).ConfigureAwait(false));
                }
                catch (SecureMeshException e)
                {
                    problems.Add($"{source.Holder}: {e.Message}");
                    progress($"holder {source.Holder} unavailable: {e.Message}");
                }
            }
            if (connections.Count == 0)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Network, $"no holder could be reached: {string.Join("; ", problems)}");
            }
            var (catalog, from) = await NewestCatalogAsync(keys, connections, problems, cancellationToken).ConfigureAwait(false);
            progress($"catalog {catalog.Sequence} of {catalog.Written:u} from {from}: {catalog.Files.Count} file(s)");
            var fetcher = new Fetcher(connections);
            var peers = 0;
            if (catalog.TrustBlob is { } trustBlob && BlobId.TryParse(trustBlob, out var trustId))
            {
                var export = TrustExport.Open(keys, await fetcher.FetchAsync(trustId.Value, 0, cancellationToken).ConfigureAwait(false));
                peers = ImportTrust(db, host.Node.PeerId, export, problems);
                progress($"trust store restored: {peers} peer(s), {export.Groups.Count} group(s), {export.Settings.Count} setting(s)");
            }
            int files = 0, there = 0;
            long bytes = 0;
            var chosen = Choose(catalog, version);
            var index = 0;
            foreach (var (file, chosenVersion) in chosen)
            {
                index++;
                string target;
                try
                {
                    target = TargetPath(file, to);
                }
                catch (SecureMeshException e)
                {
                    problems.Add(e.Message);
                    continue;
                }
                try
                {
                    if (await RestoreFileAsync(keys, fetcher, chosenVersion, target, cancellationToken).ConfigureAwait(false))
                    {
                        files++;
                        bytes += chosenVersion.Size;
                        progress($"[{index}/{chosen.Count}] {target} ({chosenVersion.Size.ToString(CultureInfo.InvariantCulture)} bytes)");
                    }
                    else
                    {
                        there++;
                        progress($"[{index}/{chosen.Count}] {target} already restored");
                    }
                }
                catch (Exception e) when (e is SecureMeshException or IOException or UnauthorizedAccessException)
                {
                    problems.Add($"{target}: {e.Message}");
                    progress($"[{index}/{chosen.Count}] {target} NOT restored: {e.Message}");
                }
            }
            if (to is null)
            {
                host.Backup.AdoptCatalog(catalog, fetcher.KnownSizes);
            }
            db.Audit.Append("backup.restore", sources[0].Holder,
                $"catalog={catalog.Sequence.ToString(CultureInfo.InvariantCulture)} files={files.ToString(CultureInfo.InvariantCulture)} kept={there.ToString(CultureInfo.InvariantCulture)} problems={problems.Count.ToString(CultureInfo.InvariantCulture)}");
            return new RestoreResult(catalog.Sequence, files, bytes, there, peers, problems);
        }
        finally
        {
            foreach (var connection in connections)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>The holder is trusted for this purpose (the user named it), with the address given.</summary>
    private static void TrustHolder(SecureMeshDatabase db, RestoreSource source)
    {
        var known = db.Trust.GetPeer(source.Holder);
        if (known is null)
        {
            db.Trust.AddPeer(source.Holder, null, [source.Address], trusted: true);
            return;
        }
        if (known.State != PeerState.Trusted)
        {
            db.Trust.Trust(source.Holder);
        }
        db.Trust.AddAddress(source.Holder, source.Address);
    }

    private static async Task<(BackupCatalog Catalog, PeerId From)> NewestCatalogAsync(BackupKeys keys, List<BackupConnection> connections, List<string> problems,
        CancellationToken cancellationToken)
    {
        BackupCatalog? best = null;
        PeerId? from = null;
        foreach (var connection in connections)
        {
            try
            {
                var root = await connection.GetRootAsync(cancellationToken).ConfigureAwait(false);
                if (root is null)
                {
                    problems.Add($"{connection.Holder} holds no catalog for this identity");
                    continue;
                }
                var catalog = BackupCatalog.Open(keys, root);
                if (best is null || catalog.Sequence > best.Sequence)
                {
                    best = catalog;
                    from = connection.Holder;
                }
            }
            catch (SecureMeshException e)
            {
                problems.Add($"{connection.Holder}: {e.Message}");
            }
        }
        return best is null
            ? throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no holder gave a catalog this key opens: {string.Join("; ", problems)}")
            : (best, from!);
    }

    /// <summary>Adds the exported peers, groups and settings that are not here yet; returns how many peers were added.</summary>
    internal static int ImportTrust(SecureMeshDatabase db, PeerId self, TrustExport export, List<string> problems)
    {
        var added = 0;
        foreach (var peer in export.Peers)
        {
            try
            {
                if (!PeerId.TryParse(peer.PeerId, out var id, out _) || id.Equals(self))
                {
                    continue;
                }
                var known = db.Trust.GetPeer(id);
                if (peer.State == "blocked")
                {
                    db.Trust.Block(id, peer.Reason);
                    continue;
                }
                if (known is null)
                {
                    db.Trust.AddPeer(id, peer.Name, peer.Addresses, trusted: true);
                    added++;
                }
                else if (known.Name is null && peer.Name is not null)
                {
                    db.Trust.Rename(id, peer.Name);
                }
            }
            catch (SecureMeshException e)
            {
                problems.Add($"peer {UntrustedText.Clean(peer.PeerId, 60)}: {e.Message}");
            }
        }
        foreach (var group in export.Groups)
        {
            try
            {
                if (db.Groups.Get(group.Name) is null)
                {
                    db.Groups.Create(group.Name);
                }
                var members = group.Members.Select(m => PeerId.TryParse(m, out var p, out _) ? p : null).OfType<PeerId>().Where(p => db.Trust.GetPeer(p) is not null).ToList();
                if (members.Count > 0)
                {
                    db.Groups.AddMembers(group.Name, members);
                }
            }
            catch (SecureMeshException e)
            {
                problems.Add($"group {UntrustedText.Clean(group.Name, 64)}: {e.Message}");
            }
        }
        foreach (var (key, value) in export.Settings)
        {
            try
            {
                if (db.Config.Get(key) is null)
                {
                    db.Config.Set(key, value);
                }
            }
            catch (SecureMeshException e)
            {
                problems.Add($"setting {UntrustedText.Clean(key, 64)}: {e.Message}");
            }
        }
        return added;
    }

    /// <summary>For each file, the newest version at or before <paramref name="version"/> (the newest when null) that is not a deletion.</summary>
    internal static List<(CatalogFile File, CatalogVersion Version)> Choose(BackupCatalog catalog, DateTimeOffset? version)
    {
        var chosen = new List<(CatalogFile, CatalogVersion)>();
        foreach (var file in catalog.Files)
        {
            var pick = file.Versions.Where(v => version is null || v.Time <= version.Value).MaxBy(v => v.Time);
            if (pick is not null && !pick.Deleted)
            {
                chosen.Add((file, pick));
            }
        }
        return chosen;
    }

    /// <summary>Where a file goes: its original path, or under <paramref name="to"/> in a folder named as the backed-up one.</summary>
    internal static string TargetPath(CatalogFile file, string? to)
    {
        if (!Path.IsPathFullyQualified(file.Set) || file.Set.Contains('\0', StringComparison.Ordinal))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the catalog names a backed-up path that is not absolute");
        }
        var segments = file.Path.Length == 0 ? [] : file.Path.Split('/');
        if (segments.Any(s => s.Length == 0 || s is "." or ".." || s.Contains('\0', StringComparison.Ordinal) || s.Contains('\\', StringComparison.Ordinal)))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"the catalog names a file outside its folder: {UntrustedText.Clean(file.Path, 200)}");
        }
        var baseDir = to is null ? file.Set : Path.Combine(Path.GetFullPath(to), Path.GetFileName(file.Set.TrimEnd('/')));
        return segments.Length == 0 ? baseDir : Path.Combine([baseDir, .. segments]);
    }

    /// <summary>Restores one file; false when the target already holds exactly this content.</summary>
    private static async Task<bool> RestoreFileAsync(BackupKeys keys, Fetcher fetcher, CatalogVersion version, string target, CancellationToken cancellationToken)
    {
        var expected = ContentId.Parse(version.ContentId);
        if (File.Exists(target))
        {
            var existing = await FileIndexer.IndexAsync(target, ChunkLayout.DefaultChunkSize, null, cancellationToken).ConfigureAwait(false);
            return existing.ContentId == expected
                ? false
                : throw new SecureMeshException(SecureMeshErrorKind.Conflict, "a different file is already there; it is not overwritten");
        }
        var count = ChunkPadding.ChunkCount(version.Size);
        if (version.Blobs.Count != count)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"the catalog lists {version.Blobs.Count} chunks for a file of {count}");
        }
        var folder = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".securemesh-restore-{Guid.NewGuid():N}");
        try
        {
            await using (var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                var plain = new byte[ChunkPadding.ChunkSize];
                var window = Math.Max(2, fetcher.Count * 2);
                for (long start = 0; start < count; start += window)
                {
                    var batch = Enumerable.Range(0, (int)Math.Min(window, count - start))
                        .Select(k => fetcher.FetchAsync(BlobId.Parse(version.Blobs[(int)(start + k)]), (int)((start + k) % fetcher.Count), cancellationToken)).ToList();
                    for (var k = 0; k < batch.Count; k++)
                    {
                        var blob = await batch[k].ConfigureAwait(false);
                        var length = ChunkPadding.ChunkLength(version.Size, start + k);
                        if (!ChunkPadding.TryOpenChunk(keys, blob, length, plain))
                        {
                            throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"chunk {start + k} did not decrypt");
                        }
                        await output.WriteAsync(plain.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
                    }
                }
                output.Flush(flushToDisk: true);
            }
            var tree = await FileIndexer.IndexAsync(temp, ChunkLayout.DefaultChunkSize, null, cancellationToken).ConfigureAwait(false);
            if (tree.ContentId != expected)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the assembled file does not match its content ID");
            }
            File.SetLastWriteTimeUtc(temp, DateTime.UnixEpoch.AddTicks(version.MtimeNs / 100));
            File.Move(temp, target, overwrite: false);
            return true;
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Fetches blobs from the holders: first from the preferred one, then the others; each checked against its ID.</summary>
    private sealed class Fetcher(List<BackupConnection> connections)
    {
        public int Count => connections.Count;

        public Dictionary<string, long> KnownSizes { get; } = new(StringComparer.Ordinal);

        public async Task<byte[]> FetchAsync(BlobId id, int preferred, CancellationToken cancellationToken)
        {
            var failures = new List<string>();
            for (var i = 0; i < connections.Count; i++)
            {
                var connection = connections[(preferred + i) % connections.Count];
                try
                {
                    var blob = await connection.GetAsync(id, cancellationToken).ConfigureAwait(false);
                    lock (KnownSizes)
                    {
                        KnownSizes[id.ToString()] = blob.Length;
                    }
                    return blob;
                }
                catch (SecureMeshException e)
                {
                    failures.Add($"{connection.Holder}: {e.Message}");
                }
            }
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"blob {id} from no holder: {string.Join("; ", failures)}");
        }
    }
}
