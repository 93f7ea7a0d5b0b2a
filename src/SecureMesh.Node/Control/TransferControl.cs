using System.Collections.Concurrent;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Node.Quarantine;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Control;

/// <summary>A shared root with what is indexed under it.</summary>
public sealed record ShareInfo(string Path, int Files, long Bytes, bool Indexing, long IndexedBytes, long TotalBytes, string Audience = "all");

/// <summary>The outcome of sharing a path.</summary>
public sealed record ShareAddInfo(string Path, int Files, int Indexed, int Unchanged, int Removed, long BytesHashed, IReadOnlyList<string> Failed, int Skipped = 0);

/// <summary>A search result merged by content ID.</summary>
public sealed record SearchHitInfo(string ContentId, string Name, long Size, IReadOnlyList<string> Peers);

/// <summary>A download: progress while it runs, the quarantine outcome once it ends.</summary>
public sealed record DownloadInfo(
    string ContentId,
    string? Name,
    string State,
    long BytesDone,
    long BytesTotal,
    double BytesPerSecond,
    int Peers,
    long ChunkRequests,
    long ResumedChunks,
    bool Finished,
    string? Reason,
    string? Path,
    long? QuarantineId);

/// <summary>An item in quarantine.</summary>
public sealed record QuarantineInfo(
    long Id,
    string ContentId,
    string Name,
    string State,
    string? Reason,
    long Size,
    string? Publisher,
    IReadOnlyList<string> Sources,
    bool Verified,
    string? Path,
    string? ReleasedPath,
    DateTimeOffset Created,
    DateTimeOffset Updated);

/// <summary>Body of <c>POST /v1/shares</c>.</summary>
public sealed record ShareRequest(string Path, string? With = null, bool IncludeHidden = false);

/// <summary>Body of <c>POST /v1/downloads</c>.</summary>
public sealed record DownloadRequest(string ContentId, string? OutDir);

/// <summary>Body of <c>POST /v1/quarantine/{id}/release</c>.</summary>
public sealed record ReleaseRequest(string? To);

/// <summary>Sharing, search, downloads and quarantine: the same operations in-process and over the control socket.</summary>
public interface ITransferControl
{
    Task<IReadOnlyList<ShareInfo>> ListSharesAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Shares <paramref name="path"/> with <paramref name="with"/> (null: a new share is seen by every trusted peer, an
    /// existing one keeps its audience); hidden entries only when <paramref name="includeHidden"/>.
    /// </summary>
    Task<ShareAddInfo> AddShareAsync(string path, string? with, bool includeHidden, CancellationToken cancellationToken);

    Task RemoveShareAsync(string path, CancellationToken cancellationToken);

    Task<IReadOnlyList<SearchHitInfo>> SearchAsync(string terms, CancellationToken cancellationToken);

    Task<DownloadInfo> StartDownloadAsync(string contentId, string? outDir, CancellationToken cancellationToken);

    Task<IReadOnlyList<DownloadInfo>> ListDownloadsAsync(CancellationToken cancellationToken);

    Task<DownloadInfo> GetDownloadAsync(string contentId, CancellationToken cancellationToken);

    Task CancelDownloadAsync(string contentId, CancellationToken cancellationToken);

    Task<IReadOnlyList<QuarantineInfo>> ListQuarantineAsync(CancellationToken cancellationToken);

    Task<QuarantineInfo> ReleaseQuarantineAsync(long id, string? toDirectory, CancellationToken cancellationToken);

    Task DeleteQuarantineAsync(long id, CancellationToken cancellationToken);
}

/// <summary>The running node's transfer engine behind <see cref="ITransferControl"/>; also fills <c>transfers</c> in the status.</summary>
internal sealed class TransferControlService : ITransferControl, ITransferStatusSource
{
    private readonly TransferService _transfer;
    private readonly ConcurrentDictionary<string, DownloadHandle> _started = new(StringComparer.Ordinal);

    public TransferControlService(TransferService transfer) => _transfer = transfer;

    private SecureMeshDatabase Db => _transfer.Database;

    private QuarantineManager Quarantine => _transfer.Quarantine;

    public Task<IReadOnlyList<ShareInfo>> ListSharesAsync(CancellationToken cancellationToken)
    {
        var files = Db.Catalog.List();
        var current = _transfer.Shares.CurrentIndexing;
        var audiences = Db.Groups.ListAudiences();
        IReadOnlyList<ShareInfo> shares = [.. Db.Catalog.ListShares().Select(root =>
        {
            var under = files.Where(f => string.Equals(f.ShareRoot, root.Path, StringComparison.Ordinal)).ToList();
            var indexing = current is { } c && c.File.StartsWith(root.Path, StringComparison.Ordinal);
            return new ShareInfo(root.Path, under.Count, under.Sum(f => f.Size), indexing,
                indexing ? current!.Value.BytesDone : 0, indexing ? current!.Value.BytesTotal : 0,
                audiences.TryGetValue(root.Path, out var audience) ? audience.ToString() : "nobody");
        })];
        return Task.FromResult(shares);
    }

