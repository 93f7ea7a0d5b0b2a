using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using SecureMesh.Core.Content;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// Writes verified chunks into a download's quarantine part file. Where the file system takes it (Linux, <c>O_DIRECT</c>),
/// a chunk whose offset and length are block-aligned goes straight from an aligned buffer to the disk, past the page
/// cache: on a virtual machine, filling 1 GiB of fresh page cache costs seconds of system time, and the downloader
/// never reads those pages again (the check before release uses the leaf hashes computed on arrival). A chunk that is
/// not aligned (the file's last one, mostly) is written through the buffered handle. Where the file system refuses
/// direct I/O, at open or at the first write, every chunk is written through the buffered handle.
/// </summary>
/// <remarks>
/// Only bytes already verified are ever passed here. Direct I/O changes nothing about durability: a direct write is not
/// durable until the file is fsynced (the device may cache it, and the file's block map is metadata), so the part file
/// is still fsynced before chunks are recorded as verified (see README, Durability); fsync of the buffered handle
/// flushes the inode whichever way its blocks were written. Readers stay coherent (the kernel drops cached pages of a
/// range written directly), but the file's data is not in the page cache afterwards: the first read of it (a scanner,
/// a copy to another file system at release, the user opening it) comes from the disk.
/// Writes are serialized (one at a time): concurrent writes to one file contend on its inode lock (see git history).
/// </remarks>
internal sealed unsafe partial class PartFileWriter : IDisposable
{
    private const int OWrOnly = 1;
    private const int OCloExec = 0x80000;
    private const int EIntr = 4;
    private const int EInval = 22;
    private const int DefaultAlign = 4096;

    // O_DIRECT differs between the Arm and the x86 ABIs.
    private static readonly int ODirect = RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64 ? 0x10000 : 0x4000;

    private readonly SafeFileHandle _buffered;
    private readonly Lock _gate = new();
    private SafeFileHandle? _direct;
    private int _offsetAlign;
    private byte* _bounce;
    private int _bounceLength;

    private PartFileWriter(SafeFileHandle buffered, SafeFileHandle? direct, int memoryAlign, int offsetAlign, int chunkSize)
    {
        _buffered = buffered;
        if (direct is null)
        {
            return;
        }
        _direct = direct;
        _offsetAlign = offsetAlign;
        _bounceLength = chunkSize;
        _bounce = (byte*)NativeMemory.AlignedAlloc((nuint)chunkSize, (nuint)memoryAlign);
    }

    /// <summary>True while chunks are written with direct I/O (false: every write goes through the page cache).</summary>
    public bool IsDirect
    {
        get
        {
            lock (_gate)
            {
                return _direct is not null;
            }
        }
    }

    /// <summary>
    /// A writer for the part file open as <paramref name="file"/> (read-write; kept open and fsynced by the caller) with
    /// chunks of <paramref name="chunkSize"/> bytes; <paramref name="direct"/> false writes everything buffered.
    /// </summary>
    public static PartFileWriter Open(SafeFileHandle file, int chunkSize, bool direct = true)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (!direct || !OperatingSystem.IsLinux() || chunkSize <= 0)
        {
            return new PartFileWriter(file, null, 0, 0, 0);
        }
        var handle = TryReopenDirect(file, out var memoryAlign, out var offsetAlign);
        if (handle is null || chunkSize % offsetAlign != 0)
        {
            handle?.Dispose();
            return new PartFileWriter(file, null, 0, 0, 0);
        }
        return new PartFileWriter(file, handle, memoryAlign, offsetAlign, chunkSize);
    }

    /// <summary>
    /// Opens the same file again (a new open file description, so the buffered handle keeps its own flags) with
    /// <c>O_DIRECT</c>, through <c>/proc/self/fd</c>: the very inode, never a path that could have been swapped. Null
    /// when the file system (or a missing /proc) refuses, or reports that it cannot do direct I/O.
    /// </summary>
    private static SafeFileHandle? TryReopenDirect(SafeFileHandle file, out int memoryAlign, out int offsetAlign)
    {
        memoryAlign = offsetAlign = 0;
        int fd;
        do
        {
            fd = Open($"/proc/self/fd/{(int)file.DangerousGetHandle()}", OWrOnly | ODirect | OCloExec, 0);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == EIntr);
        if (fd < 0)
        {
            return null;
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (ShareFileSystem.DirectIo(handle) is not { } dio || dio.Inode != ShareFileSystem.Fstat(file).Inode)
        {
            handle.Dispose();
            return null;
        }
        if (dio.Reported)
        {
            memoryAlign = dio.MemoryAlign;
            offsetAlign = dio.OffsetAlign;
            if (memoryAlign <= 0 || offsetAlign <= 0)
            {
                // The file system says it cannot do direct I/O on this file.
                handle.Dispose();
                return null;
            }
        }
        else
        {
            // An older kernel that does not say: the common requirement, and a refused first write falls back.
            memoryAlign = offsetAlign = DefaultAlign;
        }
        memoryAlign = Math.Max(memoryAlign, DefaultAlign);
        return handle;
    }

    /// <summary>Writes <paramref name="data"/> (verified) at <paramref name="offset"/>; an <see cref="IOException"/> on a disk failure.</summary>
    public void Write(ReadOnlySpan<byte> data, long offset)
    {
        lock (_gate)
        {
            if (_direct is not null && offset % _offsetAlign == 0 && data.Length % _offsetAlign == 0 && data.Length <= _bounceLength
                && WriteDirect(data, offset))
            {
                return;
            }
            RandomAccess.Write(_buffered, data, offset);
        }
    }

    /// <summary>False when the file system refused direct I/O (nothing was written): the caller writes buffered, now and from now on.</summary>
    private bool WriteDirect(ReadOnlySpan<byte> data, long offset)
    {
        data.CopyTo(new Span<byte>(_bounce, data.Length));
        var done = 0;
        var added = false;
        _direct!.DangerousAddRef(ref added);
        try
        {
            var fd = (int)_direct.DangerousGetHandle();
            while (done < data.Length)
            {
                var n = PWrite(fd, _bounce + done, (nuint)(data.Length - done), offset + done);
                if (n > 0)
                {
                    done += (int)n;
                    if (done < data.Length && done % _offsetAlign != 0)
                    {
                        // A short write that left the rest unaligned: finish it buffered.
                        RandomAccess.Write(_buffered, data[done..], offset + done);
                        return true;
                    }
                    continue;
                }
                var errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
                if (errno == EIntr)
                {
                    continue;
                }
                if (errno == EInval && done == 0)
                {
                    // Accepted at open, refused at write (alignment the file system did not report): buffered from now on.
                    StopDirect();
                    return false;
                }
                throw new IOException($"writing the part file failed: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
            }
            return true;
        }
        finally
        {
            if (added)
            {
                _direct?.DangerousRelease();
            }
        }
    }

    private void StopDirect()
    {
        _direct?.Dispose();
        _direct = null;
        FreeBounce();
    }

    private void FreeBounce()
    {
        if (_bounce != null)
        {
            NativeMemory.AlignedFree(_bounce);
            _bounce = null;
            _bounceLength = 0;
        }
    }

    /// <summary>Closes the direct handle (the buffered one belongs to the caller).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _direct?.Dispose();
            _direct = null;
            FreeBounce();
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    private static partial nint PWrite(int fd, byte* buffer, nuint count, long offset);
}
