using SecureMesh.Storage;

namespace SecureMesh.Node.Backup;

/// <summary>One holder of a backed-up path: <c>complete</c> (has every blob the path needs), <c>uploading</c> or <c>failing</c> (a failed proof or upload, with the reason).</summary>
public sealed record BackupHolderStatus(string PeerId, string State, long Bytes, DateTimeOffset? LastProof, int Missing, string? Reason);

/// <summary>A backed-up path: its policy, files, versions and holders; under-replicated when fewer than <see cref="Copies"/> holders are complete.</summary>
public sealed record BackupShareStatus(string Path, int Copies, string Keep, int Files, int Versions, long Bytes, bool UnderReplicated, IReadOnlyList<BackupHolderStatus> Holders);

/// <summary>A version of a file as <c>backup versions</c> shows it.</summary>
public sealed record BackupVersionInfo(string Path, DateTimeOffset Time, long Size, bool Deleted, string ContentId);

/// <summary>What <c>backup status</c> shows, read from the database alone (the same with or without a running node).</summary>
public static class BackupStatusReport
{
    /// <summary>The status of every backed-up path.</summary>
    public static IReadOnlyList<BackupShareStatus> Compute(SecureMeshDatabase db)
    {
        ArgumentNullException.ThrowIfNull(db);
        var blobs = db.Backup.ListBlobs();
        var result = new List<BackupShareStatus>();
        foreach (var set in db.Backup.ListSets())
        {
            var versions = db.Backup.ListVersions(set.Path);
            var needed = versions.SelectMany(v => v.Blobs).ToHashSet(StringComparer.Ordinal);
            var holders = new List<BackupHolderStatus>();
            foreach (var holder in set.Holders)
            {
                var placed = db.Backup.ListPlaced(holder);
                var record = db.Backup.GetHolder(holder);
                var missing = needed.Count(id => !placed.Contains(id));
                var bytes = needed.Where(placed.Contains).Sum(id => blobs.GetValueOrDefault(id));
                var reason = record.Failing ?? record.UploadError;
                var state = reason is not null ? "failing" : missing == 0 && versions.Count > 0 ? "complete" : "uploading";
                holders.Add(new BackupHolderStatus(holder.Text, state, bytes, record.LastProof, missing, reason));
            }
            var latest = versions.GroupBy(v => v.RelPath, StringComparer.Ordinal).Select(g => g.MaxBy(v => v.Time)!).Where(v => !v.Deleted).ToList();
            result.Add(new BackupShareStatus(set.Path, set.Copies, set.Keep, latest.Count, versions.Count, latest.Sum(v => v.Size),
                holders.Count(h => h.State == "complete") < set.Copies, holders));
        }
        return result;
    }

    /// <summary>The kept versions of a file (its full path) or of every file of a backed-up path, oldest first.</summary>
    public static IReadOnlyList<BackupVersionInfo> Versions(SecureMeshDatabase db, string path)
    {
        ArgumentNullException.ThrowIfNull(db);
        var list = new List<BackupVersionInfo>();
        foreach (var set in db.Backup.ListSets())
        {
            foreach (var v in db.Backup.ListVersions(set.Path))
            {
                var full = v.RelPath.Length == 0 ? set.Path : System.IO.Path.Combine(set.Path, v.RelPath);
                if (string.Equals(full, path, StringComparison.Ordinal) || string.Equals(set.Path, path, StringComparison.Ordinal))
                {
                    list.Add(new BackupVersionInfo(full, v.Time, v.Size, v.Deleted, v.ContentId));
                }
            }
        }
        return list;
    }
}
