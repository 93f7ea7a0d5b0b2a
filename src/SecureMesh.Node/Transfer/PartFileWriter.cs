using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using SecureMesh.Core.Content;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// Writes verified chunks into a download's quarantine part file. Where the file system takes it (Linux, <c>O_DIRECT</c>),
/// a chunk whose offset and length are block-aligned goes straight to the disk, past the page cache: on a virtual
/// machine, filling 1 GiB of fresh page cache costs seconds of system time, and the downloader never reads those pages
/// again (the check before release uses the leaf hashes computed on arrival). A chunk received into a
/// <see cref="ChunkBuffer"/> (<see cref="RentBuffer"/>) is written from there; one elsewhere is copied into an aligned
/// bounce buffer first. A chunk that is not aligned (the file's last one, mostly) is written through the buffered
/// handle. Where the file system refuses direct I/O, at open or at the first write, every chunk is written through the
/// buffered handle.
/// </summary>
/// <remarks>
/// Only bytes already verified are ever passed here. Direct I/O changes nothing about durability: a direct write is not
/// durable until the file is fsynced (the device may cache it, and the file's block map is metadata), so the part file
/// is still fsynced before chunks are recorded as verified (see README, Durability); fsync of the buffered handle
/// flushes the inode whichever way its blocks were written. Readers stay coherent (the kernel drops cached pages of a
/// range written directly), but the file's data is not in the page cache afterwards: the first read of it (a scanner,
/// a copy to another file system at release, the user opening it) comes from the disk.
/// Direct writes from chunk buffers run concurrently (each lane waits for its own write only): the part file's blocks
/// are allocated up front (<c>fallocate</c>), so that aligned direct writes into them are overwrites, which ext4 and XFS
/// let run in parallel; a direct write into a hole allocates blocks and holds the inode lock for its whole I/O. Writes
/// through the bounce buffer or the page cache are one at a time (concurrent buffered writes to one file contend on its
/// inode lock).
/// </remarks>
internal sealed unsafe partial class PartFileWriter : IDisposable
{
    private const int OWrOnly = 1;
    private const int OCloExec = 0x80000;
    private const int EIntr = 4;
    private const int EInval = 22;
    private const int ENoSpc = 28;
    private const int DefaultAlign = 4096;

    // O_DIRECT differs between the Arm and the x86 ABIs.
    private static readonly int ODirect = RuntimeInformation.ProcessArchitecture is Architecture.Arm or Architecture.Arm64 ? 0x10000 : 0x4000;

    private readonly SafeFileHandle _buffered;
    private readonly Lock _gate = new();
    private readonly ChunkBufferPool? _buffers;
    private readonly int _memoryAlign;
    private readonly int _offsetAlign;
    private readonly int _chunkSize;
    private SafeFileHandle? _direct;
    private byte* _bounce;

    private PartFileWriter(SafeFileHandle buffered, SafeFileHandle? direct, int memoryAlign, int offsetAlign, int chunkSize)
    {
        _buffered = buffered;
        if (direct is null)
        {
            return;
        }
        _direct = direct;
        _memoryAlign = memoryAlign;
        _offsetAlign = offsetAlign;
        _chunkSize = chunkSize;
        _buffers = new ChunkBufferPool(chunkSize, memoryAlign);
    }

    /// <summary>True while chunks are written with direct I/O (false: every write goes through the page cache).</summary>
    public bool IsDirect => Volatile.Read(ref _direct) is not null;

    /// <summary>Chunks copied into the bounce buffer before their direct write (for tests).</summary>
    internal long BounceCopies { get; private set; }

    /// <summary>Chunk buffers of this download (null when chunks are written through the page cache; for tests).</summary>
    internal ChunkBufferPool? Buffers => _buffers;

    /// <summary>
    /// A block to receive one chunk reply into, so that its bytes are written from where they arrived; null when the
    /// file is written through the page cache (a reply in an ordinary buffer is written just as well).
    /// </summary>
    public ChunkBuffer? RentBuffer() => IsDirect ? _buffers!.Rent() : null;

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
        try
        {
            Preallocate(file);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
        return new PartFileWriter(file, handle, memoryAlign, offsetAlign, chunkSize);
    }

