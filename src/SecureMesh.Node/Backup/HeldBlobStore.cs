using SecureMesh.Core;
using SecureMesh.Core.Backup;
using SecureMesh.Core.Identity;

namespace SecureMesh.Node.Backup;

/// <summary>
/// The holder's files: <c>backup-held/OWNER_PEER_ID/</c> in the data directory, one file per blob named by its ID (64
/// hex characters, nothing the owner chose) and one <c>root</c> file, all owner-only (0600 in 0700 folders). A write goes
/// to a temporary file that is flushed to disk and then renamed over the name, so a crash leaves the old file or the new
/// one, never a part.
/// </summary>
public sealed class HeldBlobStore
{
    /// <summary>The folder name inside the data directory.</summary>
    public const string FolderName = "backup-held";

    /// <summary>The name of an owner's root file.</summary>
    public const string RootName = "root";

    public HeldBlobStore(string home) => Root = Path.Combine(home, FolderName);

    /// <summary>The folder holding every owner's blobs.</summary>
    public string Root { get; }

    /// <summary>Writes a blob (or the root) atomically.</summary>
    public void Write(PeerId owner, string name, ReadOnlySpan<byte> data) =>
        BackupFiles.WriteAtomic(Path.Combine(OwnerFolder(owner, create: true), CheckName(name)), data);

    /// <summary>The whole blob, or null when absent or larger than <paramref name="maxLength"/>.</summary>
    public byte[]? Read(PeerId owner, string name, int maxLength)
    {
        var path = Path.Combine(OwnerFolder(owner, create: false), CheckName(name));
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (file.Length > maxLength)
            {
                return null;
            }
            var data = new byte[file.Length];
            file.ReadExactly(data);
            return data;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or EndOfStreamException)
        {
            return null;
        }
    }

    /// <summary>Reads <paramref name="destination"/>.Length bytes at <paramref name="offset"/>; false when the file is absent or shorter.</summary>
    public bool ReadRange(PeerId owner, string name, long offset, Span<byte> destination)
    {
        var path = Path.Combine(OwnerFolder(owner, create: false), CheckName(name));
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (RandomAccess.GetLength(handle) < offset + destination.Length)
            {
                return false;
            }
            var done = 0;
            while (done < destination.Length)
            {
                var n = RandomAccess.Read(handle, destination[done..], offset + done);
                if (n == 0)
                {
                    return false;
                }
                done += n;
            }
            return true;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return false;
        }
    }

    /// <summary>True when the file exists.</summary>
    public bool Exists(PeerId owner, string name) => File.Exists(Path.Combine(OwnerFolder(owner, create: false), CheckName(name)));

    /// <summary>Deletes a blob (absent is fine).</summary>
    public void Delete(PeerId owner, string name)
    {
        var path = Path.Combine(OwnerFolder(owner, create: false), CheckName(name));
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }

    /// <summary>Deletes everything held for <paramref name="owner"/>.</summary>
    public void DeleteOwner(PeerId owner)
    {
        var folder = OwnerFolder(owner, create: false);
        if (Directory.Exists(folder))
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The path of a blob (tests corrupt it).</summary>
    internal string PathOf(PeerId owner, string name) => Path.Combine(OwnerFolder(owner, create: false), CheckName(name));

    private string OwnerFolder(PeerId owner, bool create)
    {
        ArgumentNullException.ThrowIfNull(owner);
        // A Peer ID is base58: no separator, no dot; still, nothing but its own text names the folder.
        var folder = Path.Combine(Root, owner.Text);
        if (create)
        {
            BackupFiles.EnsureFolder(Root);
            BackupFiles.EnsureFolder(folder);
        }
        return folder;
    }

    private static string CheckName(string name) =>
        name == RootName || BlobId.TryParse(name, out _) ? name : throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "not a blob name");
}
