using Microsoft.Win32.SafeHandles;
using SecureMesh.Core.Content;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// The files one session is serving, each kept open between its chunks (issue 20): opening a shared file the safe way
/// (<see cref="ShareFileSystem.OpenShared"/>: lstat, the folder, a no-follow open, fstat, closes) costs eight system
/// calls a chunk; a kept handle costs one <c>lstat</c> of the path before the read and one <c>fstat</c> after it.
/// </summary>
/// <remarks>
/// A kept handle is used only while the shared path still names the very inode it holds (device and inode from
/// <c>lstat</c>, which does not follow a link): a file replaced by rename, swapped for a link or removed is opened
/// again, the safe way, and then found not to be the indexed file. The identities returned around the read are the
/// same ones a fresh open gives (the path's inode is the handle's), so the checks that follow — the indexed size,
/// mtime and inode, and the ctime for skipping the re-hash — are unchanged. At most <see cref="MaxOpen"/> handles are
/// kept (the least recently used is closed first); one unused for the idle time is closed, and all are closed when the
/// session ends. Without native file identities (another OS), nothing is kept.
/// </remarks>
internal sealed class ServedFiles : IDisposable
{
    /// <summary>Handles kept open per session.</summary>
    internal const int MaxOpen = 4;

    private readonly Lock _gate = new();
    private readonly Dictionary<(string Root, string Path), Entry> _open = [];
    private readonly TimeProvider _time;
    private readonly TimeSpan _idle;
    private ITimer? _sweeper;
    private bool _disposed;

    /// <summary>Kept handles closed after <paramref name="idle"/> without a read, on <paramref name="time"/>.</summary>
    public ServedFiles(TimeProvider time, TimeSpan idle)
    {
        _time = time;
        _idle = idle;
    }

    /// <summary>Handles kept open now (for tests).</summary>
    internal int Count
    {
        get
        {
            lock (_gate)
            {
                return _open.Count;
            }
        }
    }

    private sealed class Entry(SafeFileHandle handle, FileIdentity identity, long lastUse)
    {
        public SafeFileHandle Handle { get; } = handle;

        public FileIdentity Identity { get; } = identity;

        public long LastUse { get; set; } = lastUse;
    }

    /// <summary>
    /// Reads <paramref name="destination"/>'s length of bytes at <paramref name="offset"/> of <paramref name="content"/>'s
    /// file. <paramref name="before"/>: the file as found before the read (the handle's inode); <paramref name="after"/>:
    /// the handle's state after it. False when the file is not the indexed one before the read, or ends early.
    /// </summary>
    /// <exception cref="IOException">The file cannot be opened or read (as <see cref="ShareFileSystem.OpenShared"/>).</exception>
    public bool Read(SharedContent content, long offset, Span<byte> destination, out FileIdentity before, out FileIdentity after)
    {
        var key = (content.Root, content.Path);
        var handle = Lease(key, content, out before, out var kept);
        try
        {
            if (!content.IsSameFile(before))
            {
                after = before;
                return false;
            }
            var done = 0;
            while (done < destination.Length)
            {
                var read = RandomAccess.Read(handle, destination[done..], offset + done);
                if (read == 0)
                {
                    after = before;
                    return false;
                }
                done += read;
            }
            after = ShareFileSystem.Fstat(handle);
            return true;
        }
        finally
        {
            if (kept)
            {
                handle.DangerousRelease();
            }
            else
            {
                handle.Dispose();
            }
        }
    }

    /// <summary>Closes the kept handle of <paramref name="content"/>'s file (found changed: it is opened afresh next time).</summary>
    public void Forget(SharedContent content)
    {
        lock (_gate)
        {
            if (_open.Remove((content.Root, content.Path), out var entry))
            {
                entry.Handle.Dispose();
            }
        }
    }

    /// <summary>
    /// A handle to the file the path names now, with its identity: the kept one (a reference taken: release it) while
    /// the path still names its inode, else a fresh safe open (kept for next time when it is the indexed file).
    /// </summary>
    private SafeFileHandle Lease((string Root, string Path) key, SharedContent content, out FileIdentity identity, out bool kept)
    {
        Entry? entry;
        lock (_gate)
        {
            if (_open.TryGetValue(key, out entry))
            {
                entry.LastUse = _time.GetTimestamp();
                var added = false;
                entry.Handle.DangerousAddRef(ref added);
            }
        }
        if (entry is not null)
        {
            FileIdentity? seen = null;
            try
            {
                seen = ShareFileSystem.Lstat(key.Path);
            }
            finally
            {
                if (seen is not { Kind: FileKind.Regular } || seen.Value.Device != entry.Identity.Device || seen.Value.Inode != entry.Identity.Inode)
                {
                    // Renamed over, removed, turned into a link, or not to be looked at: the kept handle is not the shared file any more.
                    entry.Handle.DangerousRelease();
                    Drop(key, entry);
                }
            }
            if (seen is { Kind: FileKind.Regular } same && same.Device == entry.Identity.Device && same.Inode == entry.Identity.Inode)
            {
                identity = same;
                kept = true;
                return entry.Handle;
            }
        }
        var handle = ShareFileSystem.OpenShared(key.Root, key.Path, out identity);
        kept = ShareFileSystem.IsNative && content.IsSameFile(identity) && Keep(key, handle, identity);
        return handle;
    }

    /// <summary>Keeps <paramref name="handle"/> (a reference taken for the caller); false when the set is closed.</summary>
    private bool Keep((string Root, string Path) key, SafeFileHandle handle, FileIdentity identity)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return false;
            }
            if (_open.Remove(key, out var previous))
            {
                // Another serve opened the same file meanwhile: the newer handle is kept.
                previous.Handle.Dispose();
            }
            if (_open.Count >= MaxOpen)
            {
                var oldest = _open.MinBy(p => p.Value.LastUse);
                _open.Remove(oldest.Key);
                oldest.Value.Handle.Dispose();
            }
            _open[key] = new Entry(handle, identity, _time.GetTimestamp());
            var added = false;
            handle.DangerousAddRef(ref added);
            _sweeper ??= _time.CreateTimer(_ => Sweep(), null, _idle, _idle);
            return true;
        }
    }

    private void Drop((string Root, string Path) key, Entry entry)
    {
        lock (_gate)
        {
            if (_open.TryGetValue(key, out var current) && ReferenceEquals(current, entry))
            {
                _open.Remove(key);
            }
        }
        // A serve reading it meanwhile holds a reference: the file is closed when it is done.
        entry.Handle.Dispose();
    }

    /// <summary>Closes the handles not read for the idle time; the timer stops when none is left.</summary>
    private void Sweep()
    {
        lock (_gate)
        {
            foreach (var (key, entry) in _open.ToList())
            {
                if (_time.GetElapsedTime(entry.LastUse) >= _idle)
                {
                    _open.Remove(key);
                    entry.Handle.Dispose();
                }
            }
            if (_open.Count == 0)
            {
                _sweeper?.Dispose();
                _sweeper = null;
            }
        }
    }

    /// <summary>Closes every kept handle (the session ended); reads after this open and close the file each time.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var entry in _open.Values)
            {
                entry.Handle.Dispose();
            }
            _open.Clear();
            _sweeper?.Dispose();
            _sweeper = null;
        }
    }
}
