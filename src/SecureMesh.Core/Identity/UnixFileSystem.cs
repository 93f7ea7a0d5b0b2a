using System.Runtime.InteropServices;

namespace SecureMesh.Core.Identity;

/// <summary>
/// The few POSIX calls .NET does not expose: fsync of a directory (so a rename survives a crash)
/// and the owner of a path (so we only tighten permissions on a directory that is ours).
/// Every call is best effort and reports failure instead of throwing.
/// </summary>
internal static unsafe partial class UnixFileSystem
{
    private const int AtFdCwd = -100;
    private const uint StatxUid = 0x8;
    private const int StatxBufferSize = 256;
    private const int StatxUidOffset = 20; // struct statx: u32 mask, u32 blksize, u64 attributes, u32 nlink, u32 uid

    /// <summary>Flushes a directory's entries to disk; false if the platform or the call refused.</summary>
    public static bool TryFsyncDirectory(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD())
        {
            return false;
        }
        try
        {
            var fd = Open(path, 0);
            if (fd < 0)
            {
                return false;
            }
            try
            {
                return Fsync(fd) == 0;
            }
            finally
            {
                _ = Close(fd);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>True when we can prove the path (after symlinks, as chmod sees it) is owned by the effective user.</summary>
    public static bool IsOwnedByCurrentUser(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            // Without a portable stat layout we cannot prove ownership, so we never claim it.
            return false;
        }
        try
        {
            var buffer = stackalloc byte[StatxBufferSize];
            new Span<byte>(buffer, StatxBufferSize).Clear();
            if (Statx(AtFdCwd, path, 0, StatxUid, buffer) != 0)
            {
                return false;
            }
            var mask = *(uint*)buffer;
            if ((mask & StatxUid) == 0)
            {
                return false;
            }
            return *(uint*)(buffer + StatxUidOffset) == GetEuid();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
