using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Transfer;

/// <summary>Indexing progress: the file being hashed and the bytes done out of all bytes that need hashing.</summary>
public readonly record struct IndexProgress(string File, long BytesDone, long BytesTotal);

/// <summary>What a share or rescan did.</summary>
/// <param name="Files">Files found under the shared paths.</param>
/// <param name="Indexed">Files (re-)hashed because they were new or changed.</param>
/// <param name="Unchanged">Files skipped because size and modification time matched the catalog.</param>
/// <param name="Removed">Catalog entries dropped because their file is gone.</param>
/// <param name="BytesHashed">Bytes hashed.</param>
/// <param name="Failed">Files that could not be indexed, with the reason.</param>
/// <param name="Skipped">Entries left out: links, special files, hidden entries, what <c>.smignore</c> excludes (<c>share list --skipped</c> names them).</param>
public sealed record ShareResult(int Files, int Indexed, int Unchanged, int Removed, long BytesHashed, IReadOnlyList<string> Failed, int Skipped = 0);

/// <summary>
/// A catalog file ready to serve: where it is (under which shared root), which file it was (device, inode, size,
/// mtime), its tree (rebuilt from the stored leaves) and signed manifest.
/// </summary>
internal sealed record SharedContent(string Root, string Path, long Device, long Inode, long Size, long MtimeNs, MerkleTree Tree, byte[] Manifest, long CtimeNs = 0)
{
    /// <summary>True when the opened handle's <paramref name="identity"/> is the very file that was indexed, unchanged.</summary>
    public bool IsSameFile(FileIdentity identity) =>
        identity.Kind == FileKind.Regular && identity.Size == Size && identity.MtimeNs == MtimeNs
        && (!ShareFileSystem.IsNative || (identity.Device == Device && identity.Inode == Inode));

    /// <summary>
    /// True when <paramref name="identity"/> proves the file has not changed at all since it was hashed: the same file,
    /// size and mtime, and the same ctime, recorded at indexing only once settled (<see cref="ShareFileSystem.CtimeSettled"/>).
    /// No user can set a ctime back, so a write, truncation, rename, link or attribute change since then shows here;
    /// a chunk read while this holds before and after the read need not be hashed again.
    /// </summary>
    public bool IsUnchangedSinceIndexed(FileIdentity identity) =>
        ShareFileSystem.IsNative && CtimeNs != 0 && identity.CtimeNs == CtimeNs && IsSameFile(identity);
}

/// <summary>
/// The shared folders and the catalog: indexes what changed (size or modification time), signs a manifest per file
/// (publisher = this node), and finds content to serve. A file found changed while serving is re-indexed in the
/// background and never served as its old content.
/// </summary>
public sealed class ShareService : IAsyncDisposable
{
    private readonly SecureMeshDatabase _db;
    private readonly NodeIdentity _identity;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, SharedContent?> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, SharedContent[]> _everyCopy = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _reindexQueued = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _indexGate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _background = [];
    private long _stamp = -1;
    private IndexProgress? _current;
    private long _stampCheckedAt;

    /// <summary>A share service over <paramref name="db"/> signing manifests with <paramref name="identity"/>.</summary>
    public ShareService(SecureMeshDatabase db, NodeIdentity identity, TimeProvider? time = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(identity);
        _db = db;
        _identity = identity;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    }

    /// <summary>The chunk size for newly indexed files (the <c>chunk-size</c> setting).</summary>
    public int ChunkSize()
    {
        // Checked again at use (a value stored by another version may no longer fit the message cap).
        return NodeSettings.ChunkSizeOrDefault(_db.Config.Get(NodeSettings.ChunkSize));
    }

    /// <summary>Shares a file or folder (recursively) and indexes what is new or changed under it; hidden entries are left out.</summary>
    public Task<ShareResult> AddAsync(string path, Action<IndexProgress>? progress, CancellationToken cancellationToken) =>
        AddAsync(path, audience: null, includeHidden: false, progress, cancellationToken);

