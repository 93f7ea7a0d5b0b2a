using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace SecureMesh.Core.Content;

/// <summary>What an entry on disk is, as <c>lstat</c>/<c>fstat</c> say (never following a link).</summary>
public enum FileKind
{
    /// <summary>A regular file: the only kind ever indexed, served or released.</summary>
    Regular,
    /// <summary>A directory.</summary>
    Directory,
    /// <summary>A symbolic link.</summary>
    SymbolicLink,
    /// <summary>A FIFO (named pipe): opening it for reading would wait for a writer.</summary>
    Fifo,
    /// <summary>A Unix domain socket.</summary>
    Socket,
    /// <summary>A character device.</summary>
    CharacterDevice,
    /// <summary>A block device.</summary>
    BlockDevice,
    /// <summary>Anything else.</summary>
    Other,
}

/// <summary>An entry's identity and the figures the catalog keeps: which file (device, inode) and which version (size, mtime).</summary>
/// <param name="Kind">The entry's kind.</param>
/// <param name="Device">The device it lives on (major &lt;&lt; 32 | minor on Linux; 0 where unknown).</param>
/// <param name="Inode">Its inode number (0 where unknown).</param>
/// <param name="Size">Size in bytes.</param>
/// <param name="MtimeNs">Last write time in nanoseconds since the Unix epoch, cut to 100 ns (as .NET reports it).</param>
/// <param name="CtimeNs">
/// Last status change (ctime) in nanoseconds since the Unix epoch, as the file system keeps it (0 where unknown). Unlike
/// the mtime, no user can set it: any write, truncation, rename, link or attribute change sets it to the current time.
/// </param>
public readonly record struct FileIdentity(FileKind Kind, long Device, long Inode, long Size, long MtimeNs, long CtimeNs = 0)
{
    /// <summary>How a skipped entry of this kind is described to the user.</summary>
    public string Describe() => Kind switch
    {
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a folder",
        FileKind.SymbolicLink => "a symbolic link",
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.Socket => "a socket",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        _ => "not a regular file",
    };
}

/// <summary>
/// Opens files inside a shared tree (and creates released files in the download folder) without ever following a
/// symbolic link at any path component and without ever blocking on a special file.
/// </summary>
/// <remarks>
/// On Linux, a tree's root is opened with <c>openat2(RESOLVE_NO_SYMLINKS)</c> and files below it relative to that
/// handle with <c>RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS</c>; where the kernel lacks <c>openat2</c> (before 5.6, or a
/// seccomp filter refuses it) the same is done by a component-wise <c>openat</c> walk with <c>O_NOFOLLOW</c>
/// (<c>O_PATH | O_DIRECTORY</c> for folders). Files are opened <c>O_NONBLOCK</c> so a FIFO cannot stall the open, and
/// the opened handle is <c>fstat</c>ed: only a regular file is ever returned. On other systems a managed check of each
/// component stands in (best effort: it cannot close the race between the check and the open).
/// </remarks>
/// <summary>An open file's inode and the alignment direct I/O on it needs (see <see cref="ShareFileSystem.DirectIo"/>).</summary>
public readonly record struct DirectIoAlignment(long Inode, bool Reported, int MemoryAlign, int OffsetAlign);