    /// <summary>
    /// Allocates the part file's blocks (its whole length, keeping what a resumed part already holds), so that the
    /// direct writes are overwrites of allocated blocks and may run in parallel. A file system without
    /// <c>fallocate</c> keeps the sparse file; a full disk is an <see cref="IOException"/> now rather than at a write.
    /// </summary>
    private static void Preallocate(SafeFileHandle file)
    {
        var length = RandomAccess.GetLength(file);
        if (length == 0)
        {
            return;
        }
        var added = false;
        file.DangerousAddRef(ref added);
        try
        {
            int result;
            do
            {
                result = Fallocate((int)file.DangerousGetHandle(), 0, 0, length);
            }
            while (result != 0 && Marshal.GetLastPInvokeError() == EIntr);
            if (result != 0 && Marshal.GetLastPInvokeError() == ENoSpc)
            {
                throw new IOException("not enough disk space for the part file", ENoSpc);
            }
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
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

    /// <summary>
    /// Writes <paramref name="data"/> (verified) at <paramref name="offset"/>; an <see cref="IOException"/> on a disk
    /// failure. Data in a <see cref="ChunkBuffer"/> (or anywhere aligned) is written directly from where it is, without
    /// waiting for other writes.
    /// </summary>
    public void Write(ReadOnlySpan<byte> data, long offset)
    {
        if (IsDirect && Aligned(data.Length, offset))
        {
            fixed (byte* source = data)
            {
                if ((nuint)source % (nuint)_memoryAlign == 0 && WriteDirect(source, data.Length, offset))
                {
                    return;
                }
            }
        }
        lock (_gate)
        {
            if (_direct is not null && Aligned(data.Length, offset))
            {
                if (_bounce == null)
                {
                    _bounce = (byte*)NativeMemory.AlignedAlloc((nuint)_chunkSize, (nuint)_memoryAlign);
                }
                data.CopyTo(new Span<byte>(_bounce, data.Length));
                BounceCopies++;
                if (WriteDirect(_bounce, data.Length, offset))
                {
                    return;
                }
            }
            RandomAccess.Write(_buffered, data, offset);
        }
    }

    /// <summary>Whether a write of <paramref name="length"/> bytes at <paramref name="offset"/> may go direct (a whole number of blocks at a block boundary).</summary>
    private bool Aligned(int length, long offset) => offset % _offsetAlign == 0 && length % _offsetAlign == 0 && length <= _chunkSize;

    /// <summary>
    /// One direct write of <paramref name="length"/> aligned bytes at <paramref name="source"/>; false when the file
    /// system refused direct I/O (nothing was written): the caller writes buffered, now and from now on.
    /// </summary>
    private bool WriteDirect(byte* source, int length, long offset)
    {
        var direct = Volatile.Read(ref _direct);
        if (direct is null)
        {
            return false;
        }
        var added = false;
        try
        {
            direct.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
            // Closed meanwhile: direct I/O was refused by another write, or the writer is being disposed.
            return false;
        }
        try
        {
            var fd = (int)direct.DangerousGetHandle();
            var done = 0;
            while (done < length)
            {
                var n = PWrite(fd, source + done, (nuint)(length - done), offset + done);
                if (n > 0)
                {
                    done += (int)n;
                    if (done < length && done % _offsetAlign != 0)
                    {
                        // A short write that left the rest unaligned: finish it buffered.
                        RandomAccess.Write(_buffered, new ReadOnlySpan<byte>(source + done, length - done), offset + done);
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
                direct.DangerousRelease();
            }
        }
    }

    private void StopDirect() => Interlocked.Exchange(ref _direct, null)?.Dispose();

    /// <summary>Closes the direct handle (the buffered one belongs to the caller) and frees the buffers no reply holds.</summary>
    public void Dispose()
    {
        StopDirect();
        _buffers?.Dispose();
        lock (_gate)
        {
            if (_bounce != null)
            {
                NativeMemory.AlignedFree(_bounce);
                _bounce = null;
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int Fallocate(int fd, int mode, long offset, long length);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    private static partial nint PWrite(int fd, byte* buffer, nuint count, long offset);
}
