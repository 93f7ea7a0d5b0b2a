using SecureMesh.Core;

namespace SecureMesh.Node.Backup;

/// <summary>Owner-only files and folders for the outbox and the held blobs, written atomically.</summary>
internal static class BackupFiles
{
    /// <summary>Creates <paramref name="folder"/> owner-only (0700) when it does not exist.</summary>
    public static void EnsureFolder(string folder)
    {
        if (Directory.Exists(folder))
        {
            return;
        }
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(folder);
        }
        else
        {
            Directory.CreateDirectory(folder, OwnerOnly.Directories);
        }
    }

    /// <summary>
    /// Writes <paramref name="data"/> to <paramref name="path"/> (0600) through a temporary file in the same folder that is
    /// flushed to disk and renamed over the name: a crash leaves the old file or the new one, never a part.
    /// </summary>
    public static void WriteAtomic(string path, ReadOnlySpan<byte> data)
    {
        var temp = Path.Combine(Path.GetDirectoryName(path)!, $".tmp-{Guid.NewGuid():N}");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnly.Files;
        }
        try
        {
            using (var file = new FileStream(temp, options))
            {
                file.Write(data);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