    public async Task<ShareAddInfo> AddShareAsync(string path, string? with, bool includeHidden, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "a path to share is needed");
        }
        var full = ShareFileSystem.Resolve(path);
        if (ShareFileSystem.Lstat(full) is null)
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{full} does not exist");
        }
        var audience = with is null ? null : ShareAudience.Parse(with);
        var result = await _transfer.Shares.AddAsync(full, audience, includeHidden, null, cancellationToken);
        _transfer.RefreshAccess();
        return new ShareAddInfo(full, result.Files, result.Indexed, result.Unchanged, result.Removed, result.BytesHashed, result.Failed, result.Skipped);
    }

    public Task RemoveShareAsync(string path, CancellationToken cancellationToken)
    {
        var full = System.IO.Path.GetFullPath(path);
        if (!_transfer.Shares.Remove(full))
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{full} is not shared ('securemesh share list' shows what is)");
        }
        _transfer.RefreshAccess();
        return Task.CompletedTask;
    }

    public async Task<IReadOnlyList<SearchHitInfo>> SearchAsync(string terms, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(terms))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "search terms are needed");
        }
        var hits = await _transfer.SearchAsync(terms, cancellationToken);
        return [.. hits.Select(h => new SearchHitInfo(h.ContentId, h.Name, h.Size, h.Peers))];
    }

    public Task<DownloadInfo> StartDownloadAsync(string contentId, string? outDir, CancellationToken cancellationToken)
    {
        var id = ContentId.Parse(contentId);
        if (Quarantine.IsBlocked(id.Text))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"{id} is blocked; 'securemesh unblock content {id}' first");
        }
        var handle = _transfer.StartDownload(id, outDir is null ? null : System.IO.Path.GetFullPath(outDir));
        _started[id.Text] = handle;
        return Task.FromResult(ToInfo(handle));
    }

    public Task<IReadOnlyList<DownloadInfo>> ListDownloadsAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<DownloadInfo> list = [.. Handles().Select(ToInfo)];
        return Task.FromResult(list);
    }

    public Task<DownloadInfo> GetDownloadAsync(string contentId, CancellationToken cancellationToken) =>
        GetDownloadAsync(contentId, TimeSpan.Zero, cancellationToken);

    /// <summary>The longest a caller of <see cref="GetDownloadAsync(string, TimeSpan, CancellationToken)"/> may wait.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(5);

    /// <summary>The download's state once it has ended or <paramref name="upTo"/> has passed, whichever comes first.</summary>
    public async Task<DownloadInfo> GetDownloadAsync(string contentId, TimeSpan upTo, CancellationToken cancellationToken)
    {
        var id = ContentId.Parse(contentId);
        var handle = Handles().FirstOrDefault(h => h.ContentId.Text == id.Text)
            ?? throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no download of {id} on this node");
        if (upTo > TimeSpan.Zero && !handle.Completion.IsCompleted)
        {
            await Task.WhenAny(handle.Completion, Task.Delay(upTo, cancellationToken)).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
        }
        return ToInfo(handle);
    }

    public Task CancelDownloadAsync(string contentId, CancellationToken cancellationToken)
    {
        var id = ContentId.Parse(contentId);
        if (!_transfer.Cancel(id))
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no download of {id} is running");
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<QuarantineInfo>> ListQuarantineAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<QuarantineInfo> list = [.. Quarantine.List().Select(ToInfo)];
        return Task.FromResult(list);
    }

    public Task<QuarantineInfo> ReleaseQuarantineAsync(long id, string? toDirectory, CancellationToken cancellationToken) =>
        Task.FromResult(ToInfo(Quarantine.Release(id, toDirectory)));

    public Task DeleteQuarantineAsync(long id, CancellationToken cancellationToken)
    {
        Quarantine.Delete(id);
        return Task.CompletedTask;
    }

    public IReadOnlyList<TransferInfo> GetTransfers() =>
        [.. Handles().Where(h => !h.Completion.IsCompleted).Select(h =>
        {
            var p = h.Progress;
            return new TransferInfo(h.ContentId.Text, h.ContentId.Text, h.Name, "download", StateName(p.State), p.BytesDone, p.TotalBytes, p.Peers);
        })];

    private IEnumerable<DownloadHandle> Handles()
    {
        var all = new Dictionary<string, DownloadHandle>(StringComparer.Ordinal);
        foreach (var handle in _started.Values)
        {
            all[handle.ContentId.Text] = handle;
        }
        foreach (var handle in _transfer.ListTransfers())
        {
            all[handle.ContentId.Text] = handle;
        }
        return all.Values;
    }

    internal static DownloadInfo ToInfo(DownloadHandle handle)
    {
        var p = handle.Progress;
        var finished = handle.Completion.IsCompletedSuccessfully;
        var result = finished ? handle.Completion.Result : null;
        return new DownloadInfo(handle.ContentId.Text, handle.Name, StateName(result?.State ?? p.State), p.BytesDone, p.TotalBytes,
            Math.Round(p.BytesPerSecond), p.Peers, p.ChunkRequests, handle.ResumedChunks, finished, result?.Reason, result?.Path, result?.QuarantineId);
    }

    internal static QuarantineInfo ToInfo(QuarantineRecord r) => new(
        r.Id, r.ContentId, r.SafeName, r.StateName, r.Reason, r.Size, r.Publisher?.Text,
        [.. r.SourcePeers.Select(p => p.Text)], r.Verified, r.Path, r.ReleasedPath, r.Created, r.Updated);

    private static string StateName(DownloadState state) => state.ToString().ToLowerInvariant();
}