    /// <summary>As <see cref="AddAsync(string, ShareAudience?, bool, Action{IndexProgress}?, CancellationToken)"/>, keeping the audience.</summary>
    public Task<ShareResult> AddAsync(string path, bool includeHidden, Action<IndexProgress>? progress, CancellationToken cancellationToken) =>
        AddAsync(path, audience: null, includeHidden, progress, cancellationToken);

    /// <summary>As <see cref="AddAsync(string, ShareAudience?, bool, Action{IndexProgress}?, CancellationToken)"/>, hidden entries left out.</summary>
    public Task<ShareResult> AddAsync(string path, ShareAudience? audience, Action<IndexProgress>? progress, CancellationToken cancellationToken) =>
        AddAsync(path, audience, includeHidden: false, progress, cancellationToken);

    /// <summary>
    /// Shares a file or folder (recursively) with <paramref name="audience"/> and indexes what is new or changed under
    /// it. The path is resolved once, here (a symbolic link given by the user names its target); nothing below it is
    /// ever followed. Hidden entries (names starting with '.') are shared only when <paramref name="includeHidden"/>;
    /// the choice is kept. A null audience gives a new share every trusted peer and leaves an existing one's as it is;
    /// the audience is stored before anything under the path is indexed, so no file of it is ever offered to more
    /// peers than asked, and a bad audience (unknown group or peer) shares nothing.
    /// </summary>
    public async Task<ShareResult> AddAsync(string path, ShareAudience? audience, bool includeHidden, Action<IndexProgress>? progress, CancellationToken cancellationToken)
    {
        var full = ShareFileSystem.Resolve(path);
        var kind = ShareFileSystem.Lstat(full)?.Kind;
        if (kind is null)
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no such file or folder: {full}");
        }
        if (kind is not (FileKind.Regular or FileKind.Directory))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"{full} is {new FileIdentity(kind.Value, 0, 0, 0, 0).Describe()}; only regular files and folders can be shared");
        }
        if (audience is not null)
        {
            _db.Groups.CheckAudience(audience);
        }
        var added = _db.Catalog.AddShare(full, includeHidden);
        if (audience is not null)
        {
            try
            {
                _db.Groups.SetAudience(full, audience);
            }
            catch (SecureMeshException)
            {
                // A group or peer went away meanwhile: take the new share back rather than leave it open to everyone.
                if (added)
                {
                    _db.Catalog.RemoveShare(full);
                }
                throw;
            }
        }
        return await IndexShareAsync(full, includeHidden, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops sharing <paramref name="path"/> and drops its catalog entries; false when it was not shared.</summary>
    public bool Remove(string path) =>
        _db.Catalog.RemoveShare(Path.GetFullPath(path)) || _db.Catalog.RemoveShare(ShareFileSystem.Resolve(path));

    /// <summary>Re-indexes every shared path (only what changed).</summary>
    public async Task<ShareResult> RescanAsync(Action<IndexProgress>? progress, CancellationToken cancellationToken)
    {
        var total = new ShareResult(0, 0, 0, 0, 0, []);
        foreach (var share in _db.Catalog.ListShares())
        {
            var r = await IndexShareAsync(share.Path, share.IncludeHidden, progress, cancellationToken).ConfigureAwait(false);
            total = new ShareResult(total.Files + r.Files, total.Indexed + r.Indexed, total.Unchanged + r.Unchanged,
                total.Removed + r.Removed, total.BytesHashed + r.BytesHashed, [.. total.Failed, .. r.Failed], total.Skipped + r.Skipped);
        }
        return total;
    }

    /// <summary>What is being indexed right now (for status displays), or null.</summary>
    public IndexProgress? CurrentIndexing => _current;

    /// <summary>Catalog entries whose names contain every term.</summary>
    public IReadOnlyList<CatalogEntry> Search(string terms, int limit) => _db.Catalog.Search(terms, limit);

    private async Task<ShareResult> IndexShareAsync(string root, bool includeHidden, Action<IndexProgress>? progress, CancellationToken cancellationToken)
    {
        await _indexGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var scan = await Task.Run(() => ShareTree.Scan(root, includeHidden, cancellationToken), cancellationToken).ConfigureAwait(false);
            _db.Catalog.ReplaceSkipped(root, scan.Skipped);
            foreach (var skipped in scan.Skipped)
            {
                TransferLog.Skipped(_logger, skipped.Path, skipped.Reason);
            }
            var files = scan.Files.Select(f => f.Path).ToList();
            var chunkSize = ChunkSize();
            var known = _db.Catalog.List().Where(e => string.Equals(e.ShareRoot, root, StringComparison.Ordinal)).ToDictionary(e => e.Path, StringComparer.Ordinal);
            var todo = new List<(string Path, long Size, long Mtime)>();
            var unchanged = 0;
            foreach (var (file, id) in scan.Files)
            {
                if (known.TryGetValue(file, out var entry) && entry.Size == id.Size && entry.MtimeNs == id.MtimeNs && entry.ChunkSize == chunkSize)
                {
                    // A recorded ctime that moved (a write with the mtime put back, a chmod): hashed again.
                    if (entry.Device == id.Device && entry.Inode == id.Inode && (entry.CtimeNs == 0 || entry.CtimeNs == id.CtimeNs))
                    {
                        unchanged++;
                        continue;
                    }
                    // An entry from before device and inode were kept: the walk has just lstat'ed a regular file there
                    // with the same size and time, so it is recorded as that file instead of hashing it all again
                    // (every served chunk is still checked against its leaf hash).
                    if (entry.Device == 0 && entry.Inode == 0 && _db.Catalog.SetFileIdentity(file, id.Device, id.Inode))
                    {
                        unchanged++;
                        continue;
                    }
                }
                todo.Add((file, id.Size, id.MtimeNs));
            }
            var removed = 0;
            var present = new HashSet<string>(files, StringComparer.Ordinal);
            foreach (var gone in known.Keys.Where(k => !present.Contains(k)))
            {
                removed += _db.Catalog.Remove(gone) ? 1 : 0;
            }
            var totalBytes = todo.Sum(t => t.Size);
            long done = 0;
            var failed = new List<string>();
            var indexed = 0;
            foreach (var (file, _, _) in todo)
            {
                var before = done;
                try
                {
                    var size = await IndexFileAsync(root, file, chunkSize, b =>
                    {
                        var p = new IndexProgress(file, before + b, totalBytes);
                        _current = p;
                        progress?.Invoke(p);
                    }, cancellationToken).ConfigureAwait(false);
                    done += size;
                    indexed++;
                }
                catch (SecureMeshException e)
                {
                    failed.Add($"{file}: {e.Message}");
                    TransferLog.IndexFailed(_logger, file, e.Message);
                }
            }
            Invalidate();
            return new ShareResult(files.Count, indexed, unchanged, removed, done, failed, scan.Skipped.Count);
        }
        finally
        {
            _current = null;
            _indexGate.Release();
        }
    }

    private async Task<long> IndexFileAsync(string root, string file, int chunkSize, Action<long>? progress, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            // Opened without following any link below the shared root, never blocking, and only as a regular file;
            // the handle is what gets hashed and what its device, inode, size and time are read from.
            var (tree, before, now, after) = await Task.Run(() =>
            {
                using var handle = ShareFileSystem.OpenShared(root, file, out var opened);
                // Read after the ctime and before the first byte hashed: see CtimeSettled.
                var started = ShareFileSystem.CoarseNowNs();
                var hashed = FileIndexer.Index(handle, chunkSize, progress, 0, cancellationToken);
                return (hashed, opened, started, ShareFileSystem.Fstat(handle));
            }, cancellationToken).ConfigureAwait(false);
            var size = before.Size;
            var mtime = before.MtimeNs;
            if (after.Size != size || after.MtimeNs != mtime || tree.FileSize != size)
            {
                // Written to while hashed: the hashes may describe no version of the file.
                if (attempt < 2)
                {
                    continue;
                }
                throw new SecureMeshException(SecureMeshErrorKind.Storage, "the file keeps changing while it is indexed");
            }
            var name = ManifestName(Path.GetFileName(file));
            var manifest = Manifest.Create(_identity, tree, name, _time.GetUtcNow());
            // The ctime is kept (serving may then skip re-hashing while it holds) only when no change can have kept it:
            // unchanged over the hashing and, when hashing began, older than the file system's timestamp granularity.
            var ctime = after.CtimeNs == before.CtimeNs && ShareFileSystem.CtimeSettled(before.CtimeNs, now) ? before.CtimeNs : 0;
            _db.Catalog.Upsert(new CatalogEntry(file, root, name, size, mtime, tree.ContentId.Text, chunkSize, _time.GetUtcNow(),
                tree.LeafHashes, manifest.Encode(), before.Device, before.Inode, ctime));
            TransferLog.Indexed(_logger, file, tree.ContentId.Text);
            return size;
        }
    }

    /// <summary>The manifest name: the file name cut to the manifest's 255-byte cap on a character boundary.</summary>
    internal static string ManifestName(string name)
    {
        if (name.Length == 0)
        {
            return "file";
        }
        while (Encoding.UTF8.GetByteCount(name) > Manifest.MaxNameBytes)
        {
            name = name[..^(char.IsLowSurrogate(name[^1]) ? 2 : 1)];
        }
        return name;
    }

    /// <summary>The content to serve for <paramref name="id"/>, or null when nothing in the catalog holds it.</summary>
    internal SharedContent? Find(ContentId id)
    {
        RefreshIfChanged();
        return _cache.GetOrAdd(id.Text, Load);
    }

    /// <summary>
    /// The content to serve for <paramref name="id"/> from a path <paramref name="visible"/> accepts (a peer must get
    /// the manifest, and so the name, of a copy in a share it may see), or null.
    /// </summary>
    internal SharedContent? Find(ContentId id, Func<string, bool> visible)
    {
        var first = Find(id);
        if (first is null || visible(first.Path))
        {
            return first;
        }
        // Rare: the same bytes in several shares, and the first copy in one this peer may not see.
        foreach (var copy in _everyCopy.GetOrAdd(id.Text, LoadEveryCopy))
        {
            if (visible(copy.Path))
            {
                return copy;
            }
        }
        return null;
    }

    /// <summary>Catalog entries whose names contain every term, from paths <paramref name="visible"/> accepts, one per content ID.</summary>
    internal IReadOnlyList<CatalogEntry> Search(string terms, int limit, Func<string, bool> visible) =>
        _db.Catalog.SearchWhere(terms, limit, e => visible(e.Path));

    private SharedContent[] LoadEveryCopy(string contentId)
    {
        var copies = new List<SharedContent>();
        MerkleTree? tree = null;
        foreach (var entry in _db.Catalog.FindByContentId(contentId))
        {
            if (entry.Leaves.Length == 0 || entry.Manifest.Length == 0)
            {
                continue;
            }
            try
            {
                // Same ID, size and chunk size: the same leaves, so the same tree.
                if (tree is null || tree.FileSize != entry.Size || tree.ChunkSize != entry.ChunkSize)
                {
                    tree = MerkleTree.Build(entry.Leaves.Span, entry.Size, entry.ChunkSize);
                }
                if (tree.ContentId.Text == contentId)
                {
                    copies.Add(new SharedContent(entry.ShareRoot, entry.Path, entry.Device, entry.Inode, entry.Size, entry.MtimeNs, tree, entry.Manifest.ToArray(), entry.CtimeNs));
                }
            }
            catch (SecureMeshException)
            {
                // A damaged row is simply not served.
            }
        }
        return [.. copies];
    }

    private SharedContent? Load(string contentId)
    {
        foreach (var entry in _db.Catalog.FindByContentId(contentId))
        {
            if (entry.Leaves.Length == 0 || entry.Manifest.Length == 0)
            {
                continue;
            }
            try
            {
                var tree = MerkleTree.Build(entry.Leaves.Span, entry.Size, entry.ChunkSize);
                if (tree.ContentId.Text != contentId)
                {
                    continue;
                }
                return new SharedContent(entry.ShareRoot, entry.Path, entry.Device, entry.Inode, entry.Size, entry.MtimeNs, tree, entry.Manifest.ToArray(), entry.CtimeNs);
            }
            catch (SecureMeshException)
            {
                // A damaged row is simply not served.
            }
        }
        return null;
    }

    private void RefreshIfChanged()
    {
        var now = _time.GetTimestamp();
        if (_stamp != -1 && _time.GetElapsedTime(Interlocked.Read(ref _stampCheckedAt), now) < TimeSpan.FromMilliseconds(250))
        {
            return;
        }
        Interlocked.Exchange(ref _stampCheckedAt, now);
        var stamp = _db.ChangeStamp();
        if (Interlocked.Exchange(ref _stamp, stamp) != stamp)
        {
            _cache.Clear();
            _everyCopy.Clear();
        }
    }

    private void Invalidate()
    {
        _cache.Clear();
        _everyCopy.Clear();
        Interlocked.Exchange(ref _stamp, -1);
    }

    /// <summary>Re-indexes <paramref name="path"/> in the background (once, however often it is asked meanwhile).</summary>
    internal void ScheduleReindex(SharedContent content)
    {
        // Whatever happens next, the old tree must not be served again for this path.
        Invalidate();
        if (!_reindexQueued.TryAdd(content.Path, 0))
        {
            return;
        }
        TransferLog.Changed(_logger, content.Path);
        lock (_background)
        {
            _background.RemoveAll(t => t.IsCompleted);
            _background.Add(Task.Run(async () =>
            {
                try
                {
                    var entry = _db.Catalog.Get(content.Path);
                    if (entry is null)
                    {
                        return;
                    }
                    await _indexGate.WaitAsync(_stopping.Token).ConfigureAwait(false);
                    try
                    {
                        if (ShareFileSystem.Lstat(content.Path) is { Kind: FileKind.Regular })
                        {
                            await IndexFileAsync(entry.ShareRoot, content.Path, ChunkSize(), null, _stopping.Token).ConfigureAwait(false);
                        }
                        else
                        {
                            _db.Catalog.Remove(content.Path);
                        }
                    }
                    finally
                    {
                        _indexGate.Release();
                    }
                }
                catch (Exception e) when (e is SecureMeshException or OperationCanceledException or IOException)
                {
                    TransferLog.IndexFailed(_logger, content.Path, e.Message);
                    // Not servable as indexed: drop it until a rescan succeeds.
                    try
                    {
                        _db.Catalog.Remove(content.Path);
                    }
                    catch (SecureMeshException)
                    {
                    }
                    catch (ObjectDisposedException)
                    {
                    }
                }
                finally
                {
                    _reindexQueued.TryRemove(content.Path, out _);
                    Invalidate();
                }
            }));
        }
    }

    /// <summary>Waits for background re-indexing (tests).</summary>
    internal async Task WhenIdleAsync()
    {
        Task[] pending;
        lock (_background)
        {
            pending = [.. _background];
        }
        await Task.WhenAll(pending).ConfigureAwait(false);
    }

    /// <summary>Stops background re-indexing.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await WhenIdleAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stopping.Dispose();
    }
}
