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
public sealed record ShareResult(int Files, int Indexed, int Unchanged, int Removed, long BytesHashed, IReadOnlyList<string> Failed);

/// <summary>A catalog file ready to serve: its tree (rebuilt from the stored leaves) and signed manifest.</summary>
internal sealed record SharedContent(string Path, long Size, long MtimeNs, MerkleTree Tree, byte[] Manifest);

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

    /// <summary>Shares a file or folder (recursively) and indexes what is new or changed under it.</summary>
    public async Task<ShareResult> AddAsync(string path, Action<IndexProgress>? progress, CancellationToken cancellationToken)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full) && !Directory.Exists(full))
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no such file or folder: {full}");
        }
        _db.Catalog.AddShare(full);
        return await IndexShareAsync(full, progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops sharing <paramref name="path"/> and drops its catalog entries; false when it was not shared.</summary>
    public bool Remove(string path) => _db.Catalog.RemoveShare(Path.GetFullPath(path));

    /// <summary>Re-indexes every shared path (only what changed).</summary>
    public async Task<ShareResult> RescanAsync(Action<IndexProgress>? progress, CancellationToken cancellationToken)
    {
        var total = new ShareResult(0, 0, 0, 0, 0, []);
        foreach (var share in _db.Catalog.ListShares())
        {
            var r = await IndexShareAsync(share.Path, progress, cancellationToken).ConfigureAwait(false);
            total = new ShareResult(total.Files + r.Files, total.Indexed + r.Indexed, total.Unchanged + r.Unchanged,
                total.Removed + r.Removed, total.BytesHashed + r.BytesHashed, [.. total.Failed, .. r.Failed]);
        }
        return total;
    }

    /// <summary>What is being indexed right now (for status displays), or null.</summary>
    public IndexProgress? CurrentIndexing => _current;

    /// <summary>Catalog entries whose names contain every term.</summary>
    public IReadOnlyList<CatalogEntry> Search(string terms, int limit) => _db.Catalog.Search(terms, limit);

    private async Task<ShareResult> IndexShareAsync(string root, Action<IndexProgress>? progress, CancellationToken cancellationToken)
    {
        await _indexGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var files = Enumerate(root);
            var chunkSize = ChunkSize();
            var known = _db.Catalog.List().Where(e => string.Equals(e.ShareRoot, root, StringComparison.Ordinal)).ToDictionary(e => e.Path, StringComparer.Ordinal);
            var todo = new List<(string Path, long Size, long Mtime)>();
            var unchanged = 0;
            foreach (var file in files)
            {
                var (size, mtime) = Stat(file);
                if (known.TryGetValue(file, out var entry) && entry.Size == size && entry.MtimeNs == mtime && entry.ChunkSize == chunkSize)
                {
                    unchanged++;
                    continue;
                }
                todo.Add((file, size, mtime));
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
            return new ShareResult(files.Count, indexed, unchanged, removed, done, failed);
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
            var (size, mtime) = Stat(file);
            var tree = await FileIndexer.IndexAsync(file, chunkSize, progress, cancellationToken).ConfigureAwait(false);
            var (size2, mtime2) = Stat(file);
            if (size2 != size || mtime2 != mtime || tree.FileSize != size)
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
            _db.Catalog.Upsert(new CatalogEntry(file, root, name, size, mtime, tree.ContentId.Text, chunkSize, _time.GetUtcNow(),
                tree.LeafHashes, manifest.Encode()));
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

    private static List<string> Enumerate(string root)
    {
        if (File.Exists(root))
        {
            return [root];
        }
        if (!Directory.Exists(root))
        {
            return [];
        }
        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            IgnoreInaccessible = true,
            // Symbolic links could lead out of the shared folder.
            AttributesToSkip = FileAttributes.ReparsePoint | FileAttributes.Device,
        };
        var list = Directory.EnumerateFiles(root, "*", options).ToList();
        list.Sort(StringComparer.Ordinal);
        return list;
    }

    /// <summary>Size and modification time (ns since the Unix epoch) of <paramref name="path"/>, as stored in the catalog.</summary>
    internal static (long Size, long MtimeNs) Stat(string path)
    {
        try
        {
            var info = new FileInfo(path);
            return (info.Length, (info.LastWriteTimeUtc.Ticks - DateTime.UnixEpoch.Ticks) * 100);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot read {path}: {e.Message}", e);
        }
    }

    /// <summary>The content to serve for <paramref name="id"/>, or null when nothing in the catalog holds it.</summary>
    internal SharedContent? Find(ContentId id)
    {
        RefreshIfChanged();
        return _cache.GetOrAdd(id.Text, Load);
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
                return new SharedContent(entry.Path, entry.Size, entry.MtimeNs, tree, entry.Manifest.ToArray());
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
        }
    }

    private void Invalidate()
    {
        _cache.Clear();
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
                        if (File.Exists(content.Path))
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
