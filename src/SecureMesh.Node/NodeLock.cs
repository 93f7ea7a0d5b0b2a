using SecureMesh.Core;

namespace SecureMesh.Node;

/// <summary>
/// Ensures one node per data directory: an exclusive lock on <c>node.lock</c>, released when the process ends
/// (even on a crash, since the kernel drops it with the file descriptor).
/// </summary>
public sealed class NodeLock : IDisposable
{
    /// <summary>The lock file's name in the data directory.</summary>
    public const string FileName = "node.lock";

    private readonly FileStream _stream;

    private NodeLock(FileStream stream) => _stream = stream;

    /// <summary>Takes the lock or fails with a clear error naming the directory.</summary>
    public static NodeLock Acquire(string home)
    {
        var path = Path.Combine(home, FileName);
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = OwnerOnly.Files;
            }
            var stream = new FileStream(path, options);
            stream.SetLength(0);
            var pid = System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            stream.Write(pid);
            stream.Flush();
            return new NodeLock(stream);
        }
        catch (IOException)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"a SecureMesh node is already running on {home}; stop it first or use another --home");
        }
    }

    /// <summary>True when a node holds the lock on <paramref name="home"/>.</summary>
    public static bool IsHeld(string home)
    {
        var path = Path.Combine(home, FileName);
        if (!File.Exists(path))
        {
            return false;
        }
        try
        {
            using var probe = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return false;
        }
        catch (IOException)
        {
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _stream.Dispose();
}