public static unsafe partial class ShareFileSystem
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const int AtEmptyPath = 0x1000;
    private const int ORdOnly = 0;
    private const int OWrOnly = 1;
    private const int OCreat = 0x40;
    private const int OExcl = 0x80;
    private const int ONonBlock = 0x800;
    private const int OCloExec = 0x80000;
    private const int OPath = 0x200000;
    private const ulong ResolveNoMagicLinks = 0x02;
    private const ulong ResolveNoSymlinks = 0x04;
    private const ulong ResolveBeneath = 0x08;
    private const long SysOpenat2 = 437; // the same number on every Linux architecture (added in 5.6)
    private const uint RenameNoReplaceFlag = 1;
    private const uint StatxBasic = 0x7ff;
    private const uint StatxDioAlign = 0x2000;
    private const int StatxBufferSize = 256;
    private const int ClockRealtimeCoarse = 5;

    private const int EPerm = 1;
    private const int ENoEnt = 2;
    private const int EIntr = 4;
    private const int EExist = 17;
    private const int EXDev = 18;
    private const int ENotDir = 20;
    private const int EInval = 22;
    private const int ENoSys = 38;
    private const int ELoop = 40;
    private const int EOpNotSupp = 95;

    private static int _openat2State; // 0 unknown, 1 works, -1 unavailable

    // O_DIRECTORY and O_NOFOLLOW differ between the Arm and the x86 ABIs.
    private static readonly bool s_arm = RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64;
    private static readonly int ODirectory = s_arm ? 0x4000 : 0x10000;
    private static readonly int ONoFollow = s_arm ? 0x8000 : 0x20000;

    /// <summary>Tests: use the component-wise <c>openat</c> walk even where <c>openat2</c> works.</summary>
    internal static bool ForceWalk { get; set; }

    /// <summary>True when the native, race-free calls are used (Linux).</summary>
    public static bool IsNative => OperatingSystem.IsLinux();

    /// <summary>What <paramref name="path"/> itself is (a link is reported as a link, never followed); null when it does not exist.</summary>
    public static FileIdentity? Lstat(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!IsNative)
        {
            return ManagedLstat(path);
        }
        var buffer = stackalloc byte[StatxBufferSize];
        new Span<byte>(buffer, StatxBufferSize).Clear();
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBasic, buffer) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is ENoEnt or ENotDir)
            {
                return null;
            }
            throw Failure($"cannot examine {path}", errno);
        }
        return Decode(buffer);
    }

    /// <summary>What the open handle is.</summary>
    public static FileIdentity Fstat(SafeFileHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (!IsNative)
        {
            var length = RandomAccess.GetLength(handle);
            return new FileIdentity(FileKind.Regular, 0, 0, length, 0);
        }
        var buffer = stackalloc byte[StatxBufferSize];
        new Span<byte>(buffer, StatxBufferSize).Clear();
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (Statx((int)handle.DangerousGetHandle(), string.Empty, AtEmptyPath, StatxBasic, buffer) != 0)
            {
                throw Failure("cannot examine an open file", Marshal.GetLastPInvokeError());
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
        return Decode(buffer);
    }

    /// <summary>
    /// What an open file says about direct I/O (<c>statx</c> with <c>STATX_DIOALIGN</c>, Linux 6.1+): its inode, and
    /// the memory and file-offset alignment direct I/O needs (both 0: the file system cannot do it on this file;
    /// <see cref="DirectIoAlignment.Reported"/> false: the kernel does not say). Null off Linux or when statx fails.
    /// </summary>
    public static DirectIoAlignment? DirectIo(SafeFileHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (!IsNative)
        {
            return null;
        }
        var buffer = stackalloc byte[StatxBufferSize];
        new Span<byte>(buffer, StatxBufferSize).Clear();
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (Statx(Fd(handle), string.Empty, AtEmptyPath, StatxBasic | StatxDioAlign, buffer) != 0)
            {
                return null;
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
        // struct statx: stx_mask u32 at 0, stx_dio_mem_align u32 at 152, stx_dio_offset_align u32 at 156.
        var reported = (*(uint*)buffer & StatxDioAlign) != 0;
        return new DirectIoAlignment(Decode(buffer).Inode, reported,
            reported ? (int)*(uint*)(buffer + 152) : 0, reported ? (int)*(uint*)(buffer + 156) : 0);
    }

    /// <summary>
    /// Opens the folder at the absolute <paramref name="path"/> as a handle for the calls below, refusing when any
    /// component of the path is a symbolic link or not a folder.
    /// </summary>
    public static SafeFileHandle OpenDirectory(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!Path.IsPathFullyQualified(path))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"not an absolute path: {path}");
        }
        if (!IsNative)
        {
            ManagedCheckComponents(Path.GetPathRoot(path)!, Path.GetRelativePath(Path.GetPathRoot(path)!, path), expectDirectory: true);
            return new SafeFileHandle(IntPtr.Zero, ownsHandle: false);
        }
        int fd = -2, errno = 0;
        if (!ForceWalk && TryOpenat2(AtFdCwd, path, OPath | ODirectory | OCloExec, 0, ResolveNoSymlinks | ResolveNoMagicLinks, out fd, out errno))
        {
            return new SafeFileHandle(fd, ownsHandle: true);
        }
        if (fd == -2)
        {
            return Walk("/", path.TrimStart('/'), finalIsFile: false, path);
        }
        throw Refusal(path, errno);
    }

    /// <summary>
    /// Opens the regular file <paramref name="relativePath"/> below the folder handle <paramref name="directory"/> for
    /// reading: no component may be a symbolic link or lead outside, the open never blocks, and anything but a regular
    /// file is refused (<see cref="SecureMeshException"/> of kind Storage, naming what was found).
    /// </summary>
    public static SafeFileHandle OpenFileBeneath(SafeFileHandle directory, string directoryPath, string relativePath, out FileIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentException.ThrowIfNullOrEmpty(relativePath);
        var full = Path.Combine(directoryPath, relativePath);
        CheckRelative(relativePath, full);
        SafeFileHandle handle;
        int fd = -2, errno = 0;
        if (!IsNative)
        {
            ManagedCheckComponents(directoryPath, relativePath, expectDirectory: false);
            handle = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        }
        else if (!ForceWalk && TryOpenat2(Fd(directory), relativePath, ORdOnly | ONoFollow | ONonBlock | OCloExec, 0,
            ResolveBeneath | ResolveNoSymlinks | ResolveNoMagicLinks, out fd, out errno))
        {
            handle = new SafeFileHandle(fd, ownsHandle: true);
        }
        else if (fd == -2)
        {
            handle = WalkFrom(directory, relativePath, full);
        }
        else
        {
            throw Refusal(full, errno);
        }
        try
        {
            identity = Fstat(handle);
            if (identity.Kind != FileKind.Regular)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Storage, $"{full} is {identity.Describe()}, not a regular file");
            }
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the regular file <paramref name="path"/> inside the shared tree <paramref name="root"/> (a folder, or the
    /// file itself when a single file is shared): <c>lstat</c> first, then the no-follow open, then <c>fstat</c> of the
    /// handle, which must be the entry <c>lstat</c> saw.
    /// </summary>
    public static SafeFileHandle OpenShared(string root, string path, out FileIdentity identity)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        ArgumentException.ThrowIfNullOrEmpty(path);
        string directoryPath;
        string relative;
        if (string.Equals(root, path, StringComparison.Ordinal))
        {
            directoryPath = Path.GetDirectoryName(path) ?? throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"{path} has no folder");
            relative = Path.GetFileName(path);
        }
        else
        {
            directoryPath = root;
            relative = Path.GetRelativePath(root, path);
        }
        var seen = Lstat(path) ?? throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{path} no longer exists");
        if (seen.Kind != FileKind.Regular)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"{path} is {seen.Describe()}, not a regular file");
        }
        using var directory = OpenDirectory(directoryPath);
        var handle = OpenFileBeneath(directory, directoryPath, relative, out identity);
        if (IsNative && (identity.Device != seen.Device || identity.Inode != seen.Inode))
        {
            handle.Dispose();
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"{path} was replaced while it was being opened");
        }
        return handle;
    }

    /// <summary>
    /// Creates <paramref name="name"/> (one path component) in the folder handle <paramref name="directory"/> for writing,
    /// owner-only; fails with <see cref="IOException"/> (HResult EEXIST) when any entry, a dangling link included, has the name.
    /// </summary>
    public static SafeFileHandle CreateExclusive(SafeFileHandle directory, string directoryPath, string name)
    {
        ArgumentNullException.ThrowIfNull(directory);
        CheckName(name);
        if (!IsNative)
        {
            return File.OpenHandle(Path.Combine(directoryPath, name), FileMode.CreateNew, FileAccess.Write);
        }
        int fd;
        do
        {
            fd = OpenAt(Fd(directory), name, OWrOnly | OCreat | OExcl | ONoFollow | OCloExec, 0x180);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EIntr);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EExist)
            {
                throw new IOException($"{Path.Combine(directoryPath, name)} exists", EExist);
            }
            throw Failure($"cannot create {Path.Combine(directoryPath, name)}", errno);
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>The outcome of <see cref="RenameNoReplace"/>.</summary>
    public enum RenameResult
    {
        /// <summary>Renamed.</summary>
        Done,
        /// <summary>The target name is taken; nothing changed.</summary>
        Exists,
        /// <summary>Not possible here (another file system, or no <c>renameat2</c>): copy instead.</summary>
        Unsupported,
    }

    /// <summary>
    /// Renames <paramref name="fromName"/> in <paramref name="fromDirectory"/> to <paramref name="toName"/> in
    /// <paramref name="toDirectory"/>, never replacing an existing entry and never following a link at either name.
    /// </summary>
    public static RenameResult RenameNoReplace(SafeFileHandle fromDirectory, string fromName, SafeFileHandle toDirectory, string toName)
    {
        ArgumentNullException.ThrowIfNull(fromDirectory);
        ArgumentNullException.ThrowIfNull(toDirectory);
        CheckName(fromName);
        CheckName(toName);
        if (!IsNative)
        {
            return RenameResult.Unsupported;
        }
        try
        {
            if (RenameAt2(Fd(fromDirectory), fromName, Fd(toDirectory), toName, RenameNoReplaceFlag) == 0)
            {
                return RenameResult.Done;
            }
        }
        catch (EntryPointNotFoundException)
        {
            return RenameResult.Unsupported;
        }
        var errno = Marshal.GetLastPInvokeError();
        return errno switch
        {
            EExist => RenameResult.Exists,
            EXDev or EInval or ENoSys or EOpNotSupp or EPerm => RenameResult.Unsupported,
            _ => throw Failure($"cannot move {fromName} to {toName}", errno),
        };
    }

    /// <summary>
    /// Gives the file <paramref name="fromName"/> of <paramref name="directory"/> a second name <paramref name="toName"/> in
    /// the same folder; false (nothing changed) when the name is taken. For file systems without <c>renameat2</c>.
    /// </summary>
    public static bool LinkNoReplace(SafeFileHandle directory, string directoryPath, string fromName, string toName)
    {
        ArgumentNullException.ThrowIfNull(directory);
        CheckName(fromName);
        CheckName(toName);
        if (!IsNative)
        {
            try
            {
                File.Copy(Path.Combine(directoryPath, fromName), Path.Combine(directoryPath, toName), overwrite: false);
                return true;
            }
            catch (IOException) when (File.Exists(Path.Combine(directoryPath, toName)))
            {
                return false;
            }
        }
        if (LinkAt(Fd(directory), fromName, Fd(directory), toName, 0) == 0)
        {
            return true;
        }
        var errno = Marshal.GetLastPInvokeError();
        return errno == EExist ? false : throw Failure($"cannot name {Path.Combine(directoryPath, toName)}", errno);
    }

    /// <summary>Removes <paramref name="name"/> (a file, never followed) from the folder handle; false when it was not there.</summary>
    public static bool Unlink(SafeFileHandle directory, string directoryPath, string name)
    {
        ArgumentNullException.ThrowIfNull(directory);
        CheckName(name);
        if (!IsNative)
        {
            var p = Path.Combine(directoryPath, name);
            var existed = File.Exists(p);
            File.Delete(p);
            return existed;
        }
        if (UnlinkAt(Fd(directory), name, 0) == 0)
        {
            return true;
        }
        var errno = Marshal.GetLastPInvokeError();
        return errno == ENoEnt ? false : throw Failure($"cannot remove {Path.Combine(directoryPath, name)}", errno);
    }

    /// <summary>Flushes a file to disk (best effort).</summary>
    public static void Flush(SafeFileHandle file)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (IsNative)
        {
            _ = Fsync(Fd(file));
        }
    }

    /// <summary>
    /// The clock file timestamps are taken from (<c>CLOCK_REALTIME_COARSE</c>), in nanoseconds since the Unix epoch;
    /// 0 where it cannot be read (then <see cref="CtimeSettled"/> is always false).
    /// </summary>
    public static long CoarseNowNs()
    {
        if (!IsNative)
        {
            return 0;
        }
        var ts = stackalloc long[2];
        return ClockGetTime(ClockRealtimeCoarse, ts) == 0 ? (ts[0] * 1_000_000_000) + ts[1] : 0;
    }

    /// <summary>
    /// True when a file whose ctime is <paramref name="ctimeNs"/> cannot change again without getting another ctime, as
    /// seen at <paramref name="nowNs"/> (<see cref="CoarseNowNs"/>, read after the ctime): the ctime is older than now by
    /// more than the file system's timestamp granularity. A change is stamped with the coarse clock cut to that
    /// granularity, so a change in the same tick as the last one (or, on a file system keeping whole seconds, in the same
    /// second) would keep the ctime; the granularity is not reported, so the coarsest one the ctime is a multiple of
    /// (2 s, 1 s, … 1 ns) is assumed.
    /// </summary>
    public static bool CtimeSettled(long ctimeNs, long nowNs)
    {
        if (ctimeNs <= 0 || nowNs <= 0)
        {
            return false;
        }
        long margin = 2_000_000_000;
        foreach (var step in (ReadOnlySpan<long>)[2_000_000_000, 1_000_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1])
        {
            margin = step;
            if (ctimeNs % step == 0)
            {
                break;
            }
        }
        return nowNs - ctimeNs >= margin;
    }

    /// <summary>
    /// The absolute path with every symbolic link resolved (the part that does not exist yet is appended as written),
    /// so a folder setting names the real folder once, when it is set.
    /// </summary>
    public static string Resolve(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = Path.GetFullPath(path);
        var existing = full;
        var rest = new Stack<string>();
        while (!Directory.Exists(existing) && !File.Exists(existing))
        {
            var parent = Path.GetDirectoryName(existing);
            if (parent is null)
            {
                return full;
            }
            rest.Push(Path.GetFileName(existing));
            existing = parent;
        }
        var resolved = RealPath(existing) ?? existing;
        while (rest.Count > 0)
        {
            resolved = Path.Combine(resolved, rest.Pop());
        }
        return resolved;
    }

    private static string? RealPath(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD())
        {
            return new DirectoryInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(path);
        }
        var result = RealPathNative(path, null);
        if (result == null)
        {
            return null;
        }
        try
        {
            return Marshal.PtrToStringUTF8((IntPtr)result);
        }
        finally
        {
            Free(result);
        }
    }

    private static SafeFileHandle Walk(string start, string relative, bool finalIsFile, string full)
    {
        using var root = new SafeFileHandle(OpenOrThrow(AtFdCwd, start, OPath | ODirectory | OCloExec, full), ownsHandle: true);
        return WalkComponents(root, relative, finalIsFile, full);
    }

    private static SafeFileHandle WalkFrom(SafeFileHandle directory, string relative, string full) =>
        WalkComponents(directory, relative, finalIsFile: true, full);

    /// <summary>The fallback for kernels without <c>openat2</c>: one <c>openat</c> per component, none followed.</summary>
    private static SafeFileHandle WalkComponents(SafeFileHandle start, string relative, bool finalIsFile, string full)
    {
        var parts = relative.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var current = start;
        var owned = false;
        try
        {
            for (var i = 0; i < parts.Length; i++)
            {
                if (parts[i] is "." or "..")
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Storage, $"{full} leads outside its folder");
                }
                var last = i == parts.Length - 1;
                var flags = last && finalIsFile
                    ? ORdOnly | ONoFollow | ONonBlock | OCloExec
                    : OPath | ODirectory | ONoFollow | OCloExec;
                var next = new SafeFileHandle(OpenOrThrow(Fd(current), parts[i], flags, full), ownsHandle: true);
                if (owned)
                {
                    current.Dispose();
                }
                current = next;
                owned = true;
            }
            if (!owned)
            {
                // An empty relative path: the start itself, as a new handle.
                var fd = OpenOrThrow(Fd(start), ".", OPath | ODirectory | OCloExec, full);
                return new SafeFileHandle(fd, ownsHandle: true);
            }
            owned = false;
            return current;
        }
        finally
        {
            if (owned)
            {
                current.Dispose();
            }
        }
    }

    private static int OpenOrThrow(int dirfd, string name, int flags, string full)
    {
        int fd;
        do
        {
            fd = OpenAt(dirfd, name, flags, 0);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EIntr);
        if (fd < 0)
        {
            throw Refusal(full, Marshal.GetLastPInvokeError());
        }
        return fd;
    }

    /// <summary>openat2; false with <paramref name="fd"/> = -2 when the kernel lacks it (walk instead), -1 with the errno otherwise.</summary>
    private static bool TryOpenat2(int dirfd, string path, int flags, ulong mode, ulong resolve, out int fd, out int errno)
    {
        errno = 0;
        if (Volatile.Read(ref _openat2State) < 0)
        {
            fd = -2;
            return false;
        }
        var how = stackalloc ulong[3];
        how[0] = (ulong)(uint)flags;
        how[1] = mode;
        how[2] = resolve;
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        long result;
        fixed (byte* p = bytes)
        {
            do
            {
                result = Syscall(SysOpenat2, dirfd, p, how, 24);
                errno = result < 0 ? Marshal.GetLastPInvokeError() : 0;
            }
            while (result < 0 && errno == EIntr);
        }
        if (result >= 0)
        {
            Volatile.Write(ref _openat2State, 1);
            fd = (int)result;
            return true;
        }
        if (errno is ENoSys || (errno == EPerm && Volatile.Read(ref _openat2State) == 0))
        {
            // No openat2 here (an old kernel, or a container's seccomp filter): the openat walk does the same job.
            Volatile.Write(ref _openat2State, -1);
            fd = -2;
            return false;
        }
        fd = -1;
        return false;
    }

    private static SecureMeshException Refusal(string path, int errno) => errno switch
    {
        ELoop => new SecureMeshException(SecureMeshErrorKind.Storage, $"{path} is or goes through a symbolic link; links are never followed"),
        EXDev => new SecureMeshException(SecureMeshErrorKind.Storage, $"{path} leads outside its folder"),
        ENotDir => new SecureMeshException(SecureMeshErrorKind.Storage, $"{path}: a component is not a folder (or is a symbolic link)"),
        ENoEnt => new SecureMeshException(SecureMeshErrorKind.NotFound, $"{path} no longer exists"),
        _ => Failure($"cannot open {path}", errno),
    };

    private static SecureMeshException Failure(string what, int errno) =>
        new(SecureMeshErrorKind.Storage, $"{what}: {Marshal.GetPInvokeErrorMessage(errno)}");

    private static void CheckRelative(string relative, string full)
    {
        if (Path.IsPathRooted(relative) || relative.Split('/').Any(p => p is ".."))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"{full} leads outside its folder");
        }
    }

    private static void CheckName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name is "." or ".." || name.Contains('/', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"'{name}' is not a single file name");
        }
    }

    private static int Fd(SafeFileHandle handle) => (int)handle.DangerousGetHandle();

    private static FileIdentity Decode(byte* buffer)
    {
        // struct statx: mode u16 at 28, ino u64 at 32, size u64 at 40, ctime {i64 sec, u32 nsec} at 96, mtime at 112,
        // dev major/minor u32 at 136/140.
        var mode = *(ushort*)(buffer + 28);
        var kind = (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0xA000 => FileKind.SymbolicLink,
            0x1000 => FileKind.Fifo,
            0xC000 => FileKind.Socket,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            _ => FileKind.Other,
        };
        var inode = *(long*)(buffer + 32);
        var size = *(long*)(buffer + 40);
        var seconds = *(long*)(buffer + 112);
        var nanos = *(uint*)(buffer + 120);
        var ctime = (*(long*)(buffer + 96) * 1_000_000_000) + *(uint*)(buffer + 104);
        var device = ((long)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140);
        return new FileIdentity(kind, device, inode, size, (seconds * 1_000_000_000) + (nanos / 100 * 100), ctime);
    }

    private static FileIdentity? ManagedLstat(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null)
        {
            return new FileIdentity(FileKind.SymbolicLink, 0, 0, 0, 0);
        }
        if (Directory.Exists(path))
        {
            return new FileIdentity(FileKind.Directory, 0, 0, 0, 0);
        }
        if (!info.Exists)
        {
            return null;
        }
        var kind = (info.Attributes & FileAttributes.Device) != 0 ? FileKind.Other : FileKind.Regular;
        return new FileIdentity(kind, 0, 0, info.Length, (info.LastWriteTimeUtc.Ticks - DateTime.UnixEpoch.Ticks) * 100);
    }

    private static void ManagedCheckComponents(string start, string relative, bool expectDirectory)
    {
        var current = start;
        foreach (var part in relative.Split(['/', '\\'], StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            var seen = ManagedLstat(current);
            if (seen is { Kind: FileKind.SymbolicLink })
            {
                throw new SecureMeshException(SecureMeshErrorKind.Storage, $"{current} is or goes through a symbolic link; links are never followed");
            }
        }
        if (expectDirectory && !Directory.Exists(current))
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{current} is not a folder");
        }
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long dirfd, byte* path, ulong* how, long size);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenAt(int dirfd, string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);

    [LibraryImport("libc", EntryPoint = "linkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkAt(int olddirfd, string oldpath, int newdirfd, string newpath, int flags);

    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnlinkAt(int dirfd, string path, int flags);

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, long* timespec);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial byte* RealPathNative(string path, byte* resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(byte* pointer);
}
